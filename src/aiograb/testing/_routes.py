"""The handlers of the test server's routes (the table is in ``_server.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import hashlib
import json
import math
import socket
import struct
import time
import zlib
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler

from aiograb.testing._images import EXTENSIONS, SIZES, content_type, file_bytes, image_bytes
from aiograb.testing._site import add_site_routes
from aiograb.testing._state import STATE, RecordedRequest, ServerState

__all__ = ["add_routes", "flaky_image_index"]

_CHUNK = 64 * 1024
_JPEG_MAGIC = b"\xff\xd8\xff\xe0"
_EVIL_FILENAME = "../../../etc/evil.jpg"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CLOSE = {"Connection": "close"}


def flaky_image_index(key: str) -> int:
    """The image index that ``/flaky/{key}/...`` serves once it stops failing."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 1000


def add_routes(app: web.Application) -> None:
    """Add every route, the middleware (recording, latency) and the shutdown hook to ``app``."""
    app.middlewares.append(_middleware)
    app.on_shutdown.append(_on_shutdown)
    add = app.router.add_get
    add("/", _index)
    add(r"/img/{n:\d+}.{ext:[a-z]+}", _img)
    add(r"/file/{n:\d+}.bin", _file)
    add(r"/status/{code:\d+}", _status)
    add(r"/flaky/{key}/{fails:\d+}", _flaky)
    add(r"/reset/{n:\d+}.jpg", _reset)
    add(r"/truncated/{n:\d+}.jpg", _truncated)
    add(r"/drip/{n:\d+}.jpg", _drip)
    add(r"/stall/{n:\d+}.jpg", _stall)
    add(r"/redirect/{k:\d+}/{n:\d+}.{ext:[a-z]+}", _redirect)
    add(r"/redirect-loop/{n:\d+}", _redirect_loop)
    add(r"/redirect-loop/{n:\d+}/b", _redirect_loop)
    add("/redirect-to", _redirect_to)
    add(r"/html-as-jpeg/{n:\d+}.jpg", _html_as_jpeg)
    add(r"/html/{n:\d+}", _html)
    add(r"/huge/{mb:\d+(?:\.\d+)?}.jpg", _huge)
    add(r"/gzip-bomb/{mb:\d+}.jpg", _gzip_bomb)
    add("/headers", _headers)
    app.router.add_route("*", "/echo", _echo)
    add(r"/disposition/{n:\d+}.jpg", _disposition)
    add_site_routes(app)  # /robots.txt, /site/..., /plain/...: the site to crawl


async def _on_shutdown(app: web.Application) -> None:
    app[STATE].stopping.set()


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if state.config.record:
        state.requests.append(
            RecordedRequest(
                request.method, request.path_qs, dict(request.headers), time.monotonic()
            )
        )
    latency = state.config.latency_ms
    if request.query_string:
        latency = _query_float(request, "latency_ms", latency)
    try:
        if latency > 0:
            await _sleep(state, latency / 1000)
        return await handler(request)
    except _Stopped:
        # Shutting down before the response started: say so rather than hang or 500.
        return web.Response(status=503, text="server is shutting down\n", headers=_CLOSE)


# -- helpers ---------------------------------------------------------------------------------


class _Stopped(Exception):
    """The server is shutting down: end the response now."""


async def _sleep(state: ServerState, seconds: float) -> None:
    """Sleep, but raise :class:`_Stopped` as soon as the server begins to shut down."""
    if state.stopping.is_set():
        raise _Stopped
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await state.stopping.wait()
    if state.stopping.is_set():
        raise _Stopped


def _query_float(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise web.HTTPBadRequest(text=f"{name} must be a number >= 0, got {raw!r}\n")
    return value


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise web.HTTPBadRequest(text=f"{name} must be an integer in {low}..{high}, got {raw!r}\n")
    return int(raw)


def _n(request: web.Request) -> int:
    return int(request.match_info["n"])


def _image(request: web.Request, n: int, ext: str) -> bytes:
    if ext not in EXTENSIONS:
        raise web.HTTPNotFound(text=f"unknown image extension {ext!r}\n")
    size = request.query.get("size", "small") if request.query_string else "small"
    if size not in SIZES:
        raise web.HTTPBadRequest(text=f"size must be one of {', '.join(SIZES)}\n")
    return image_bytes(n, ext, seed=request.app[STATE].config.seed, size=size)


class _Pacer:
    """Writes body chunks, pacing them to a rate in bytes per second (0 = unlimited)."""

    def __init__(self, request: web.Request) -> None:
        self._state = request.app[STATE]
        kbps = self._state.config.bandwidth_kbps
        if request.query_string:
            kbps = _query_float(request, "bandwidth_kbps", kbps)
        self.rate = kbps * 125.0  # kilobits/s to bytes/s
        self._chunk = int(min(_CHUNK, max(512.0, self.rate / 50))) if self.rate else _CHUNK
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        self._sent = 0

    async def write(self, resp: web.StreamResponse, data: bytes | memoryview) -> None:
        if self._state.stopping.is_set():
            raise _Stopped
        if not self.rate:
            await resp.write(data)
            return
        view = memoryview(data)
        for offset in range(0, len(view), self._chunk):
            piece = view[offset : offset + self._chunk]
            await resp.write(piece)
            self._sent += len(piece)
            delay = self._start + self._sent / self.rate - self._loop.time()
            if delay > 0:
                await _sleep(self._state, delay)


async def _stream(
    request: web.Request,
    resp: web.StreamResponse,
    chunks: Iterable[bytes | memoryview],
    *,
    pacer: _Pacer | None = None,
) -> bool:
    """Prepare ``resp`` and write ``chunks``; False if the client left or the server stopped.

    The connection is aborted when the server stops mid-body, so a half-sent
    response is never mistaken for a whole one.
    """
    pacer = pacer or _Pacer(request)
    try:
        await resp.prepare(request)
        for chunk in chunks:
            await pacer.write(resp, chunk)
    except ConnectionError:
        return False
    except _Stopped:
        if request.transport is not None:
            request.transport.abort()
        return False
    return True


async def _send(
    request: web.Request, body: bytes, ctype: str, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """A whole body, paced when a bandwidth applies."""
    pacer = _Pacer(request)
    if not pacer.rate:
        return web.Response(body=body, content_type=ctype, headers=headers)
    resp = web.StreamResponse(headers=headers)
    resp.content_type = ctype
    resp.content_length = len(body)
    await _stream(request, resp, [body], pacer=pacer)
    return resp


async def _partial(request: web.Request, body: bytes) -> web.StreamResponse | None:
    """Send headers (full Content-Length) and half of ``body``; None if that failed."""
    resp = web.StreamResponse()
    resp.content_type = "image/jpeg"
    resp.content_length = len(body)
    resp.force_close()
    if not await _stream(request, resp, [body[: len(body) // 2]]):
        return None
    transport = request.transport
    if transport is None:
        return None
    # Let the half body reach the kernel: abort() would drop what is still buffered.
    for _ in range(200):
        if transport.is_closing() or not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.005)
    return resp


# -- handlers --------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.StreamResponse:
    lines = [
        "aiograb test server. Routes (GET unless noted; all take ?latency_ms= ?bandwidth_kbps=):",
        "  /img/{n}.{ext}?size=thumb|small|medium|large   ext: " + ", ".join(EXTENSIONS),
        "  /file/{n}.bin?bytes=N",
        "  /status/{code}",
        "  /flaky/{key}/{fails}?status=503&retry_after=S&date=1",
        "  /reset/{n}.jpg  /truncated/{n}.jpg  /stall/{n}.jpg",
        "  /drip/{n}.jpg?interval_ms=200&chunk=1024",
        "  /redirect/{k}/{n}.{ext}?status=302  /redirect-loop/{n}  /redirect-to?url=U&status=302",
        "  /html-as-jpeg/{n}.jpg  /html/{n}?images=3&links=2",
        "  /huge/{mb}.jpg?length=1  /gzip-bomb/{mb}.jpg (a small gzip body: {mb} MB decoded)",
        "  /headers  /echo (any method)?status=N&delay_ms=D  /disposition/{n}.jpg",
    ]
    return web.Response(text="\n".join(lines) + "\n")


async def _img(request: web.Request) -> web.StreamResponse:
    ext = request.match_info["ext"]
    body = _image(request, _n(request), ext)  # 404 for an unknown ext
    return await _send(request, body, content_type(ext))


async def _file(request: web.Request) -> web.StreamResponse:
    size = _query_int(request, "bytes", 65536, 0, 256 * 1024 * 1024)
    return await _send(request, file_bytes(_n(request), size), "application/octet-stream")


async def _status(request: web.Request) -> web.StreamResponse:
    code = int(request.match_info["code"])
    if not 200 <= code <= 599:
        raise web.HTTPBadRequest(text="status must be in 200..599\n")
    if code in (204, 304):
        return web.Response(status=code)
    return web.Response(status=code, text=f"status {code}\n")


async def _flaky(request: web.Request) -> web.StreamResponse:
    key, fails = request.match_info["key"], int(request.match_info["fails"])
    counts = request.app[STATE].flaky_counts
    counts[key] = count = counts.get(key, 0) + 1
    if count > fails:
        return await _send(request, _image(request, flaky_image_index(key), "png"), "image/png")
    status = _query_int(request, "status", 503, 200, 599)
    headers = {}
    if "retry_after" in request.query:
        seconds = _query_float(request, "retry_after", 0.0)
        if request.query.get("date") == "1":
            when = math.ceil(time.time() + seconds)
            headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
        else:
            headers["Retry-After"] = request.query["retry_after"]
    text = f"flaky {key!r}: failure {count} of {fails}\n"
    return web.Response(status=status, text=text, headers=headers)


async def _reset(request: web.Request) -> web.StreamResponse:
    resp = await _partial(request, _image(request, _n(request), "jpg"))
    transport = request.transport
    if resp is not None and transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() then sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return resp or web.StreamResponse()


async def _truncated(request: web.Request) -> web.StreamResponse:
    resp = await _partial(request, _image(request, _n(request), "jpg"))
    if resp is not None and request.transport is not None:
        request.transport.close()  # flushes, then FIN
    return resp or web.StreamResponse()


async def _drip(request: web.Request) -> web.StreamResponse:
    interval = _query_float(request, "interval_ms", 200.0) / 1000
    chunk = _query_int(request, "chunk", 1024, 1, 1 << 30)
    body = _image(request, _n(request), "jpg")
    resp = web.StreamResponse()
    resp.content_type = "image/jpeg"
    resp.content_length = len(body)
    state = request.app[STATE]

    async def pieces() -> None:
        for offset in range(0, len(body), chunk):
            if offset:
                await _sleep(state, interval)
            await resp.write(body[offset : offset + chunk])

    with contextlib.suppress(ConnectionError):
        await resp.prepare(request)
        try:
            await pieces()
        except _Stopped:
            if request.transport is not None:
                request.transport.abort()
    return resp


async def _stall(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "image/jpeg"
    resp.content_length = len(_image(request, _n(request), "jpg"))
    state = request.app[STATE]
    with contextlib.suppress(ConnectionError):
        await resp.prepare(request)
        # Poll for the client leaving: aiohttp does not cancel handlers when it does.
        while (transport := request.transport) is not None and not transport.is_closing():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await state.stopping.wait()
            if state.stopping.is_set():
                transport.abort()
                break
    return resp


def _redirect_response(location: str, status: int) -> web.Response:
    return web.Response(status=status, headers={"Location": location}, text=f"-> {location}\n")


async def _redirect(request: web.Request) -> web.StreamResponse:
    k, n, ext = int(request.match_info["k"]), _n(request), request.match_info["ext"]
    if k == 0:
        return await _img(request)
    status = _query_int(request, "status", 302, 300, 399)
    if status not in _REDIRECT_STATUSES:
        raise web.HTTPBadRequest(text=f"status must be one of {sorted(_REDIRECT_STATUSES)}\n")
    target = f"/img/{n}.{ext}" if k == 1 else f"/redirect/{k - 1}/{n}.{ext}"
    if request.query_string:
        target += "?" + request.query_string
    return _redirect_response(target, status)


async def _redirect_loop(request: web.Request) -> web.StreamResponse:
    base = f"/redirect-loop/{_n(request)}"
    return _redirect_response(base if request.path.endswith("/b") else base + "/b", 302)


async def _redirect_to(request: web.Request) -> web.StreamResponse:
    url = request.query.get("url")
    if not url or any(c in url for c in "\r\n\0"):
        raise web.HTTPBadRequest(text="url is required and must be one line\n")
    return _redirect_response(url, _query_int(request, "status", 302, 300, 399))


async def _html_as_jpeg(request: web.Request) -> web.StreamResponse:
    body = (
        "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
        f"<body><h1>Service Unavailable</h1><p>Image {_n(request)} is not here.</p></body>"
        "</html>\n"
    )
    return await _send(request, body.encode(), "image/jpeg")


async def _html(request: web.Request) -> web.StreamResponse:
    n = _n(request)
    images = _query_int(request, "images", 3, 0, 10_000)
    links = _query_int(request, "links", 2, 0, 10_000)
    parts = [f"<!DOCTYPE html>\n<html><head><title>Page {n}</title></head><body>"]
    parts.append(f"<h1>Page {n}</h1><p>A page of the aiograb test server.</p>")
    parts += [f'<img src="/img/{n * images + i}.jpg" alt="image {i}">' for i in range(images)]
    parts += [f'<a href="/html/{n * links + i + 1}">page</a>' for i in range(links)]
    parts.append("</body></html>\n")
    return await _send(request, "\n".join(parts).encode(), "text/html")


def _huge_chunks(total: int) -> Iterable[memoryview]:
    block = memoryview(bytes(_CHUNK))
    first = memoryview(_JPEG_MAGIC + bytes(_CHUNK - len(_JPEG_MAGIC)))
    sent = 0
    while sent < total:
        size = min(_CHUNK, total - sent)
        yield (first if sent == 0 else block)[:size]
        sent += size


async def _huge(request: web.Request) -> web.StreamResponse:
    mb = float(request.match_info["mb"])
    total = max(len(_JPEG_MAGIC), int(mb * 1024 * 1024))
    resp = web.StreamResponse()
    resp.content_type = "image/jpeg"
    if _query_int(request, "length", 1, 0, 1):
        resp.content_length = total
    else:
        resp.enable_chunked_encoding()
    await _stream(request, resp, _huge_chunks(total))
    return resp


@functools.lru_cache(maxsize=4)
def _bomb(mb: int) -> bytes:
    """A JPEG's first bytes and zeros, ``mb`` MiB in all, gzip-compressed (~1,000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    parts = [packer.compress(_JPEG_MAGIC)]
    zeros = bytes(1024 * 1024)
    parts += [packer.compress(zeros) for _ in range(mb)]
    return b"".join([*parts, packer.flush()])


async def _gzip_bomb(request: web.Request) -> web.StreamResponse:
    mb = min(int(request.match_info["mb"]), 4096)
    body = await asyncio.to_thread(_bomb, mb)  # ~1 s a GiB, once per size
    headers = {"Content-Encoding": "gzip", "Content-Type": "image/jpeg"}
    return web.Response(body=body, headers=headers)


async def _headers(request: web.Request) -> web.StreamResponse:
    return web.json_response(dict(request.headers))


async def _echo(request: web.Request) -> web.StreamResponse:
    status = _query_int(request, "status", 200, 200, 599)
    delay = _query_float(request, "delay_ms", 0.0)
    if delay:
        await _sleep(request.app[STATE], delay / 1000)
    raw = await request.read()
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    payload = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "headers": dict(request.headers),
        "json": parsed,
        "body": text,
    }
    if status in (204, 304):
        return web.Response(status=status)
    return web.json_response(payload, status=status)


async def _disposition(request: web.Request) -> web.StreamResponse:
    headers = {"Content-Disposition": f'attachment; filename="{_EVIL_FILENAME}"'}
    return await _send(request, _image(request, _n(request), "jpg"), "image/jpeg", headers)
