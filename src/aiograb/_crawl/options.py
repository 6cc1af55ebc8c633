"""``CrawlOptions``: what a crawl follows, what it keeps, and how far it goes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiograb._core.errors import UsageError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_PAGES_PER_HOST",
    "DEFAULT_MAX_PAGE_BYTES",
    "DEFAULT_MAX_URL_LENGTH",
    "DEFAULT_PARSE_OFF_LOOP_BYTES",
    "DEFAULT_PARSE_TIMEOUT",
    "SCOPES",
    "CrawlOptions",
]

SCOPES = ("host", "domain", "any")
DEFAULT_MAX_DEPTH = 10
DEFAULT_MAX_PAGES_PER_HOST = 100_000
DEFAULT_MAX_URL_LENGTH = 2048
DEFAULT_MAX_LINKS_PER_PAGE = 100_000  # what one page, stylesheet or sitemap may add
DEFAULT_MAX_PAGE_BYTES = 10 * 1024 * 1024
# Bodies larger than this are parsed in a worker process (see parsework.py). Most pages
# are smaller and stay inline (no process is started); a hostile nest under it holds
# the loop ~0.15 s at most, where 256 KiB of it holds it 1.6 s (BENCHMARKS.md, "#10 item 7").
DEFAULT_PARSE_OFF_LOOP_BYTES = 64 * 1024
DEFAULT_PARSE_TIMEOUT = 30.0
GRAPH_FORMATS = ("jsonl", "csv")


@dataclass(frozen=True, kw_only=True, slots=True)
class CrawlOptions:
    """What a crawl follows and keeps. The defaults suit crawling one site politely.

    >>> CrawlOptions(max_depth=3, include=(r"/photos/",), exclude=(r"\\?sort=",))
    """

    scope: str = "domain"  # host | domain (registrable domain, e.g. example.co.uk) | any
    max_depth: int = DEFAULT_MAX_DEPTH  # link hops from a seed; 0 = the seeds only
    max_pages: int = 0  # pages in all; 0 = no limit
    max_pages_per_host: int = DEFAULT_MAX_PAGES_PER_HOST  # 0 = no limit
    max_url_length: int = DEFAULT_MAX_URL_LENGTH
    max_links_per_page: int = DEFAULT_MAX_LINKS_PER_PAGE  # the rest: one links_cut row
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES  # HTML, CSS and sitemaps are read into memory
    parse_off_loop_bytes: int = DEFAULT_PARSE_OFF_LOOP_BYTES  # bigger: parsed off the loop
    parse_timeout: float = DEFAULT_PARSE_TIMEOUT  # seconds for one off-loop parse
    include: tuple[str, ...] = ()  # regexes: follow only page URLs matching one (seeds exempt)
    exclude: tuple[str, ...] = ()  # regexes: never follow page URLs matching one
    follow_nofollow: bool = False  # follow rel=nofollow links and nofollow pages too
    obey_robots: bool = True
    allow_private: bool = False  # connect to loopback/private/link-local addresses
    sitemaps: bool = False  # also seed from the Sitemap: lines of robots.txt
    css: bool = False  # fetch linked stylesheets for their url(...) images
    data_uris: bool = False  # save images inlined as data: URIs
    all_sizes: bool = False  # every srcset candidate, not just the largest
    pages_only: bool = False  # crawl pages and record the graph; download no image
    graph_format: str = "jsonl"  # pages.jsonl, or graph.csv with one edge a line
    image_scope: str = "any"  # host | domain | any: which hosts images are fetched from
    image_include: tuple[str, ...] = ()  # regexes: fetch only image URLs matching one
    image_exclude: tuple[str, ...] = ()  # regexes: never fetch image URLs matching one

    def __post_init__(self) -> None:
        _check(self.scope in SCOPES, f"scope must be one of {', '.join(SCOPES)}")
        _check(self.max_depth >= 0, "depth must be >= 0")
        _check(self.max_pages >= 0, "max-pages must be >= 0 (0 = no limit)")
        _check(self.max_pages_per_host >= 0, "max-pages-per-host must be >= 0 (0 = no limit)")
        _check(64 <= self.max_url_length <= 65536, "max-url-length must be in 64..65536")
        _check(self.max_links_per_page >= 1, "max-links-per-page must be >= 1")
        _check(self.max_page_bytes >= 1024, "max-page-bytes must be at least 1K")
        _check(
            self.parse_off_loop_bytes >= 0,
            "parse-off-loop-bytes must be >= 0 (0 = every body off the loop)",
        )
        _check(self.parse_timeout > 0, "parse-timeout must be > 0 seconds")
        _check(self.graph_format in GRAPH_FORMATS, "format must be jsonl or csv")
        _check(self.image_scope in SCOPES, f"image_scope must be one of {', '.join(SCOPES)}")
        for pattern in (*self.include, *self.exclude, *self.image_include, *self.image_exclude):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UsageError(f"bad regular expression {pattern!r}: {exc}") from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)
