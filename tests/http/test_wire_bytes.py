"""Every engine sends the WHATWG href's path and query byte for byte (a browser's request).

The async transport's check is in tests/core/test_urls.py; here the same table of
tricky URLs goes through the real ``aiograb get`` command with each engine, the
blocking ones (urllib3) included, and through a redirect.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from aiohttp import web

from aiograb._core.urls import normalize
from aiograb._http.blocking import TOKEN, target_of, tokenized
from tests.core.test_urls import WIRE
from tests.helpers import aiograb_cli, manifest, serve_app

# What urllib3 would make of these on its own: each must reach the server as given.
URLLIB3_REWRITES = [
    "/c|d?q=|",  # | -> %7C
    "/[x]?[y]",  # [ ] -> %5B %5D
    "/%7e?%7e",  # %7e -> %7E
    "/p%zz?%zz",  # %zz -> %25zz
    "/a?{}^`",  # { } ^ ` -> %7B %7D %5E %60
]
REDIRECT = "sub\\x y.jpg?s=%2F z&t=%7e|[]"
REDIRECTED = "/sub/x%20y.jpg?s=%2F%20z&t=%7e|[]"


def _recorder() -> tuple[web.Application, list[str]]:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.raw_path)
        if request.path == "/go":
            return web.Response(status=302, headers={"Location": REDIRECT})
        return web.Response(body=b"data", content_type="application/octet-stream")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    return app, seen


@pytest.mark.parametrize("engine", ["threads", "sync", "async"])
def test_each_engine_sends_the_href_bytes(tmp_path: Path, engine: str) -> None:
    app, seen = _recorder()
    given = [path for path, _ in WIRE] + URLLIB3_REWRITES

    async def main() -> None:
        async with serve_app(app) as origin:
            urls = [origin + path for path in given] + [origin + "/go"]
            (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
            args = [tmp_path / "urls.txt", "-o", tmp_path / "out", "--engine", engine]
            args += ["-c", "1", "--accept", "any", "--retries", "0"]
            done = await asyncio.to_thread(aiograb_cli, "get", *args)
            assert done.returncode == 0, done.stderr
            expected = {normalize(url).removeprefix(origin) for url in urls}
            # the table's own expectations hold for the normal form ...
            for path, want in WIRE:
                assert want is None or normalize(origin + path) == origin + want
            # ... and what arrived is exactly that, redirect hop included
            assert sorted(seen) == sorted([*expected, REDIRECTED])
            assert set(URLLIB3_REWRITES) <= set(seen)  # already normal forms, sent as given
            rows = {row["url"]: row for row in manifest(tmp_path / "out")}
            assert rows[origin + "/go"]["final_url"] == origin + REDIRECTED
            assert all(row["state"] == "ok" for row in rows.values()), rows

    asyncio.run(main())


@pytest.mark.parametrize(
    ("href", "origin", "target"),
    [
        ("http://a.org/c|d?q=%7e|[]{}", "http://a.org", "/c|d?q=%7e|[]{}"),
        ("http://[::1]:8080/x?y=%zz", "http://[::1]:8080", "/x?y=%zz"),
        ("https://a.org", "https://a.org", "/"),
        ("http://a.org/p#frag", "http://a.org", "/p"),
        ("http://a.org/é b", "http://a.org", "/%C3%A9%20b"),  # not an href: encoded
    ],
)
def test_the_token_stands_for_the_target(href: str, origin: str, target: str) -> None:
    """What urllib3 is given is origin + a token of unreserved characters (nothing for
    its encoder to change), which the connection turns back into the target."""
    url = tokenized(href)
    assert url.startswith(origin + TOKEN)
    token = url.removeprefix(origin)
    assert re.fullmatch(re.escape(TOKEN) + r"[A-Za-z0-9_=-]+", token)
    assert target_of(token) == target
