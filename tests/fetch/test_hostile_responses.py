"""Issue 10, item 22: manifest messages are one line in our words; fake gzip is bad_encoding."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aiograb import Limits, RequestPolicy, RetryPolicy, Timeouts, download_async
from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli, by_url, manifest, run, serve_app

FAST = RequestPolicy(retry=RetryPolicy(retries=2), timeouts=Timeouts(total=5, connect=2))
_PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\0" * 200
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _the_row_of_one_response(tmp_path: Path, handler: Handler) -> dict[str, Any]:
    """Download one URL that ``handler`` answers; its manifest row."""

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/a.png", handler)
        async with serve_app(app) as base:
            await download_async([base + "/a.png"], tmp_path, policy=FAST)

    run(main())
    (row,) = manifest(tmp_path)
    return row


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_body_that_claims_an_encoding_it_is_not_is_bad_encoding(
    tmp_path: Path, encoding: str
) -> None:
    async def fake(request: web.Request) -> web.Response:
        return web.Response(
            body=_PNG_HEAD, headers={"Content-Encoding": encoding, "Content-Type": "image/png"}
        )

    row = _the_row_of_one_response(tmp_path, fake)
    assert row["error"] == "bad_encoding"
    assert row["attempts"] == 1  # the server will say the same again: not retried
    if encoding == "br" and "cannot decode" in row["message"]:
        assert "Brotli" in row["message"]  # no brotli decoder installed here
    else:
        assert row["message"] == (
            f"the body is not {encoding} although the response's Content-Encoding says so"
        )


def test_failure_messages_are_one_line_in_our_words(tmp_path: Path, server: RunningServer) -> None:
    paths = [
        "/truncated/1.jpg",
        "/reset/2.jpg",
        "/html-as-jpeg/3.jpg",
        "/status/500",
        "/status/404",
        "/redirect-loop/4",
        "/huge/50.jpg",
    ]
    urls = [server.url(p) for p in paths]
    policy = RequestPolicy(
        retry=RetryPolicy(retries=0), timeouts=Timeouts(total=5, connect=2), max_bytes=1 << 20
    )
    run(download_async(urls, tmp_path, policy=policy, limits=Limits(concurrency=8, per_host=0)))
    rows = by_url(tmp_path)
    for url in urls:
        row = rows[url]
        assert row["state"] == "failed", url
        message = row["message"]
        assert message, url
        assert "\n" not in message, (url, message)
        assert "message:" not in message, (url, message)  # aiohttp's "400, message: ..."
        assert len(message) < 200, (url, message)


def test_a_header_too_large_to_read_is_a_bad_response_in_our_words(tmp_path: Path) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=_PNG_HEAD, headers={"X-Big": "a" * 200_000})

    row = _the_row_of_one_response(tmp_path, big)
    assert row["error"] == "protocol_error"
    assert row["message"].startswith("bad HTTP response: ")
    assert "header" in row["message"].lower() or "got more than" in row["message"].lower()
    assert len(row["message"]) < 200


@pytest.mark.slow
def test_a_gzip_bomb_is_too_large_with_memory_flat(tmp_path: Path, server: RunningServer) -> None:
    """256 KB on the wire, 256 MB decoded: the limit counts decoded bytes, so the body
    stops at max_bytes, nothing of it is left on disk, and the process never holds it."""
    (tmp_path / "u.txt").write_text(server.url("/gzip-bomb/256.jpg") + "\n")
    summary = tmp_path / "s.json"
    done = aiograb_cli(
        "get", tmp_path / "u.txt", "-o", tmp_path / "out", "-q", "--retries", "0",
        "--max-bytes", "8MB", "--summary-json", summary,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    (row,) = manifest(tmp_path / "out")
    assert row["error"] == "too_large", row
    assert row["message"] == f"body exceeds max_bytes={8 << 20}"
    assert json.loads(summary.read_text())["peak_rss_mb"] < 150  # never the 256 MB
    big = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.stat().st_size > 1 << 20]
    assert big == []  # no temporary file of the body
