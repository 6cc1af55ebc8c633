"""Issue 10, item 6: endless sitemap-index and CSS @import chains end at the limits.

A real aiohttp site on port 0 whose sitemap index ``sm?n=k`` lists ``sm?n=k+1``
and whose stylesheet ``c?n=k`` imports ``c?n=k+1``, forever.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from aiohttp import web

from aiograb import CrawlOptions, Limits, RequestPolicy, RetryPolicy, Timeouts
from aiograb._crawl.api import crawl_async
from tests.helpers import manifest, run, serve_app

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=5, connect=2))
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _endless_site(seen: Counter[str]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        seen[request.path] += 1
        base = f"http://{request.host}"
        n = int(request.query.get("n", "0"))
        if request.path == "/robots.txt":
            return web.Response(text=f"User-agent: *\nAllow: /\nSitemap: {base}/sm?n=0\n")
        if request.path == "/sm":
            xml = (
                '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/'
                f'schemas/sitemap/0.9"><sitemap><loc>{base}/sm?n={n + 1}</loc></sitemap>'
                "</sitemapindex>"
            )
            return web.Response(text=xml, content_type="application/xml")
        if request.path == "/c":
            css = f"@import url(/c?n={n + 1});\nbody {{ background: url(/i?n={n}) }}\n"
            return web.Response(text=css, content_type="text/css")
        if request.path == "/i":
            return web.Response(body=_PNG, content_type="image/png")
        html = '<link rel="stylesheet" href="/c?n=0"><p>home</p>'
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


def test_sitemap_and_css_chains_stop_at_depth_and_caps(tmp_path: Path) -> None:
    seen: Counter[str] = Counter()

    async def main() -> None:
        async with serve_app(_endless_site(seen)) as base:
            options = CrawlOptions(max_depth=10, max_pages=50, sitemaps=True, css=True)
            crawl = crawl_async(
                [base + "/"],
                tmp_path,
                options=options,
                limits=Limits(concurrency=8, per_host=0),
                policy=FAST,
            )
            await asyncio.wait_for(crawl, 60)  # today: never ends

    run(main())
    # Depth 10: the sitemap from robots.txt (0) and ten levels of indexes under it;
    # the stylesheet of the seed page (1) and its imports down to depth 11.
    assert 1 <= seen["/sm"] <= 11
    assert 1 <= seen["/c"] <= 11
    rows = manifest(tmp_path)
    limited = [
        r for r in rows if r.get("kind") in ("sitemap", "css") and r["error"] == "depth_limit"
    ]
    assert limited, "the chains end with a depth_limit row each"
    assert {r["kind"] for r in limited} == {"sitemap", "css"}


def test_sitemaps_and_stylesheets_count_against_max_pages(tmp_path: Path) -> None:
    seen: Counter[str] = Counter()

    async def main() -> None:
        async with serve_app(_endless_site(seen)) as base:
            options = CrawlOptions(max_depth=1000, max_pages=12, sitemaps=True, css=True)
            crawl = crawl_async(
                [base + "/"],
                tmp_path,
                options=options,
                limits=Limits(concurrency=8, per_host=0),
                policy=FAST,
            )
            await asyncio.wait_for(crawl, 60)

    run(main())
    documents = seen["/"] + seen["/sm"] + seen["/c"]
    assert documents <= 12 + 1  # the cap; the seed is admitted as a page too
    assert any(r["error"] == "page_limit" for r in manifest(tmp_path))
