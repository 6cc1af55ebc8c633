"""Cookies from a Netscape cookies.txt, against a real server that reports the Cookie
header it received, per host, path and scheme; and cookies set by responses."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
import uvloop
from aiohttp import web

from aiograb import Limits, Network, Request, UsageError, open_client
from tests.helpers import by_url

COOKIES = """\
# Netscape HTTP Cookie File
localhost\tFALSE\t/a\tFALSE\t0\tpath_a\t1
localhost\tFALSE\t/\tTRUE\t0\tsecure_only\t1
127.0.0.1\tFALSE\t/\tFALSE\t0\tip_only\t1
#HttpOnly_localhost\tFALSE\t/\tFALSE\t0\thttp_only\t1
localhost\tFALSE\t/\tFALSE\t1\texpired\t1
.localhost\tTRUE\t/\tFALSE\t0\tdomain_wide\t1
a.localhost\tFALSE\t/\tFALSE\t0\thost_a\t1
.example.test\tTRUE\t/\tFALSE\t0\telsewhere\t1
"""


def _app() -> web.Application:
    async def check(request: web.Request) -> web.Response:
        names = sorted(request.cookies)
        return web.Response(text=",".join(names), content_type="text/plain")

    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(text="set")
        domain = request.query.get("domain")
        response.set_cookie(request.query.get("name", "from_resp"), "1", path="/", domain=domain)
        return response

    async def raw(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Cookie", "-"), content_type="text/plain")

    async def set_then_redirect(request: web.Request) -> web.Response:
        response = web.Response(status=302, headers={"Location": "/a/raw"})
        response.set_cookie("from_redirect", "r 1", path="/")  # a quoted value
        return response

    async def image(request: web.Request) -> web.Response:
        if "path_a" not in request.cookies:
            return web.Response(status=403, text="no cookie")
        from aiograb.testing import image_bytes

        return web.Response(body=image_bytes(1, "png"), content_type="image/png")

    app = web.Application()
    for path in ("/check", "/a/check", "/b/check"):
        app.router.add_get(path, check)
    app.router.add_get("/set", set_cookie)
    app.router.add_get("/a/raw", raw)
    app.router.add_get("/redirect", set_then_redirect)
    app.router.add_get("/a/img.png", image)
    return app


@asynccontextmanager
async def servers(ca: trustme.CA) -> AsyncIterator[tuple[int, int]]:
    """The app over http and over https (a certificate for localhost and a.localhost)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "a.localhost").configure_cert(ctx)
    runner = web.AppRunner(_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx).start()
        yield runner.addresses[0][1], runner.addresses[1][1]
    finally:
        await runner.cleanup()
        await asyncio.sleep(0.25)  # the server's TLS close_notify, before the loop closes


@pytest.fixture
def cookie_file(tmp_path: Path) -> Path:
    path = tmp_path / "cookies.txt"
    path.write_text(COOKIES)
    return path


def test_cookies_go_where_domain_path_and_secure_allow(
    ca: trustme.CA, ca_file: Path, cookie_file: Path
) -> None:
    async def go() -> dict[str, str]:
        seen: dict[str, str] = {}
        async with (
            servers(ca) as (port, tls_port),
            open_client(network=Network(ca_bundle=str(ca_file)), cookies=cookie_file) as client,
        ):
            for name, url in [
                ("a", f"http://localhost:{port}/a/check"),
                ("b", f"http://localhost:{port}/b/check"),
                ("b_tls", f"https://localhost:{tls_port}/b/check"),
                ("sub", f"http://a.localhost:{port}/check"),
                ("ip", f"http://127.0.0.1:{port}/check"),
                ("set", f"http://localhost:{port}/set"),
                ("b_after", f"http://localhost:{port}/b/check"),
                ("sub_after", f"http://a.localhost:{port}/check"),
                ("set_ip", f"http://127.0.0.1:{port}/set?name=ip_resp"),
                ("ip_after", f"http://127.0.0.1:{port}/check"),
            ]:
                seen[name] = (await client.fetch(url)).text()
        return seen

    seen = uvloop.run(go())
    assert seen["a"] == "domain_wide,http_only,path_a"
    assert seen["b"] == "domain_wide,http_only"  # not /a's cookie
    assert seen["b_tls"] == "domain_wide,http_only,secure_only"  # secure only over https
    assert seen["sub"] == "domain_wide,host_a"  # host-only cookies stay on their host
    assert seen["ip"] == "ip_only"
    # Set by a response: kept for the run, host-only.
    assert seen["b_after"] == "domain_wide,from_resp,http_only"
    assert seen["sub_after"] == "domain_wide,host_a"
    # A host given by IP address keeps its cookies too (as browsers do).
    assert seen["ip_after"] == "ip_only,ip_resp"


def test_a_response_cannot_set_a_cookie_for_a_public_suffix(
    ca: trustme.CA, cookie_file: Path
) -> None:
    # "localhost" is a public suffix by the list's default rule (like "com"), so
    # a.localhost may not set a cookie for every *.localhost; b.localhost is a
    # registrable domain, so x.b.localhost may set one for its siblings.
    async def go() -> list[str]:
        async with servers(ca) as (port, _), open_client(cookies=cookie_file) as client:
            base = f"http://{{}}:{port}"
            for host, query in [
                ("a.localhost", "name=super&domain=localhost"),
                ("x.b.localhost", "name=site&domain=b.localhost"),
            ]:
                await client.fetch(base.format(host) + "/set?" + query)
            hosts = ["c.localhost", "y.b.localhost", "a.localhost"]
            return [(await client.fetch(base.format(h) + "/check")).text() for h in hosts]

    assert uvloop.run(go()) == ["domain_wide", "domain_wide,site", "domain_wide,host_a"]


@pytest.mark.parametrize("transport", ["aiohttp", "curl"])
def test_both_transports_send_the_same_cookie_field(
    transport: str, ca: trustme.CA, cookie_file: Path
) -> None:
    # One jar and policy whichever transport sends: the same Cookie field, byte for byte
    # (the request's own field merged in, names in order), and a redirect's Set-Cookie
    # kept for the hop it leads to.
    async def go() -> list[str]:
        async with (
            servers(ca) as (port, _),
            open_client(limits=Limits(transport=transport), cookies=cookie_file) as client,
        ):
            raw = f"http://localhost:{port}/a/raw"
            return [
                (await client.fetch(raw)).text(),
                (await client.fetch(Request(raw, headers={"Cookie": "mine=1; path_a=old"}))).text(),
                (await client.fetch(f"http://localhost:{port}/redirect")).text(),
            ]

    assert uvloop.run(go()) == [
        "domain_wide=1; http_only=1; path_a=1",
        "domain_wide=1; http_only=1; mine=1; path_a=1",
        'domain_wide=1; from_redirect="r 1"; http_only=1; path_a=1',
    ]


def test_without_cookies_nothing_is_sent_or_kept(ca: trustme.CA) -> None:
    async def go() -> list[str]:
        async with servers(ca) as (port, _), open_client() as client:
            urls = [f"http://localhost:{port}/set", f"http://localhost:{port}/check"]
            return [(await client.fetch(u)).text() for u in urls]

    assert uvloop.run(go()) == ["set", ""]


def test_unreadable_cookie_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        Network(cookies=str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not a cookies.txt\n")

    async def go() -> None:
        async with open_client(cookies=bad):
            pass

    with pytest.raises(UsageError, match="cookies: cannot read"):
        asyncio.run(go())


@pytest.mark.slow
def test_cli_get_with_cookies(ca: trustme.CA, cookie_file: Path, tmp_path: Path) -> None:
    # The image answers 403 unless the request carries the cookie for its path.
    async def get(urls: Path, out: Path, *extra: str) -> int | None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiograb", "get", str(urls), "-o", str(out), "-q", *extra,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return await asyncio.wait_for(proc.wait(), 60)

    async def go() -> tuple[int | None, int | None]:
        async with servers(ca) as (port, _):
            urls = tmp_path / "urls.txt"
            urls.write_text(f"http://localhost:{port}/a/img.png\n")
            without = await get(urls, tmp_path / "without")
            with_cookies = await get(urls, tmp_path / "with", "--cookies", str(cookie_file))
            return without, with_cookies

    assert asyncio.run(go()) == (1, 0)
    [row] = by_url(tmp_path / "without").values()
    assert row["error"] == "http_403"
    [row] = by_url(tmp_path / "with").values()
    assert row["state"] == "ok"
