"""Issue 10, item 7: big bodies are parsed in a worker process, with a time limit.

lexbor's parser is quadratic in nesting depth: 200k nested ``<div>`` (2.2 MB, well
under ``max_page_bytes``) would hold the loop for minutes. Off the loop, that page
becomes a ``parse_timeout`` row while the loop keeps serving the other pages.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aiograb import CrawlOptions, Limits, RequestPolicy, RetryPolicy, Timeouts
from aiograb._crawl.api import crawl_async
from aiograb._crawl.run import CrawlSummary
from tests.helpers import aiograb_cli, by_url, manifest, run, serve_app

# About the input / the parser, not the HTTP transport: one pass is enough.
pytestmark = pytest.mark.one_transport

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=20, connect=2))
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
DEEP = ("<div>" * 200_000 + "</div>" * 200_000).encode()


def _app(pages: dict[str, bytes]) -> web.Application:
    types = {".css": "text/css", ".xml": "application/xml", ".txt": "text/plain"}

    async def handle(request: web.Request) -> web.Response:
        if request.path.endswith(".png"):
            return web.Response(body=PNG, content_type="image/png")
        if request.path in pages:
            ctype = types.get(request.path[-4:], "text/html")
            body = pages[request.path].replace(b"ORIGIN", str(request.url.origin()).encode())
            return web.Response(body=body, content_type=ctype)
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


async def _crawl(pages: dict[str, bytes], out: Path, options: CrawlOptions) -> CrawlSummary:
    async with serve_app(_app(pages)) as base:
        return await crawl_async(
            [base + "/"], out, options=options, limits=Limits(concurrency=8), policy=FAST
        )


async def _max_lag(done: asyncio.Event, lags: list[float], threads: list[int]) -> None:
    """How late the loop wakes a 10 ms sleeper, and the process's threads, until ``done``."""
    while not done.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - start - 0.01)
        threads.append(threading.active_count())


def test_a_deeply_nested_page_is_a_parse_timeout_and_the_loop_stays_responsive(
    tmp_path: Path,
) -> None:
    seed = b'<a href="/deep">d</a><a href="/ok">ok</a><img src="/a.png" alt="A">'
    pages = {"/": seed, "/deep": DEEP, "/ok": b'<img src="/b.png">'}
    options = CrawlOptions(max_depth=2, parse_timeout=3.0)
    lags: list[float] = []
    threads = [threading.active_count()]

    async def main() -> tuple[CrawlSummary, float]:
        done = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_max_lag(done, lags, threads))
            start = time.perf_counter()
            try:
                result = await _crawl(pages, tmp_path, options)
            finally:
                done.set()
        return result, time.perf_counter() - start

    result, took = run(main())
    rows = by_url(tmp_path)
    deep = next(r for u, r in rows.items() if u.endswith("/deep"))
    assert deep["state"] == "failed"
    assert deep["error"] == "parse_timeout"
    assert deep["message"] == "parsing took longer than parse_timeout 3 s"
    ok = {u.rsplit("/", 1)[1]: r["state"] for u, r in rows.items() if not u.endswith("/deep")}
    assert ok == {"": "ok", "ok": "ok", "a.png": "ok", "b.png": "ok"}
    assert result.exit_code == 1
    assert took >= 3.0  # the parse ran its whole time limit ...
    assert max(lags) < 1.0  # ... and the loop never stalled for anything like it
    assert max(threads) == threads[0]  # worker processes, not threads


def _big_page(n: int) -> bytes:
    """A normal page over the default parse_off_loop_bytes: links, images, srcset, a base."""
    parts = ['<html><head><base href="/sub/"></head><body>']
    for i in range(n):
        parts.append(
            f'<p>item {i} {"lorem ipsum " * 8}</p><a href="p{i % 50}">p</a>'
            f'<img src="i{i}.png" alt="alt {i}" srcset="s{i}.png 1x, l{i}.png 2x">'
            f'<div style="background:url(bg{i % 7}.png)"></div><a href="/x" rel="nofollow">x</a>'
        )
    return "".join(parts).encode()


def test_a_big_normal_page_parsed_off_the_loop_gives_the_rows_inline_parsing_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _big_page(1200) + b'<link rel="stylesheet" href="/s.css">'
    assert len(page) > CrawlOptions().parse_off_loop_bytes
    pages = {
        "/": page,
        "/s.css": b"a{background:url(c1.png)} @import 'more.css';",
        "/more.css": b"b{background:url(/c2.png)}",
        "/robots.txt": b"Sitemap: ORIGIN/sm.xml\n",
        "/sm.xml": b"<urlset><url><loc>ORIGIN/z</loc></url><url><loc>ORIGIN/y</loc></url></urlset>",
    }
    both = {"max_depth": 1, "css": True, "sitemaps": True}
    inline = CrawlOptions(**both, parse_off_loop_bytes=len(page) * 2)
    run(_crawl(pages, tmp_path / "inline", inline))

    # The worker process parses with its own, unpatched copy: were any body parsed
    # on the loop, this run would fail with parse_error.
    def broken(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("parsed on the loop")

    for name in ("extract_html", "extract_css", "extract_sitemap"):
        monkeypatch.setattr(f"aiograb._crawl.parsework.{name}", broken)
    run(_crawl(pages, tmp_path / "off", CrawlOptions(**both, parse_off_loop_bytes=0)))

    def rows(out: Path) -> list[tuple[Any, ...]]:
        keep = ("kind", "state", "error", "depth")
        port = manifest(out)[0]["url"].split("/")[2]
        found = [
            (r["url"].replace(port, "HOST"), *(r[k] for k in keep), (r["extra"] or {}).get("alt"))
            for r in manifest(out)
        ]
        return sorted(found, key=repr)

    inline_rows = rows(tmp_path / "inline")
    # the page, 50 links, a nofollow one, 1200 images with their alt text, 7 backgrounds,
    # two stylesheets and their two images, the sitemap and the two pages it adds
    assert len(inline_rows) == 1259 + 7
    assert ("http://HOST/sub/l5.png", "image", "ok", None, 1, "alt 5") in inline_rows
    kinds = {(r[0].rsplit("/", 1)[1], r[1], r[2]) for r in inline_rows}
    assert {("c2.png", "image", "ok"), ("more.css", "css", "ok"), ("y", "page", "failed")} <= kinds
    assert rows(tmp_path / "off") == inline_rows


def test_a_parse_timeout_that_is_not_positive_is_one_line_exit_2(tmp_path: Path) -> None:
    result = aiograb_cli("crawl", "http://127.0.0.1:9/", "-o", tmp_path, "--parse-timeout", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "aiograb: error: parse-timeout must be > 0 seconds"
    ]
