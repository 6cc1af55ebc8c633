"""robots.txt variants and the address guard, against small aiohttp sites on port 0."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aiograb import (
    CrawlOptions,
    CrawlSummary,
    FakeClock,
    Limits,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
    crawl_async,
)
from tests.helpers import by_url, run, serve_app

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=5, connect=2))


class Site:
    """A tiny site: ``pages`` maps a path to its HTML; ``robots`` is (status, body)."""

    def __init__(self, pages: dict[str, str], robots: tuple[int, str] = (404, "")) -> None:
        self.pages = pages
        self.robots = robots
        self.requests: list[tuple[str, str]] = []  # (Host header, path)
        self.base = ""
        self.busy: dict[str, int] = {}  # path -> how many times to answer 429 first

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.headers.get("Host", ""), request.path))
        if self.busy.get(request.path, 0) > 0:
            self.busy[request.path] -= 1
            return web.Response(status=429, headers={"Retry-After": "5"}, text="slow down")
        if request.path == "/robots.txt":
            status, body = self.robots
            return web.Response(status=status, text=body)
        if request.path.endswith(".png"):
            return web.Response(body=_PNG, content_type="image/png")
        html = self.pages.get(request.path)
        if html is None:
            raise web.HTTPNotFound()
        return web.Response(text=html.replace("PORT", self.port), content_type="text/html")

    @property
    def port(self) -> str:
        return self.base.rsplit(":", 1)[1]

    def paths(self) -> list[str]:
        return [path for _host, path in self.requests]


_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@contextlib.asynccontextmanager
async def serving(site: Site) -> AsyncIterator[Site]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", site.handle)
    async with serve_app(app) as base:
        site.base = base
        yield site


def crawl(site: Site, out: Path, options: CrawlOptions | None = None, **kw: Any) -> CrawlSummary:
    async def main() -> CrawlSummary:
        async with serving(site):
            return await crawl_async(
                [site.base + "/"],
                out,
                options=options or CrawlOptions(),
                limits=Limits(concurrency=8, per_host=0),
                policy=FAST,
                **kw,
            )

    return run(main())


def tree(n: int) -> dict[str, str]:
    """``/`` links to ``/p1`` ... ``/p{n}``; each shows one image."""
    pages = {"/": "".join(f'<a href="/p{i}">{i}</a>' for i in range(1, n + 1))}
    for i in range(1, n + 1):
        pages[f"/p{i}"] = f'<img src="/img{i}.png" alt="{i}">'
    return pages


def test_missing_robots_allows_everything(tmp_path: Path) -> None:
    site = Site(tree(3), robots=(404, "not found"))
    result = crawl(site, tmp_path)
    assert result.kinds["page"] == {"ok": 4}
    assert result.kinds["image"] == {"ok": 3}
    assert site.paths().count("/robots.txt") == 1


def test_garbage_robots_is_read_leniently(tmp_path: Path) -> None:
    garbage = "\x00\x01<html>lol</html>\nDisallow /p1\nUser-agent *\n" + "x" * 5000
    site = Site(tree(2), robots=(200, garbage))
    assert crawl(site, tmp_path).kinds["page"] == {"ok": 3}


def test_robots_5xx_means_complete_disallow(tmp_path: Path) -> None:
    site = Site(tree(2), robots=(503, "down"))
    result = crawl(site, tmp_path)
    assert result.kinds == {"page": {"skipped": 1}}
    assert by_url(tmp_path)[site.base + "/"]["error"] == "robots_unavailable"
    assert site.paths() == ["/robots.txt"]
    assert result.exit_code == 0  # nothing failed: the site asked us to stay away
    # --ignore-robots gets past it, and asks for no robots.txt at all.
    site.requests.clear()
    ignored = crawl(site, tmp_path / "ignored", CrawlOptions(obey_robots=False))
    assert ignored.kinds["page"] == {"ok": 3}
    assert "/robots.txt" not in site.paths()


def test_robots_rules_for_our_agent_and_fetched_once_across_resumes(tmp_path: Path) -> None:
    robots = "User-agent: *\nDisallow: /p2\n\nUser-agent: aiograb\nDisallow: /img1\n"
    site = Site(tree(3), robots=(200, robots))

    async def main() -> CrawlSummary:
        async with serving(site):
            options = CrawlOptions(max_depth=0)
            await crawl_async([site.base + "/"], tmp_path, options=options, policy=FAST)
            assert site.paths() == ["/robots.txt", "/"]
            # Resumed with a larger depth: the links left as too deep are let in, and
            # robots.txt is not asked for again.
            options = CrawlOptions(max_depth=1)
            return await crawl_async([site.base + "/"], tmp_path, options=options, policy=FAST)

    result = run(main())
    assert site.paths().count("/robots.txt") == 1
    assert site.paths().count("/") == 1
    rows = by_url(tmp_path)
    # Our agent's group wins over "*": /p2 is allowed for aiograb, /img1.png is not.
    assert rows[site.base + "/p2"]["state"] == "ok"
    assert rows[site.base + "/img1.png"]["error"] == "robots_disallowed"
    assert "/img1.png" not in site.paths()
    assert result.kinds["image"] == {"ok": 2, "skipped": 1}
    assert result.kinds["page"] == {"ok": 4}


def test_crawl_delay_spaces_requests(tmp_path: Path) -> None:
    site = Site(tree(3), robots=(200, "User-agent: *\nCrawl-delay: 7\n"))
    clock = FakeClock()

    async def main() -> None:
        async with serving(site):
            limits = Limits(concurrency=1, per_host=0)  # one at a time: the waits are exact
            await crawl_async([site.base + "/"], tmp_path, limits=limits, policy=FAST, clock=clock)

    run(main())
    # After robots.txt: 4 pages and 3 images, each but the first waiting its 7 s turn.
    assert clock.slept == [7.0] * 6
    assert len(site.paths()) == 8


def test_links_to_private_addresses_are_refused_at_connect(tmp_path: Path) -> None:
    page = (
        '<a href="http://localhost:PORT/other">by name</a>'
        '<a href="http://[::1]:PORT/v6">v6</a>'
        '<img src="http://169.254.169.254/latest/x.png">'
        '<img src="http://127.0.0.2:PORT/x.png">'
    )
    site = Site({"/": page, "/other": "<p>other</p>"})
    result = crawl(site, tmp_path, CrawlOptions(scope="any"))
    rows = by_url(tmp_path)
    for url in (
        f"http://localhost:{site.port}/other",
        f"http://[::1]:{site.port}/v6",
        "http://169.254.169.254/latest/x.png",
        f"http://127.0.0.2:{site.port}/x.png",
    ):
        assert rows[url]["error"] == "blocked_address", url
        assert rows[url]["attempts"] == 1  # not retried
    # The seed's own host is allowed (it is on loopback); nothing else reached the server.
    assert {host for host, _path in site.requests} == {f"127.0.0.1:{site.port}"}
    assert result.kinds["page"]["failed"] == 2


def test_allow_private(tmp_path: Path) -> None:
    site = Site({"/": '<a href="http://localhost:PORT/other">x</a>', "/other": "<p>ok</p>"})
    result = crawl(site, tmp_path, CrawlOptions(scope="any", allow_private=True))
    assert result.kinds["page"] == {"ok": 2}
    assert f"localhost:{site.port}" in {host for host, _path in site.requests}


def test_a_page_no_parser_copes_with_is_a_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RecursionError("too deep")

    monkeypatch.setattr("aiograb._crawl.parsework.extract_html", broken)
    site = Site(tree(2))
    result = crawl(site, tmp_path)
    row = by_url(tmp_path)[site.base + "/"]
    assert row["state"] == "failed"
    assert row["error"] == "parse_error"
    assert "too deep" in row["message"]
    assert result.exit_code == 1


def test_429_with_retry_after_pauses_the_host(tmp_path: Path) -> None:
    site = Site(tree(2))
    site.busy["/p1"] = 1
    clock = FakeClock()
    options = CrawlOptions()
    policy = RequestPolicy(retry=RetryPolicy(retries=2), timeouts=Timeouts(total=5))

    async def main() -> CrawlSummary:
        async with serving(site):
            return await crawl_async(
                [site.base + "/"], tmp_path, options=options, policy=policy, clock=clock
            )

    result = run(main())
    assert result.kinds["page"] == {"ok": 3}
    assert by_url(tmp_path)[site.base + "/p1"]["attempts"] == 2
    assert 5.0 in clock.slept  # the host was paused for its Retry-After
