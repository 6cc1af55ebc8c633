"""The libcurl transport against real local servers: bodies, streaming, errors, reuse, threads."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from aiograb._core.config import Limits, Timeouts
from aiograb._core.errors import BlockedAddress, RequestError, UsageError
from aiograb._http.aiohttp_transport import AiohttpTransport
from aiograb._http.curl_transport import HIGH_WATER, CurlTransport
from aiograb._http.default import ENV_VAR, make_transport, transport_name
from aiograb.testing import RunningServer, image_bytes
from tests.helpers import aiograb_cli, closed_port, manifest, run, serve_app

TIMEOUTS = Timeouts(total=10, connect=5)


async def _get(
    transport: CurlTransport,
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeouts: Timeouts = TIMEOUTS,
) -> tuple[int, Any, bytes]:
    async with transport.send(
        method, URL(url, encoded=True), headers=headers or {}, body=body, timeouts=timeouts
    ) as resp:
        data = b""
        while chunk := await resp.read_chunk():
            data += chunk
        return resp.status, resp.headers, data


def test_body_status_and_headers(server: RunningServer) -> None:
    async def main() -> None:
        t = CurlTransport(Limits())
        try:
            status, headers, body = await _get(t, server.url("/img/5.webp"))
            assert (status, body) == (200, image_bytes(5, "webp"))
            assert headers["content-type"] == "image/webp"  # case-insensitive
            status, headers, body = await _get(t, server.url("/status/404"))
            assert status == 404
            status, headers, body = await _get(t, server.url("/redirect/1/2.png"))
            assert (status, headers["Location"]) == (302, "/img/2.png")
            async with t.send(
                "GET", URL(server.url("/img/7.jpg")), headers={}, body=None, timeouts=TIMEOUTS
            ) as resp:
                assert await resp.read_all() == image_bytes(7, "jpg")
        finally:
            await t.aclose()

    run(main())


def test_request_methods_headers_and_bodies(server: RunningServer) -> None:
    async def echo(method: str, body: bytes | None, **headers: str) -> dict[str, Any]:
        t = CurlTransport(Limits())
        try:
            status, _, data = await _get(
                t, server.url("/echo"), method=method, body=body, headers=headers
            )
        finally:
            await t.aclose()
        assert status == 200
        return dict(json.loads(data))

    post = run(echo("POST", b'{"a": 1}', **{"Content-Type": "application/json", "X-A": "1"}))
    assert (post["method"], post["json"], post["headers"]["X-A"]) == ("POST", {"a": 1}, "1")
    assert post["headers"]["Content-Type"] == "application/json"
    put = run(echo("PUT", b"raw"))
    assert (put["method"], put["body"]) == ("PUT", "raw")
    assert "Content-Type" not in put["headers"]  # not libcurl's form type
    delete = run(echo("DELETE", None))
    assert delete["method"] == "DELETE"
    assert "Content-Length" not in delete["headers"]
    get = run(echo("GET", None))
    assert "User-Agent" not in get["headers"]  # none unless asked, as with aiohttp
    assert run(echo("GET", None, **{"User-Agent": "me/1"}))["headers"]["User-Agent"] == "me/1"


def test_shared_read_only_headers_are_sent_alike_each_time_and_others_checked_each_time(
    server: RunningServer,
) -> None:
    """A fetcher's defaults (one read-only mapping) are checked and formatted once and kept;
    a mutable mapping is never kept: changed between requests, it is sent as it is now, and
    an injected line in it is refused."""
    from types import MappingProxyType

    from aiograb._core.errors import InvalidRequest

    shared = MappingProxyType({"X-Shared": "1", "User-Agent": "me/2"})
    mutable = {"X-Mine": "a"}

    async def echo(t: CurlTransport, headers: Any, method: str = "GET") -> dict[str, str]:
        async with t.send(
            method, URL(server.url("/echo")), headers=headers, body=None, timeouts=TIMEOUTS
        ) as resp:
            return dict(json.loads(await resp.read_all())["headers"])

    async def main() -> None:
        t = CurlTransport(Limits())
        try:
            for _ in range(3):
                got = await echo(t, shared)
                assert (got["X-Shared"], got["User-Agent"]) == ("1", "me/2")
            assert (await echo(t, shared, "OPTIONS"))["X-Shared"] == "1"
            with pytest.raises(InvalidRequest, match="invalid method"):
                await echo(t, shared, "BAD METHOD")  # the method is still checked
            assert (await echo(t, mutable))["X-Mine"] == "a"
            mutable["X-Mine"] = "b"
            assert (await echo(t, mutable))["X-Mine"] == "b"
            mutable["X-Mine"] = "b\r\nInjected: yes"
            with pytest.raises(InvalidRequest, match="CR, LF or NUL"):
                await echo(t, mutable)
            assert (await echo(t, shared))["X-Shared"] == "1"  # and back to the kept one
        finally:
            await t.aclose()

    run(main())


def test_a_handle_goes_back_to_get_after_another_method(server: RunningServer) -> None:
    async def main() -> list[str]:
        t = CurlTransport(Limits(concurrency=1))
        methods = []
        try:
            for method, body in (("POST", b"x"), ("GET", None), ("HEAD", None), ("GET", None)):
                status, _, data = await _get(t, server.url("/echo"), method=method, body=body)
                methods.append(json.loads(data)["method"] if data else f"{method}:{status}")
        finally:
            await t.aclose()
        return methods

    assert run(main()) == ["POST", "GET", "HEAD:200", "GET"]


def test_a_large_body_streams_with_bounded_buffer(server: RunningServer) -> None:
    async def main() -> tuple[int, int]:
        t = CurlTransport(Limits())
        total = most = 0
        try:
            async with t.send(
                "GET", URL(server.url("/huge/6.jpg")), headers={}, body=None, timeouts=TIMEOUTS
            ) as resp:
                await asyncio.sleep(0.3)  # a slow reader: libcurl must pause, not buffer 6 MiB
                while chunk := await resp.read_chunk():
                    most = max(most, len(chunk))
                    total += len(chunk)
        finally:
            await t.aclose()
        return total, most

    total, most = run(main())
    assert total == 6 * 1024 * 1024
    assert most <= HIGH_WATER + 64 * 1024


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/truncated/3.jpg", "truncated"),
        ("/reset/3.jpg", "connection_reset"),
        ("/stall/3.jpg", "timeout"),
    ],
)
def test_errors_map_to_our_tree(server: RunningServer, path: str, code: str) -> None:
    async def main() -> RequestError:
        t = CurlTransport(Limits())
        try:
            with pytest.raises(RequestError) as info:
                await _get(t, server.url(path), timeouts=Timeouts(total=0.5, connect=0.5))
        finally:
            await t.aclose()
        return info.value

    error = run(main())
    assert error.code == code
    assert error.url == server.url(path)


def test_connect_and_dns_errors() -> None:
    async def code(url: str) -> str:
        t = CurlTransport(Limits())
        try:
            with pytest.raises(RequestError) as info:
                await _get(t, url, timeouts=Timeouts(total=5, connect=5))
        finally:
            await t.aclose()
        return info.value.code

    assert run(code(f"http://127.0.0.1:{closed_port()}/x.jpg")) == "connect_refused"
    assert run(code("http://no-such-host.invalid/x.jpg")) == "dns_error"


def test_the_address_policy_sees_every_address_before_connecting(server: RunningServer) -> None:
    seen: list[tuple[str, str]] = []

    def refuse(host: str, address: str) -> None:
        seen.append((host, address))
        raise BlockedAddress(f"{address} is private", url="", code="blocked_address")

    def allow(host: str, address: str) -> None:
        seen.append((host, address))

    async def main(policy: Callable[[str, str], None]) -> int:
        t = CurlTransport(Limits(), address_policy=policy)
        try:
            status, _, _ = await _get(t, server.url("/img/1.png"))
        finally:
            await t.aclose()
        return status

    with pytest.raises(BlockedAddress):
        run(main(refuse))
    assert seen == [("127.0.0.1", "127.0.0.1")]
    assert run(main(allow)) == 200


def test_connections_are_reused_and_threads_do_not_grow() -> None:
    ports: list[int] = []

    async def peer(request: web.Request) -> web.Response:
        assert request.transport is not None
        ports.append(request.transport.get_extra_info("peername")[1])
        await asyncio.sleep(0.01)
        return web.Response(body=b"x" * 2000, content_type="image/png")

    app = web.Application()
    app.router.add_get("/{n}", peer)

    async def main() -> int:
        async with serve_app(app) as base:
            t = CurlTransport(Limits(concurrency=20))
            try:
                for _ in range(3):  # three waves of 20 at once over the same 20 connections
                    got = await asyncio.gather(*(_get(t, f"{base}/{i}") for i in range(20)))
                    assert all(g[0] == 200 and len(g[2]) == 2000 for g in got)
                return len(os.listdir("/proc/self/task"))
            finally:
                await t.aclose()

    before = len(os.listdir("/proc/self/task"))
    assert run(main()) <= before  # this test's server runs on the same loop
    assert len(ports) == 60
    assert len(set(ports)) <= 20


def test_cancelling_a_request_frees_its_handle(server: RunningServer) -> None:
    async def main() -> int:
        t = CurlTransport(Limits())
        try:
            task = asyncio.ensure_future(_get(t, server.url("/stall/1.jpg")))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not t._active
            status, _, _ = await _get(t, server.url("/img/1.png"))
        finally:
            await t.aclose()
        return status

    assert run(main()) == 200


def test_make_transport_follows_limits_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert isinstance(make_transport(Limits()), CurlTransport)  # the default
    assert isinstance(make_transport(Limits(transport="aiohttp")), AiohttpTransport)
    monkeypatch.setenv(ENV_VAR, "aiohttp")
    assert isinstance(make_transport(Limits()), AiohttpTransport)
    assert isinstance(make_transport(Limits(transport="curl")), CurlTransport)
    assert transport_name(Limits(transport="aiohttp")) == "aiohttp"
    monkeypatch.setenv(ENV_VAR, "bogus")
    with pytest.raises(UsageError, match=ENV_VAR):
        make_transport(Limits())
    with pytest.raises(UsageError, match="transport must be one of"):
        Limits(transport="bogus")


def test_cli_get_with_curl(server: RunningServer, tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(20)))
    urls.write_text(urls.read_text() + server.url("/status/404") + "\n")
    done = aiograb_cli("get", urls, "-o", tmp_path / "out", "--transport", "curl", "-q")
    assert done.returncode == 1, done.stderr  # one URL failed
    rows = {r["url"]: r for r in manifest(tmp_path / "out")}
    assert rows[server.url("/status/404")]["error"] == "http_404"
    ok = [r for r in rows.values() if r["state"] == "ok"]
    assert len(ok) == 20
    assert (tmp_path / "out" / ok[0]["path"]).read_bytes() == image_bytes(
        int(Path(ok[0]["url"]).stem), "png"
    )


def test_the_head_is_the_last_response_s() -> None:
    from aiograb._http.curl_mapping import parse_head as _parse_head

    raw = [
        b"HTTP/1.1 100 Continue\r\n",
        b"\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"Set-Cookie: a=1\r\n",
        b"set-cookie: b=2\r\n",
        b"X-Name: caf\xc3\xa9 \xff\r\n",
        b"\r\n",
    ]
    status, headers = _parse_head(raw)
    assert status == 200
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert headers["x-name"] == "café \udcff"  # as aiohttp decodes it
    assert _parse_head([b"HTTP/2 404\r\n", b"\r\n"])[0] == 404
    # A server that ends its lines with a bare LF: still the last response's status.
    assert _parse_head([b"HTTP/1.1 103 Early\n", b"\n", b"HTTP/1.1 201 Made\n", b"\n"])[0] == 201
    assert _parse_head([b"HTTP/1.1 204 None\n", b"\n"])[0] == 204
    assert _parse_head([]) == (0, {})


def test_host_names_are_looked_up_on_the_loop_not_in_libcurl_threads(
    server: RunningServer,
) -> None:
    port = URL(server.base_url).port

    async def main() -> tuple[list[int], int, int]:
        t = CurlTransport(Limits(concurrency=50))
        try:
            # 50 at once to a name: libcurl's threaded resolver would start a thread each.
            got = await asyncio.gather(
                *(_get(t, f"http://localhost:{port}/img/{i}.png") for i in range(50))
            )
            threads = len(os.listdir("/proc/self/task"))
            lookups = []
            resolve = t._resolver.resolve

            async def counted(*args: Any) -> Any:
                lookups.append(args)
                return await resolve(*args)

            t._resolver.resolve = counted
            again = await asyncio.gather(*(_get(t, f"http://localhost:{port}/") for _ in range(5)))
            assert [g[0] for g in again] == [200] * 5
            assert not lookups  # the addresses were kept
            with pytest.raises(RequestError) as info:
                await _get(t, "http://no-such-host.invalid/x.jpg")
            assert info.value.code == "dns_error"
            return [g[0] for g in got], threads, len(t._dns)
        finally:
            await t.aclose()

    before = len(os.listdir("/proc/self/task"))
    statuses, threads, cached = run(main())
    assert statuses == [200] * 50
    assert threads <= before + 1  # c-ares' one helper thread at most (pycares 5)
    assert cached == 1


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        # a dead proxy whose port happens to contain 407 may come back
        ("Failed to connect to 127.0.0.1:40749 over proxy 127.0.0.1 after 0 ms", True),
        ("CONNECT tunnel failed, response 407", False),
        ("Received HTTP code 403 from proxy after CONNECT", False),
        ("User was rejected by the SOCKS5 server (1 1).", False),
    ],
)
def test_a_proxy_that_answered_is_not_retried(message: str, retryable: bool) -> None:
    import pycurl

    from aiograb._http.curl_mapping import translate_curl

    error = translate_curl(pycurl.E_COULDNT_CONNECT, message, "http://a.test/", proxied=True)
    assert error.code == "proxy_error"
    assert error.retryable is retryable


def test_a_busy_destination_is_spread_over_lanes_and_its_connections_reused() -> None:
    """150 transfers at once to one server: three multi handles of at most 64 each; a
    wave after it reuses the same connections, and the lanes forget the server when
    its transfers are over."""
    ports: list[int] = []
    gate, arrived, wave_ends = asyncio.Event(), asyncio.Event(), [150]

    async def peer(request: web.Request) -> web.Response:
        assert request.transport is not None
        ports.append(request.transport.get_extra_info("peername")[1])
        if len(ports) >= wave_ends[0]:
            arrived.set()
        await gate.wait()
        return web.Response(body=b"y" * 500, content_type="image/png")

    app = web.Application()
    app.router.add_get("/{n}", peer)

    async def main() -> tuple[list[int], int]:
        async with serve_app(app) as base:
            t = CurlTransport(Limits(concurrency=200))
            try:
                seen: list[int] = []
                for n in (150, 300):
                    gate.clear()
                    arrived.clear()
                    wave_ends[0] = n
                    wave = asyncio.gather(*(_get(t, f"{base}/{i}") for i in range(150)))
                    async with asyncio.timeout(10):  # every request of the wave is at the server
                        await arrived.wait()
                    assert t._multis is not None
                    seen.append(len(t._multis.lanes.all))
                    assert sorted(lane.added for lane in t._multis.lanes.all) == [22, 64, 64]
                    gate.set()
                    got = await wave
                    assert all(g[0] == 200 and len(g[2]) == 500 for g in got)
                assert t._multis is not None
                return seen, t._multis.lanes.destinations()
            finally:
                await t.aclose()

    lanes, left = run(main())
    assert lanes == [3, 3]
    assert left == 0
    assert len(ports) == 300
    assert len(set(ports)) <= 150  # the second wave on the first wave's connections


def test_a_destination_under_the_lane_width_stays_in_one_lane() -> None:
    async def main() -> tuple[int, int]:
        async with serve_app(_counting_app()) as base:
            t = CurlTransport(Limits(concurrency=500))
            other = base.replace("127.0.0.1", "localhost")  # another destination, same server
            try:
                urls = [f"{b}/{i}" for i in range(60) for b in (base, other)]
                got = await asyncio.gather(*(_get(t, u) for u in urls))
                assert all(g[0] == 200 for g in got)
                assert t._multis is not None
                return len(t._multis.lanes.all), t._multis.lanes.destinations()
            finally:
                await t.aclose()

    assert run(main()) == (1, 0)


def _counting_app() -> web.Application:
    async def peer(request: web.Request) -> web.Response:
        await asyncio.sleep(0.02)
        return web.Response(body=b"z" * 100)

    app = web.Application()
    app.router.add_get("/{n}", peer)
    return app


def _client_connections(ports: set[int]) -> int:
    """This machine's established TCP connections to one of ``ports`` (the client ends)."""
    established = 0
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rpartition(":")[2], 16) in ports:
                established += 1
    return established


def test_the_lanes_never_hold_more_connections_than_the_concurrency() -> None:
    """128 idle connections to 128 servers, then 128 transfers at once to another one:
    a second lane takes half of them, and the first closes idle connections to make
    room, so 128 are open, not 192."""
    gate, all_held, held = asyncio.Event(), asyncio.Event(), [0]

    async def peer(request: web.Request) -> web.Response:
        if request.match_info["n"] == "hold":
            held[0] += 1
            if held[0] == 128:
                all_held.set()
            await gate.wait()
        return web.Response(body=b"x" * 100)

    app = web.Application()
    app.router.add_get("/{n}", peer)

    async def main() -> tuple[int, int, int, int]:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        t = CurlTransport(Limits(concurrency=128))
        try:
            for _ in range(129):
                await web.TCPSite(runner, "127.0.0.1", 0).start()
            ports = sorted(address[1] for address in runner.addresses)
            got = await asyncio.gather(*(_get(t, f"http://127.0.0.1:{p}/a") for p in ports[:128]))
            assert all(g[0] == 200 for g in got)
            idle = _client_connections(set(ports))
            busy = f"http://127.0.0.1:{ports[128]}/hold"
            wave = asyncio.gather(*(_get(t, busy) for _ in range(128)))
            async with asyncio.timeout(10):
                await all_held.wait()
            during = _client_connections(set(ports))
            assert t._multis is not None
            lanes = len(t._multis.lanes.all)
            gate.set()
            assert all(g[0] == 200 for g in await wave)
            return idle, during, lanes, _client_connections(set(ports))
        finally:
            await t.aclose()
            await runner.cleanup()

    idle, during, lanes, after = run(main())
    assert (idle, lanes) == (128, 2)
    assert during == 128  # all of them the busy server's
    assert after <= 128
