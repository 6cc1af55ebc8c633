"""The local test server (aiograb.testing): images, routes, faults and the ways to run it."""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

import aiohttp
import pytest
from PIL import Image

import aiograb.testing
from aiograb.testing import (
    EXTENSIONS,
    POOL_SIZE,
    RunningServer,
    ServerConfig,
    ServerProcess,
    _images,
    content_type,
    file_bytes,
    flaky_image_index,
    image_bytes,
    open_server,
    serve_in_thread,
)

KB = 1024
PIL_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """Our own instance (not conftest's shared one): flaky counters and records stay ours."""
    with serve_in_thread() as running:
        yield running


# -- small HTTP clients: urllib without redirects, and a raw socket -------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=10) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return Reply(err.code, err.headers, err.read())


@dataclass
class RawReply:
    status_line: str
    headers: dict[str, str]
    body: bytes
    error: OSError | None


def raw_get(port: int, path: str, *, timeout: float = 10.0) -> RawReply:
    """GET over a plain socket, reading until EOF, error or timeout."""
    data, error = b"", None
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError as exc:  # ConnectionResetError, TimeoutError
            error = exc
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return RawReply(status_line, headers, body, error)


# -- images ----------------------------------------------------------------------------------


def test_public_api() -> None:
    assert set(aiograb.testing.__all__) == {
        "DATA_URI_GIF",
        "DEFAULT_CONFIG",
        "EXTENSIONS",
        "MAX_RECORDED",
        "MockHandler",
        "MockRequest",
        "MockResponse",
        "MockTransport",
        "POOL_SIZE",
        "SIZES",
        "RecordedRequest",
        "RunningServer",
        "ServerConfig",
        "ServerProcess",
        "content_type",
        "file_bytes",
        "flaky_image_index",
        "image_bytes",
        "make_app",
        "open_server",
        "plain_image_count",
        "serve",
        "serve_in_thread",
        "site_depth",
        "site_image_urls",
        "site_page_urls",
        "warm_cache",
    }
    assert all(hasattr(aiograb.testing, name) for name in aiograb.testing.__all__)


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_small_images_decode_and_are_10_to_50_kb(ext: str) -> None:
    sizes, bodies = [], set()
    for n in range(POOL_SIZE):
        body = image_bytes(n, ext)
        sizes.append(len(body))
        bodies.add(body)
    assert min(sizes) >= 5 * KB
    assert max(sizes) <= 60 * KB
    assert len(bodies) == POOL_SIZE  # every pool index is a different picture
    with Image.open(io.BytesIO(image_bytes(5, ext))) as img:
        assert img.format == PIL_FORMATS[ext]
        assert 16 <= img.width <= 1000
        img.load()
    assert content_type(ext).startswith("image/")


def test_images_are_deterministic() -> None:
    first = image_bytes(3, "png")
    assert image_bytes(3 + POOL_SIZE, "png") == first
    _images._small.cache_clear()  # drawn again from scratch: the same bytes
    assert image_bytes(3, "png") == first
    assert image_bytes(3, "png", seed=1) != first
    with pytest.raises(ValueError, match="extension"):
        image_bytes(1, "bmp")
    with pytest.raises(ValueError, match="size"):
        image_bytes(1, "png", size="tiny")


def test_thumb_size() -> None:
    sizes = sorted(len(image_bytes(i, EXTENSIONS[i % 4], size="thumb")) for i in range(32))
    assert sizes[0] >= 6_000
    assert sizes[-1] <= 30_000
    assert 9_000 <= sizes[len(sizes) // 2] <= 20_000  # a median near 14 KB
    assert image_bytes(1, "png", size="thumb") != image_bytes(1, "png")


def test_medium_and_large_sizes() -> None:
    for ext in ("jpg", "png"):
        assert 100 * KB <= len(image_bytes(1, ext, size="medium")) <= 500_000
    large = image_bytes(1, "jpg", size="large")
    assert 1024 * KB <= len(large) <= 3_000_000
    with Image.open(io.BytesIO(large)) as img:
        assert img.width >= 1000


def test_file_bytes() -> None:
    body = file_bytes(7, 5000)
    assert len(body) == 5000
    assert body == file_bytes(7, 5000)
    assert body != file_bytes(8, 5000)
    assert body.startswith(b"AGRB")
    assert file_bytes(1, 0) == b""


# -- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_img_route(server: RunningServer, ext: str) -> None:
    first = fetch(server.url(f"/img/12.{ext}"))
    second = fetch(server.url(f"/img/12.{ext}"))
    assert first.status == 200
    assert first.body == second.body == image_bytes(12, ext)
    assert first.headers["Content-Type"] == content_type(ext)
    assert int(first.headers["Content-Length"]) == len(first.body)
    with Image.open(io.BytesIO(first.body)) as img:
        img.load()


def test_img_route_sizes_and_errors(server: RunningServer) -> None:
    assert fetch(server.url("/img/2.png?size=medium")).body == image_bytes(2, "png", size="medium")
    assert fetch(server.url("/img/2.bmp")).status == 404
    assert fetch(server.url("/img/2.png?size=tiny")).status == 400
    assert fetch(server.url("/img/2.png?latency_ms=soon")).status == 400
    assert fetch(server.url("/nothing-here")).status == 404
    assert b"/img/" in fetch(server.url("/")).body


def test_file_and_status_routes(server: RunningServer) -> None:
    reply = fetch(server.url("/file/4.bin?bytes=3000"))
    assert reply.body == file_bytes(4, 3000)
    assert reply.headers["Content-Type"] == "application/octet-stream"
    assert len(fetch(server.url("/file/4.bin")).body) == 65536
    for code in (200, 404, 418, 500, 503):
        reply = fetch(server.url(f"/status/{code}"))
        assert reply.status == code
        assert str(code).encode() in reply.body
    assert fetch(server.url("/status/204")).status == 204


def test_flaky_counts_per_key(server: RunningServer) -> None:
    url = server.url("/flaky/counted/2?retry_after=3")
    for _ in range(2):
        reply = fetch(url)
        assert reply.status == 503
        assert reply.headers["Retry-After"] == "3"
    for _ in range(2):
        reply = fetch(url)
        assert reply.status == 200
        assert reply.body == image_bytes(flaky_image_index("counted"), "png")
    assert fetch(server.url("/flaky/other-key/1")).status == 503  # its own counter
    assert fetch(server.url("/flaky/other-key/1")).status == 200


def test_flaky_retry_after_http_date(server: RunningServer) -> None:
    before = time.time()
    reply = fetch(server.url("/flaky/dated/1?status=429&retry_after=30&date=1"))
    assert reply.status == 429
    when = email.utils.parsedate_to_datetime(reply.headers["Retry-After"]).timestamp()
    assert before + 29 <= when <= time.time() + 32
    assert "Retry-After" not in fetch(server.url("/flaky/plain/1")).headers


def test_reset_sends_half_then_rst(server: RunningServer) -> None:
    reply = raw_get(server.port, "/reset/3.jpg")
    assert reply.status_line.startswith("HTTP/1.1 200")
    assert int(reply.headers["content-length"]) == len(image_bytes(3, "jpg"))
    assert isinstance(reply.error, ConnectionResetError)
    assert 0 < len(reply.body) < len(image_bytes(3, "jpg"))


def test_truncated_closes_cleanly_short_of_content_length(server: RunningServer) -> None:
    reply = raw_get(server.port, "/truncated/3.jpg")
    full = image_bytes(3, "jpg")
    assert reply.error is None  # a FIN, not a reset
    assert int(reply.headers["content-length"]) == len(full)
    assert 0 < len(reply.body) < len(full)
    assert full.startswith(reply.body)


def test_drip_is_slow_but_complete(server: RunningServer) -> None:
    full = image_bytes(4, "jpg")
    chunks = -(-len(full) // 8192)
    start = time.monotonic()
    reply = fetch(server.url("/drip/4.jpg?interval_ms=30&chunk=8192"))
    assert time.monotonic() - start >= (chunks - 1) * 0.03
    assert reply.body == full


def test_stall_sends_headers_only(server: RunningServer) -> None:
    reply = raw_get(server.port, "/stall/1.jpg", timeout=0.5)
    assert reply.status_line.startswith("HTTP/1.1 200")
    assert int(reply.headers["content-length"]) > 0
    assert reply.body == b""
    assert isinstance(reply.error, TimeoutError)


def test_redirect_chain(server: RunningServer) -> None:
    path, hops = "/redirect/3/8.webp?size=small", 0
    while (reply := fetch(server.url(path))).status == 302:
        path, hops = reply.headers["Location"], hops + 1
    assert hops == 3
    assert path == "/img/8.webp?size=small"
    assert reply.body == image_bytes(8, "webp")
    assert fetch(server.url("/redirect/0/8.webp")).body == image_bytes(8, "webp")
    reply = fetch(server.url("/redirect/1/8.webp?status=307"))
    assert (reply.status, reply.headers["Location"]) == (307, "/img/8.webp?status=307")


def test_redirect_loop_and_redirect_to(server: RunningServer) -> None:
    first = fetch(server.url("/redirect-loop/5"))
    assert (first.status, first.headers["Location"]) == (302, "/redirect-loop/5/b")
    assert fetch(server.url("/redirect-loop/5/b")).headers["Location"] == "/redirect-loop/5"
    reply = fetch(server.url("/redirect-to?url=file:///etc/passwd&status=301"))
    assert (reply.status, reply.headers["Location"]) == (301, "file:///etc/passwd")
    assert fetch(server.url("/redirect-to")).status == 400


def test_html_routes(server: RunningServer) -> None:
    fake = fetch(server.url("/html-as-jpeg/1.jpg"))
    assert fake.headers["Content-Type"] == "image/jpeg"
    assert fake.body.startswith(b"<!DOCTYPE html>")
    page = fetch(server.url("/html/2"))
    assert page.headers["Content-Type"].startswith("text/html")
    assert b'<img src="/img/6.jpg"' in page.body
    assert b'<a href="/html/5">' in page.body


@pytest.mark.parametrize("length", [1, 0])
def test_huge(server: RunningServer, length: int) -> None:
    reply = fetch(server.url(f"/huge/2.jpg?length={length}"))
    assert reply.body.startswith(b"\xff\xd8\xff\xe0")
    assert len(reply.body) == 2 * 1024 * 1024
    if length:
        assert reply.headers["Content-Length"] == str(2 * 1024 * 1024)
    else:
        assert "Content-Length" not in reply.headers
        assert reply.headers["Transfer-Encoding"] == "chunked"


def test_headers_echo_and_disposition(server: RunningServer) -> None:
    echoed = json.loads(fetch(server.url("/headers"), headers={"X-Probe": "yes"}).body)
    assert echoed["X-Probe"] == "yes"
    reply = fetch(server.url("/disposition/1.jpg"))
    assert reply.headers["Content-Disposition"] == 'attachment; filename="../../../etc/evil.jpg"'
    assert reply.body == image_bytes(1, "jpg")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_echo(server: RunningServer, method: str) -> None:
    data = None if method == "GET" else b'{"a": [1, 2]}'
    reply = fetch(server.url("/echo?x=1&status=201"), method=method, data=data)
    assert reply.status == 201
    payload = json.loads(reply.body)
    assert payload["method"] == method
    assert payload["path"] == "/echo"
    assert payload["query"] == {"x": "1", "status": "201"}
    assert payload["json"] == (None if data is None else {"a": [1, 2]})
    assert payload["body"] == ("" if data is None else data.decode())
    assert "Host" in payload["headers"]


def test_latency_and_delay_queries(server: RunningServer) -> None:
    start = time.monotonic()
    fetch(server.url("/img/1.jpg?latency_ms=200"))
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    fetch(server.url("/echo?delay_ms=150"))
    assert time.monotonic() - start >= 0.15


def test_bandwidth_query_paces_the_body(server: RunningServer) -> None:
    start = time.monotonic()  # 0.5 MiB at 8000 kbit/s (1 MB/s): about 0.52 s
    reply = fetch(server.url("/huge/0.5.jpg?bandwidth_kbps=8000"))
    assert time.monotonic() - start >= 0.45
    assert len(reply.body) == 512 * 1024


def test_requests_are_recorded(server: RunningServer) -> None:
    fetch(server.url("/img/9.gif?size=small"), headers={"X-Trace": "abc"})
    last = server.requests[-1]
    assert (last.method, last.path_qs) == ("GET", "/img/9.gif?size=small")
    assert last.headers["X-Trace"] == "abc"
    assert abs(last.time - time.monotonic()) < 5
    server.clear_requests()
    assert server.requests == []


# -- ways to run it --------------------------------------------------------------------------


def test_config_validation_and_loopback_only() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        ServerConfig(latency_ms=-1)
    with pytest.raises(ValueError, match="loopback"):
        ServerProcess(host="0.0.0.0")

    async def main() -> None:
        async with open_server(host="0.0.0.0"):
            pass

    with pytest.raises(ValueError, match="loopback"):
        asyncio.run(main())


def test_open_server_with_config_and_aiohttp_client() -> None:
    async def main() -> None:
        config = ServerConfig(latency_ms=100, bandwidth_kbps=4000, seed=2, record=False)
        async with open_server(config) as server, aiohttp.ClientSession() as session:
            assert server.base_url == f"http://127.0.0.1:{server.port}"
            start = time.monotonic()  # 100 ms latency + 256 KiB at 500 KB/s
            async with session.get(server.url("/huge/0.25.jpg")) as resp:
                assert len(await resp.read()) == 256 * 1024
            assert time.monotonic() - start >= 0.1 + 0.45
            async with session.get(server.url("img/3.png?latency_ms=0&bandwidth_kbps=0")) as resp:
                assert await resp.read() == image_bytes(3, "png", seed=2)
            for path in ("/reset/1.jpg", "/truncated/1.jpg"):
                with pytest.raises(aiohttp.ClientPayloadError):
                    async with session.get(server.url(path)) as resp:
                        await resp.read()
            assert server.requests == []

    asyncio.run(main())


def test_shutdown_is_prompt_with_stalled_and_slow_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = [
        "/stall/1.jpg",
        "/drip/1.jpg?interval_ms=1000",
        "/img/1.jpg?latency_ms=60000",
        "/huge/50.jpg?bandwidth_kbps=800",
    ]

    async def hang(session: aiohttp.ClientSession, url: str) -> Exception | None:
        try:
            async with session.get(url) as resp:
                resp.raise_for_status()  # the latency sleep ends in a 503
                await resp.read()
        except aiohttp.ClientError as exc:
            return exc
        return None

    async def main() -> float:
        async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
            async with open_server() as server:
                hanging = [tasks.create_task(hang(session, server.url(path))) for path in slow]
                await asyncio.sleep(0.3)
                start = time.monotonic()
            elapsed = time.monotonic() - start
        assert all(isinstance(task.result(), aiohttp.ClientError) for task in hanging)
        return elapsed

    caplog.set_level(logging.DEBUG)
    assert asyncio.run(main()) < 1.0
    errors = [
        r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR
    ]
    assert not errors


def test_server_process_serves_and_stops() -> None:
    with ServerProcess(ServerConfig(seed=4)) as proc:
        assert proc.base_url == f"http://127.0.0.1:{proc.port}"
        pid = proc.pid
        assert fetch(proc.url("/img/6.webp")).body == image_bytes(6, "webp", seed=4)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # terminated and reaped
    with pytest.raises(RuntimeError, match="not running"):
        _ = proc.pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_one_line_and_exits_cleanly_on_signal(sig: signal.Signals) -> None:
    command = [sys.executable, "-m", "aiograb.testing", "--port", "0", "--latency-ms", "1"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving on http://127.0.0.1:")
        assert fetch(line.split()[-1] + "/status/200").status == 200
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert (out, err) == ("", "")
