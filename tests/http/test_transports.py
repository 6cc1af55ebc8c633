"""The transport seam: every transport answers with the same typed, case-insensitive response."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from aiohttp import web
from yarl import URL

from aiograb import ConnectError, InvalidRequest, Timeouts, TooLarge
from aiograb._core.config import Limits
from aiograb._http.aiohttp_transport import AiohttpTransport
from aiograb._http.base import make_headers
from aiograb._http.blocking import Urllib3Transport
from tests.helpers import closed_port, run, serve_app

TIMEOUTS = Timeouts(total=5, connect=2)


def _app(peers: list[int]) -> web.Application:
    async def head(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername")[1])
        resp = web.Response(body=b"x" * 100_000, content_type="image/png")
        resp.headers.add("X-Thing", "one")
        resp.headers.add("X-Thing", "two")
        return resp

    async def moved(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername")[1])
        return web.Response(status=302, headers={"Location": "/head"}, body=b"gone " * 1000)

    async def huge(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername")[1])
        return web.Response(body=b"x" * 1_000_000, content_type="image/png")

    app = web.Application()
    app.router.add_get("/huge", huge)
    app.router.add_get("/head", head)
    app.router.add_get("/moved", moved)
    return app


@contextmanager
def _server_thread(peers: list[int]) -> Iterator[str]:
    """The app on its own loop in a thread, for the blocking transport."""
    ready, stop = threading.Event(), None
    base: list[str] = []

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with serve_app(_app(peers)) as url:
            base.append(url)
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(10)
        yield base[0]
    finally:
        loop.call_soon_threadsafe(lambda: stop.set() if stop else None)
        thread.join(10)
        loop.close()


def test_make_headers_is_case_insensitive_and_keeps_repeats() -> None:
    headers = make_headers([("Content-Type", "image/png"), ("x-a", "1"), ("X-A", "2")])
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "image/png"
    assert headers.getall("x-a") == ["1", "2"]
    assert make_headers({"Location": "/x"}).get("location") == "/x"


def test_aiohttp_transport_headers_and_body() -> None:
    async def main() -> None:
        peers: list[int] = []
        async with serve_app(_app(peers)) as base:
            transport = AiohttpTransport(Limits(concurrency=4))
            try:
                url = URL(f"{base}/head")
                async with transport.send(
                    "GET", url, headers={}, body=None, timeouts=TIMEOUTS
                ) as r:
                    assert r.status == 200
                    assert r.url == str(url)
                    assert r.headers["content-type"] == "image/png"
                    assert r.headers.getall("x-thing") == ["one", "two"]
                    assert len(await r.read_all()) == 100_000
            finally:
                await transport.aclose()

    run(main())


def test_blocking_transport_headers_body_and_connection_reuse() -> None:
    peers: list[int] = []
    transport = Urllib3Transport()
    with _server_thread(peers) as base:
        try:
            # A redirect's body is never read: it is drained, and the connection reused.
            with transport.send(
                "GET", URL(f"{base}/moved"), headers={}, body=None, timeouts=TIMEOUTS
            ) as r:
                assert r.status == 302
                assert r.headers["location"] == "/head"
            url = URL(f"{base}/head")
            with transport.send("GET", url, headers={}, body=None, timeouts=TIMEOUTS) as r:
                assert r.status == 200
                assert r.url == str(url)
                assert r.headers["CONTENT-TYPE"] == "image/png"
                assert r.headers.getall("X-Thing") == ["one", "two"]
                body = b""
                while chunk := r.read_chunk():
                    body += chunk
                assert len(body) == 100_000
            # A body abandoned halfway closes its connection: the next request opens one.
            with transport.send("GET", url, headers={}, body=None, timeouts=TIMEOUTS) as r:
                assert r.read_chunk()  # one chunk of several, then the caller leaves
            with transport.send("GET", url, headers={}, body=None, timeouts=TIMEOUTS) as r:
                while r.read_chunk():
                    pass
            # A large body refused before reading (too_large by its length) is not drained.
            huge = URL(f"{base}/huge")
            send = transport.send("GET", huge, headers={}, body=None, timeouts=TIMEOUTS)
            with pytest.raises(TooLarge), send:
                raise TooLarge("Content-Length 1000000 > max_bytes=1000")
            with transport.send("GET", url, headers={}, body=None, timeouts=TIMEOUTS) as r:
                while r.read_chunk():
                    pass
        finally:
            transport.close()
    assert peers[0] == peers[1] == peers[2]  # drained and fully read: one connection
    assert peers[3] != peers[2]
    assert peers[4] == peers[3]
    assert peers[5] != peers[4]


def test_blocking_transport_maps_errors() -> None:
    transport = Urllib3Transport()
    url = URL(f"http://127.0.0.1:{closed_port()}/x")
    send = transport.send("GET", url, headers={}, body=None, timeouts=TIMEOUTS)
    with pytest.raises(ConnectError) as caught, send:
        pass
    assert caught.value.code == "connect_refused"
    assert caught.value.url == str(url)
    transport.close()


BAD_HEADS = [
    ("GET", {"X-Bad": "a\r\nInjected: yes"}, "header 'X-Bad' contains CR, LF or NUL"),
    ("GET", {"X-Bad\n": "a"}, "header 'X-Bad\\n' contains CR, LF or NUL"),
    ("GET", {"X-Nul": "a\0b"}, "header 'X-Nul' contains CR, LF or NUL"),
    ("GE T", {}, "invalid method 'GE T'"),
]


@pytest.mark.parametrize("name", ["aiohttp", "curl"])
def test_each_transport_refuses_what_cannot_be_sent_in_the_same_words(name: str) -> None:
    from aiograb._http.default import make_transport

    got: list[str] = []

    async def main() -> None:
        async with serve_app(_app([])) as base:
            t = make_transport(Limits(transport=name))
            try:
                for method, headers, _ in BAD_HEADS:
                    url = URL(f"{base}/head")
                    with pytest.raises(InvalidRequest) as info:
                        async with t.send(
                            method, url, headers=headers, body=None, timeouts=TIMEOUTS
                        ):
                            pass
                    assert info.value.url == str(url)
                    got.append(str(info.value))
                async with t.send(  # the transport is still usable
                    "GET", URL(f"{base}/head"), headers={"X-Ok": "1"}, body=None, timeouts=TIMEOUTS
                ) as response:
                    assert response.status == 200
                    await response.read_all()
            finally:
                await t.aclose()

    run(main())
    assert got == [message for _, _, message in BAD_HEADS]


def test_the_blocking_transport_refuses_it_in_the_same_words() -> None:
    transport = Urllib3Transport()
    url = URL(f"http://127.0.0.1:{closed_port()}/x")  # nothing is sent: no server needed
    got = []
    for method, headers, _ in BAD_HEADS:
        with pytest.raises(InvalidRequest) as info:
            transport.send(method, url, headers=headers, body=None, timeouts=TIMEOUTS)
        got.append(str(info.value))
    transport.close()
    assert got == [message for _, _, message in BAD_HEADS]
