"""Issue 10, item 7: extraction stays linear on hostile pages; one page cannot flood the crawl.

The sizes are chosen so that the quadratic code of before would run for many
minutes (past the per-test timeout); what is asserted is what was found.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from aiograb import CrawlOptions, Limits, RequestPolicy, RetryPolicy, Timeouts
from aiograb._crawl.api import crawl_async
from aiograb._crawl.extract import extract_css, extract_html
from tests.helpers import manifest, run, serve_app

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=5, connect=2))


def test_endless_url_openings_in_a_style_attribute() -> None:
    style = "background:" + "url(" * 200_000 + "x.png)"  # 800 KB (before: ~30 min)
    page = extract_html(f'<div style="{style}">x</div>'.encode(), "text/html")
    assert [f.url for f in page.found] == ["x.png"]
    assert extract_css("url('" * 200_000).images == []


def test_css_urls_still_read_as_written() -> None:
    found = extract_css(
        "a{background:url(x.png)} b{background:url( 'y (1).png' )}"
        ' c{background:url("z.gif")} @import url(more); @import "other.css";'
    )
    assert found.images == ["x.png", "y (1).png", "z.gif"]
    assert sorted(found.imports) == ["more", "other.css"]


def test_a_picture_with_many_sources() -> None:
    n = 80_000  # before: one scan of the picture per source (minutes)
    sources = "".join(f'<source srcset="/i{i}.jpg 1x">' for i in range(n))
    page = extract_html(f'<picture>{sources}<img src="/a.jpg" alt="A"></picture>'.encode(), None)
    assert len(page.found) == n + 1
    assert {f.alt for f in page.found} == {"A"}


def test_max_links_per_page_caps_what_one_page_adds(tmp_path: Path) -> None:
    links = "".join(f'<a href="/p{i}">p</a><img src="/i{i}.png">' for i in range(500))

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/":
            return web.Response(text=links, content_type="text/html")
        raise web.HTTPNotFound()

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        async with serve_app(app) as base:
            await crawl_async(
                [base + "/"],
                tmp_path,
                options=CrawlOptions(max_depth=0, max_links_per_page=100),
                limits=Limits(concurrency=8, per_host=0),
                policy=FAST,
            )

    run(main())
    rows = manifest(tmp_path)
    found_on_seed = [r for r in rows if r.get("depth") == 1 and r["error"] != "links_cut"]
    assert len(found_on_seed) == 100
    (cut,) = [r for r in rows if r["error"] == "links_cut"]
    assert "900 more links than --max-links-per-page 100" in cut["message"]
