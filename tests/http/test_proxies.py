"""Proxies against real proxy servers: tinyproxy (HTTP, CONNECT for https) and dante
(SOCKS5). Both connect out from 127.0.0.2, so the target's view of the peer
address proves a request went through the proxy; their logs say what they did.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvloop
from aiohttp import web
from yarl import URL

from aiograb import (
    BlockedAddress,
    CrawlOptions,
    Limits,
    Network,
    ProxyError,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
    crawl_async,
    open_client,
)
from aiograb._client.client import Result
from aiograb._http.default import make_transport
from aiograb._http.network import ProxyRoutes
from aiograb.testing import RunningServer, image_bytes
from tests.helpers import aiograb_cli, by_url, closed_port, manifest
from tests.procs import PROXY_SOURCE, Proc, danted, microsocks, tinyproxy

POLICY = RequestPolicy(accept="any", retry=RetryPolicy(retries=2, backoff=0.0))
PNG = image_bytes(1, "png")


def run(coro: Any) -> Any:
    return uvloop.run(coro)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as proc:
        yield proc


@pytest.fixture(scope="module")
def tiny_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with tinyproxy(tmp_path_factory.mktemp("tinyproxy-auth"), basic_auth=("ann", "s3cret")) as p:
        yield p


@pytest.fixture(scope="module")
def dante(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with danted(tmp_path_factory.mktemp("danted")) as proc:
        yield proc


def _app() -> web.Application:
    async def who(request: web.Request) -> web.Response:
        return web.json_response({"peer": request.remote, "host": request.host})

    async def page(request: web.Request) -> web.Response:
        # A page on the seed host "localhost" showing an image on another loopback host.
        port = request.url.port
        html = f'<html><body><img src="http://127.0.0.1:{port}/img.png"></body></html>'
        return web.Response(text=html, content_type="text/html")

    async def img(_request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/who", who)
    app.router.add_get("/", page)
    app.router.add_get("/img.png", img)
    return app


@asynccontextmanager
async def target(ca: trustme.CA | None = None) -> AsyncIterator[str]:
    """The app on 127.0.0.1; https (a certificate for localhost) when ``ca`` is given."""
    ctx = None
    if ca is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost").configure_cert(ctx)
    runner = web.AppRunner(_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx).start()
        port = runner.addresses[0][1]
        yield f"https://localhost:{port}" if ctx else f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        if ctx is not None:
            # The server's side of a TLS connection finishes its close_notify exchange a
            # few loop turns after the client has gone; closing the loop before that
            # leaks the transport (seen once in CI with libcurl as the client).
            await asyncio.sleep(0.25)


@asynccontextmanager
async def serve_on(host: str) -> AsyncIterator[int]:
    """The app on another loopback address than the proxies' own; yields its port."""
    runner = web.AppRunner(_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, 0).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def who(network: Network, ca: trustme.CA | None = None) -> tuple[str, Result]:
    async with target(ca) as base, open_client(policy=POLICY, network=network) as client:
        [result] = [r async for r in client.fetch_all([f"{base}/who"])]
    return base, result


def peer(result: Result) -> str:
    assert result.error is None, result.error
    assert result.response is not None
    return str(result.response.json()["peer"])


def test_direct_request_comes_from_127_0_0_1() -> None:
    _, result = run(who(Network(proxy="")))
    assert peer(result) == "127.0.0.1"  # so 127.0.0.2 below means: through the proxy


def test_http_proxy_for_an_http_target(tiny: Proc) -> None:
    base, result = run(who(Network(proxy=f"http://{tiny.url}")))
    assert peer(result) == PROXY_SOURCE
    assert tiny.log_count(f"GET {base}/who") == 1


def test_http_proxy_connect_for_an_https_target(tiny: Proc, ca: trustme.CA, ca_file: Path) -> None:
    base, result = run(who(Network(proxy=f"http://{tiny.url}", ca_bundle=str(ca_file)), ca))
    assert peer(result) == PROXY_SOURCE
    assert tiny.log_count(f"CONNECT {base.removeprefix('https://')}") == 1
    # The certificate is still checked against the target's name, through the tunnel.
    _, bad = run(who(Network(proxy=f"http://{tiny.url}"), ca))
    assert bad.error is not None
    assert bad.error.code == "tls_certificate"


def test_http_proxy_credentials_from_the_url(
    tiny_auth: Proc, ca: trustme.CA, ca_file: Path
) -> None:
    _, denied = run(who(Network(proxy=f"http://{tiny_auth.url}")))
    assert denied.error is not None
    assert denied.error.code == "http_407"
    _, denied = run(who(Network(proxy=f"http://{tiny_auth.url}", ca_bundle=str(ca_file)), ca))
    assert denied.error is not None
    assert denied.error.code == "proxy_error"
    assert "407" in str(denied.error)
    assert denied.error.retryable is False
    for ca_ in (None, ca):
        network = Network(proxy=f"http://ann:s3cret@{tiny_auth.url}", ca_bundle=str(ca_file))
        _, result = run(who(network, ca_))
        assert peer(result) == PROXY_SOURCE


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_socks_proxy(dante: Proc, scheme: str, tls: bool, ca: trustme.CA, ca_file: Path) -> None:
    network = Network(proxy=f"{scheme}://{dante.url}", ca_bundle=str(ca_file))
    base, result = run(who(network, ca if tls else None))
    assert peer(result) == PROXY_SOURCE
    port = base.rsplit(":", 1)[1]
    assert dante.log_count(f"-> {PROXY_SOURCE}.") >= 1
    assert dante.log_count(f"127.0.0.1.{port}") >= 1


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks_credentials_from_the_url(
    scheme: str, tmp_path: Path, ca: trustme.CA, ca_file: Path
) -> None:
    with microsocks(tmp_path, "ann", "s3cret") as socks:
        _, denied = run(who(Network(proxy=f"{scheme}://{socks.url}")))
        assert denied.error is not None
        assert denied.error.code == "proxy_error", denied.error
        _, wrong = run(who(Network(proxy=f"{scheme}://ann:nope@{socks.url}")))
        assert wrong.error is not None
        assert wrong.error.code == "proxy_error", wrong.error
        assert "authentication failure" in str(wrong.error)
        assert wrong.error.retryable is False
        for tls in (None, ca):
            network = Network(proxy=f"{scheme}://ann:s3cret@{socks.url}", ca_bundle=str(ca_file))
            _, result = run(who(network, tls))
            assert peer(result) == PROXY_SOURCE


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks_refusals_read_the_same_on_both_transports(
    scheme: str, dante: Proc, tmp_path: Path
) -> None:
    # A wrong login and a target the proxy cannot reach: the same ProxyError, in the
    # same words, retried or not alike, whichever transport met it.
    async def said(proxy: str, url: str) -> set[tuple[str, bool]]:
        seen = set()
        for name in ("aiohttp", "curl"):
            async with open_client(
                policy=RequestPolicy(accept="any", retry=RetryPolicy(retries=0)),
                network=Network(proxy=proxy),
                limits=Limits(transport=name),
            ) as client:
                [result] = [r async for r in client.fetch_all([url])]
            error = result.error
            assert isinstance(error, ProxyError), error
            seen.add((str(error), error.retryable))
        return seen

    with microsocks(tmp_path, "ann", "s3cret") as socks:
        [(login, retryable)] = run(said(f"{scheme}://ann:nope@{socks.url}", "http://127.0.0.1:9/"))
    assert login.endswith("refused 127.0.0.1:9: Username and password authentication failure")
    assert not retryable
    [(unreachable, retryable)] = run(
        said(f"{scheme}://{dante.url}", f"http://127.0.0.1:{closed_port()}/")
    )
    assert f"SOCKS proxy 127.0.0.1:{dante.port} refused 127.0.0.1:" in unreachable, unreachable
    assert retryable  # a refused or unreachable target may come back


@pytest.mark.parametrize("transport", ["aiohttp", "curl"])
@pytest.mark.parametrize("kind", ["http", "socks5", "socks5h"])
def test_the_address_policy_sees_the_target_never_the_proxy(
    kind: str, transport: str, tiny: Proc, dante: Proc
) -> None:
    # The target listens on 127.0.0.3, the proxy on 127.0.0.1: a policy refusing the
    # proxy's address does not stop the request; one refusing the target's does, before
    # anything reaches the proxy.
    proxy = f"http://{tiny.url}" if kind == "http" else f"{kind}://{dante.url}"
    log = tiny if kind == "http" else dante
    seen: list[tuple[str, str]] = []

    def refusing(refused: str) -> Callable[[str, str], None]:
        def policy(host: str, address: str) -> None:
            seen.append((host, address))
            if address == refused:
                raise BlockedAddress(f"{address} refused", url="", code="blocked_address")

        return policy

    async def status(refused: str, port: int) -> int:
        t = make_transport(
            Limits(transport=transport),
            network=Network(proxy=proxy),
            address_policy=refusing(refused),
        )
        try:
            async with t.send(
                "GET", URL(f"http://127.0.0.3:{port}/who"), headers={}, body=None,
                timeouts=Timeouts(total=10, connect=5),
            ) as response:  # fmt: skip
                await response.read_all()
                return response.status
        finally:
            await t.aclose()

    async def go() -> None:
        async with serve_on("127.0.0.3") as port:
            assert await status("127.0.0.1", port) == 200
            assert seen == [("127.0.0.3", "127.0.0.3")]
            assert log.log_count("127.0.0.3", 1) >= 1
            before = log.log_text().count("127.0.0.3")
            with pytest.raises(BlockedAddress):
                await status("127.0.0.3", port)
            assert log.log_text().count("127.0.0.3") == before

    run(go())


@pytest.mark.parametrize("kind", ["http", "socks5", "socks5h"])
def test_curl_looks_a_proxy_s_name_up_on_the_loop(kind: str, tiny: Proc, dante: Proc) -> None:
    # A proxy named "localhost": found by c-ares on the loop (as the aiohttp transport's
    # connector does), handed to libcurl, so its threaded resolver never starts a thread.
    # The request right after the burst goes out while tinyproxy has closed every
    # connection of it (libcurl reuses one used within a second without checking it).
    from aiograb._http.curl_transport import CurlTransport
    from aiograb._http.resolver import ThreadlessResolver

    port = tiny.port if kind == "http" else dante.port
    lookups: list[str] = []

    async def go() -> tuple[list[int], int, int]:
        t = CurlTransport(
            Limits(concurrency=20), network=Network(proxy=f"{kind}://localhost:{port}")
        )
        resolver = ThreadlessResolver()
        resolve = resolver.resolve

        async def counted(host: str, *args: Any) -> Any:
            lookups.append(host)
            return await resolve(host, *args)

        resolver.resolve = counted  # type: ignore[method-assign]
        t._resolver = resolver
        try:
            async with serve_on("127.0.0.1") as target:
                before = len(os.listdir("/proc/self/task"))  # uvloop's pool may start with it

                async def one(i: int) -> int:
                    async with t.send(
                        "GET", URL(f"http://127.0.0.1:{target}/who?i={i}"), headers={},
                        body=None, timeouts=Timeouts(total=10, connect=5),
                    ) as response:  # fmt: skip
                        await response.read_all()
                        return response.status

                statuses = list(await asyncio.gather(*(one(i) for i in range(20))))
                statuses.append(await one(20))  # the proxy's addresses are kept
                return statuses, before, len(os.listdir("/proc/self/task"))
        finally:
            await t.aclose()

    statuses, before, threads = run(go())
    assert statuses == [200] * 21
    assert set(lookups) == {"localhost"}  # the proxy's name; the target is an IP
    assert len(lookups) <= 20  # once per request waiting for it at most, then kept
    assert threads <= before + 1  # c-ares' one helper thread at most


@pytest.mark.parametrize("scheme", ["http", "socks5", "socks5h"])
def test_dead_proxy_is_proxy_error(scheme: str) -> None:
    _, result = run(who(Network(proxy=f"{scheme}://127.0.0.1:{closed_port()}")))
    assert result.error is not None
    assert result.error.code == "proxy_error", result.error
    assert result.error.retryable  # the proxy may come back


def test_routes_follow_curl_rules() -> None:
    from yarl import URL

    env = {
        "http_proxy": "http://lower:1",
        "HTTP_PROXY": "http://upper:2",
        "HTTPS_PROXY": "socks5h://s:1080",
        "NO_PROXY": "internal.test, .corp.test,10.0.0.0/8,localhost:8080",
    }
    routes = ProxyRoutes(None, env)

    def via(url: str) -> str | None:
        proxy = routes.for_url(URL(url))
        return None if proxy is None else f"{proxy.kind}://{proxy.host}:{proxy.port}"

    assert via("http://example.org/") == "http://lower:1"  # lower case wins
    assert via("https://example.org/") == "socks5h://s:1080"
    assert via("http://internal.test/") is None
    assert via("http://a.internal.test/") is None  # subdomains too
    assert via("http://xinternal.test/") == "http://lower:1"
    assert via("http://b.corp.test/") is None
    assert via("http://10.1.2.3/") is None
    assert via("http://localhost:8080/") is None
    assert via("http://localhost:8081/") == "http://lower:1"
    assert not ProxyRoutes("", env)  # --proxy '' ignores the environment
    assert ProxyRoutes(None, {"ALL_PROXY": "socks5://a:1"}).for_url(URL("http://x/")) is not None
    explicit = ProxyRoutes("127.0.0.1:3128", {"no_proxy": "*"})
    assert explicit.for_url(URL("http://x/")) is None  # no_proxy applies to --proxy too
    assert ProxyRoutes("127.0.0.1:3128", {}).proxies[0].port == 3128


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"PATH": "/bin", "PYTHONPROXY": "x"},  # ends in "proxy", not "_proxy"
        {"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2"},
        {"Https_Proxy": "http://mixed:3", "no_proxy": "a.test"},
        {"http_proxy": "", "HTTP_PROXY": "http://upper:2", "REQUEST_METHOD": "GET"},
    ],
)
def test_the_environment_is_read_as_urllib_reads_it(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.request

    from aiograb._http.network import _environment

    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _environment() == urllib.request.getproxies_environment()


def test_no_proxy_variable_means_no_urllib_import() -> None:
    # urllib.request (and http.client, email) cost ~6 ms of every run's start.
    code = (
        "import sys\n"
        "from aiograb._http.network import ProxyRoutes\n"
        "from aiograb._fetch.fetcher import parse_retry_after\n"
        "assert not ProxyRoutes(None)\n"
        "assert parse_retry_after('120', 0.0) == 120.0\n"
        "print(sorted({'urllib.request', 'http.client', 'email.utils'} & set(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- the environment and the CLI ---------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    names = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    env = {k: v for k, v in os.environ.items() if k.lower() not in names}
    env.update(extra)
    return env


def _get(tmp_path: Path, server: RunningServer, name: str, *args: str, **env: str) -> Any:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"{server.base_url}/img/{i}.png\n" for i in range(30)))
    out = tmp_path / name
    summary = tmp_path / f"{name}.json"
    done = aiograb_cli(
        "get", urls, "-o", out, "-q", "--retries", "1", "--summary-json", summary, *args,
        env=_env(**env),
    )  # fmt: skip
    return done, out, (json.loads(summary.read_text()) if summary.exists() else None)


@pytest.mark.slow
def test_cli_environment_proxies(
    tiny: Proc, dante: Proc, server: RunningServer, tmp_path: Path
) -> None:
    marker = f"GET {server.base_url}/img/"
    before = tiny.log_text().count(marker)
    # --io-threads 0: files on the loop too, so any thread a proxy path added would show.
    done, _, summary = _get(
        tmp_path, server, "a", "--io-threads", "0", http_proxy=f"http://{tiny.url}"
    )
    assert done.returncode == 0, done.stderr
    # Each of the 30 went through the proxy (a request resent on a fresh connection, when
    # the proxy closed a kept-alive one, is logged twice: at least 30).
    through = tiny.log_count(marker, before + 30)
    assert through >= before + 30
    assert summary["peak_threads"] == 1

    done, _, _ = _get(tmp_path, server, "b", HTTP_PROXY=f"http://{tiny.url}", NO_PROXY="127.0.0.1")
    assert done.returncode == 0, done.stderr
    time.sleep(0.2)  # a line the proxy would write late
    assert tiny.log_text().count(marker) == through  # bypassed

    done, _, _ = _get(tmp_path, server, "c", "--proxy", "", HTTP_PROXY=f"http://{tiny.url}")
    assert done.returncode == 0, done.stderr
    time.sleep(0.2)
    assert tiny.log_text().count(marker) == through  # environment ignored

    dead = f"http://127.0.0.1:{closed_port()}"
    done, out, _ = _get(tmp_path, server, "d", HTTP_PROXY=dead)
    assert done.returncode == 1
    assert {row["error"] for row in manifest(out)} == {"proxy_error"}

    connects = dante.log_text().count("tcp/connect")
    done, _, summary = _get(
        tmp_path, server, "e", "--io-threads", "0", ALL_PROXY=f"socks5://{dante.url}"
    )
    assert done.returncode == 0, done.stderr
    assert dante.log_count("tcp/connect", connects + 1) > connects
    assert summary["peak_threads"] == 1  # SOCKS on the loop: no resolver or connect threads


def test_cli_proxy_flag_and_errors(tiny: Proc, server: RunningServer, tmp_path: Path) -> None:
    done, _, _ = _get(tmp_path, server, "a", "--proxy", "ftp://127.0.0.1:21")
    assert done.returncode == 2
    assert "unsupported scheme" in done.stderr
    assert "--proxy" in done.stderr
    done, _, _ = _get(tmp_path, server, "b", "--proxy", f"http://{tiny.url}", "--engine", "sync")
    assert done.returncode == 2
    assert "needs the async engine" in done.stderr


# --- the crawl's address guard applies to the target, not to the proxy -------------


async def _crawl(base: str, out: Path, network: Network, allow_private: bool) -> None:
    seed = base.replace("127.0.0.1", "localhost") + "/"
    await crawl_async(
        seed,
        out,
        options=CrawlOptions(max_depth=1, allow_private=allow_private),
        policy=RequestPolicy(network=network, retry=RetryPolicy(retries=0)),
    )


@pytest.mark.parametrize("kind", ["http", "socks5", "socks5h"])
def test_crawl_guard_checks_the_target_through_a_proxy(
    kind: str, tiny: Proc, dante: Proc, tmp_path: Path
) -> None:
    proxy = f"http://{tiny.url}" if kind == "http" else f"{kind}://{dante.url}"
    log = tiny if kind == "http" else dante

    async def go(out: Path, allow_private: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        async with target() as base:
            await _crawl(base, out, Network(proxy=proxy), allow_private)
            rows = by_url(out)
            page = rows[base.replace("127.0.0.1", "localhost") + "/"]
            return page, rows[f"{base}/img.png"]

    # The seed host (localhost) is allowed by design; the image is on 127.0.0.1, a
    # loopback host that is not a seed: refused, though the proxy is on 127.0.0.1 too.
    seen = log.log_text().count("img.png")
    page, image = run(go(tmp_path / "guarded", allow_private=False))
    assert page["state"] == "ok", page
    assert image["error"] == "blocked_address", image
    assert log.log_text().count("img.png") == seen  # refused before reaching the proxy

    page, image = run(go(tmp_path / "allowed", allow_private=True))
    assert (page["state"], image["state"]) == ("ok", "ok"), image
    if kind == "http":
        assert log.log_count("img.png", seen + 1) > seen


def test_guard_without_proxy_refuses_the_same_image(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with target() as base:
            await _crawl(base, tmp_path / "o", Network(proxy=""), allow_private=False)
            rows = by_url(tmp_path / "o")
            return rows[base.replace("127.0.0.1", "localhost") + "/"], rows[f"{base}/img.png"]

    page, image = run(go())
    assert page["state"] == "ok"
    assert image["error"] == "blocked_address"
