"""The baseline of ``bench_crawl.py``: a minimal Scrapy spider over the same site.

Run with Scrapy's own interpreter (a separate venv), e.g.::

    /work/venvs/scrapy/bin/python benchmarks/scrapy_site_spider.py SEED OUT -c 256

It follows every ``<a href>`` on the seed's host and hands every ``<img src>`` to
Scrapy's ``FilesPipeline`` (which stores files under OUT/full/<sha1>.<ext>). The
concurrency, per-domain concurrency and reactor thread pool are raised to ``-c``;
robots.txt is obeyed and cookies are off, as in ``aiograb crawl``. At the end it
writes OUT/stats.json (Scrapy's stats plus the pages it parsed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response


class SiteSpider(scrapy.Spider):
    name = "site"
    pages = 0

    def __init__(self, seed: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [seed]
        self.allowed_domains = [urlsplit(seed).hostname or ""]

    def parse(self, response: Response) -> Any:
        self.pages += 1
        images = [response.urljoin(u) for u in response.css("img::attr(src)").getall()]
        if images:
            yield {"file_urls": images}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)

    def closed(self, reason: str) -> None:
        stats = dict(self.crawler.stats.get_stats())
        stats["pages_parsed"] = self.pages
        out = Path(self.settings["FILES_STORE"]) / "stats.json"
        out.write_text(json.dumps(stats, default=str, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("seed")
    parser.add_argument("out")
    parser.add_argument("-c", "--concurrency", type=int, default=256)
    args = parser.parse_args()
    process = CrawlerProcess(
        settings={
            "FILES_STORE": args.out,
            "ITEM_PIPELINES": {"scrapy.pipelines.files.FilesPipeline": 1},
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
            "CONCURRENT_ITEMS": args.concurrency,
            "REACTOR_THREADPOOL_MAXSIZE": 20,
            "ROBOTSTXT_OBEY": True,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "LOG_LEVEL": "WARNING",
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "RETRY_TIMES": 0,
            "MEDIA_ALLOW_REDIRECTS": True,
        }
    )
    process.crawl(SiteSpider, seed=args.seed)
    process.start()


if __name__ == "__main__":
    main()
