"""Redirects keep the user's credentials home: two (three) real servers record what they get."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

import aiograb
from aiograb import RequestPolicy, RetryPolicy
from aiograb._fetch.fetcher import FetchRules
from aiograb.testing import image_bytes
from tests.helpers import by_url, run

PNG = image_bytes(2, "png")
SECRETS = {
    "Authorization": "Bearer s3cret",
    "Cookie": "session=s3cret",
    "Proxy-Authorization": "Basic czNjcmV0",
}
GIVEN = {**SECRETS, "X-Keep": "yes"}


class Recorder:
    """An app that answers ``/go/<n>?to=URL`` with a redirect and ``/land/...`` with a PNG,
    and records the headers each path received."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}

    def app(self) -> web.Application:
        async def go(request: web.Request) -> web.StreamResponse:
            self.seen[request.path] = dict(request.headers)
            raise web.HTTPFound(request.query["to"])

        async def land(request: web.Request) -> web.StreamResponse:
            self.seen[request.path] = dict(request.headers)
            return web.Response(body=PNG, content_type="image/png")

        app = web.Application()
        app.router.add_get("/go/{name}", go)
        app.router.add_get("/land/{name}", land)
        return app

    def secrets_at(self, path: str) -> dict[str, str]:
        return {k: v for k, v in self.seen[path].items() if k in SECRETS}


@asynccontextmanager
async def serve(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
        scheme = "https" if ssl_context else "http"
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def test_same_origin_keeps_and_another_port_drops_the_users_credentials(tmp_path: Path) -> None:
    a, b = Recorder(), Recorder()

    async def main() -> dict[str, str]:
        async with serve(a.app()) as base_a, serve(b.app()) as base_b:
            urls = {
                "same": f"{base_a}/go/same?to={base_a}/land/same",
                "cross": f"{base_a}/go/cross?to={base_b}/land/cross",
                # Away and back: once dropped, they stay dropped for the chain.
                "back": f"{base_a}/go/back?to={base_b}/go/bounce%3Fto%3D{base_a}/land/back",
            }
            policy = RequestPolicy(headers=GIVEN, retry=RetryPolicy(retries=0))
            await aiograb.download_async(urls.values(), tmp_path, policy=policy)
            return urls

    urls = run(main())
    rows = by_url(tmp_path)
    assert all(rows[u]["error"] is None for u in urls.values())
    assert a.secrets_at("/go/same") == SECRETS
    assert a.secrets_at("/land/same") == SECRETS  # same origin: kept
    assert a.seen["/land/same"]["X-Keep"] == "yes"
    assert a.secrets_at("/go/cross") == SECRETS
    assert b.secrets_at("/land/cross") == {}  # another port: dropped
    assert b.seen["/land/cross"]["X-Keep"] == "yes"  # other headers still go
    assert b.secrets_at("/go/bounce") == {}
    assert a.secrets_at("/land/back") == {}


def test_redirect_headers_rule() -> None:
    from yarl import URL

    headers = {"authorization": "x", "COOKIE": "y", "User-Agent": "z"}
    same = FetchRules.redirect_headers(headers, URL("https://h/a"), URL("https://H:443/b"))
    assert same == headers
    for target in ("http://h/b", "https://h:8443/b", "https://other/b"):
        kept = FetchRules.redirect_headers(headers, URL("https://h/a"), URL(target))
        assert kept == {"User-Agent": "z"}, target


@pytest.mark.parametrize("engine", ["async", "sync"])
def test_https_to_http_downgrade_drops_them_and_https_hops_keep_them(
    tmp_path: Path, engine: str
) -> None:
    """The CLI in a subprocess, trusting a trustme CA through SSL_CERT_FILE."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls, plain = Recorder(), Recorder()

    async def main() -> tuple[dict[str, str], Any]:
        async with serve(tls.app(), server_ctx) as base_s, serve(plain.app()) as base_p:
            urls = {
                "down": f"{base_s}/go/down?to={base_p}/land/down",
                "tls": f"{base_s}/go/tls?to={base_s}/land/tls",
            }
            (tmp_path / "urls.txt").write_text("\n".join(urls.values()) + "\n")
            args = ["get", str(tmp_path / "urls.txt"), "-o", str(tmp_path / "out")]
            args += ["--engine", engine, "--retries", "0"]
            for name, value in GIVEN.items():
                args += ["-H", f"{name}: {value}"]
            env = {**os.environ, "SSL_CERT_FILE": str(ca_file)}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aiograb", *args, "--quiet", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out = await asyncio.wait_for(proc.communicate(), 60)
            return urls, (proc.returncode, out)

    urls, (code, out) = run(main())
    assert code == 0, out
    rows = by_url(tmp_path / "out")
    assert all(rows[u]["error"] is None for u in urls.values()), rows
    assert tls.secrets_at("/go/down") == SECRETS
    assert plain.secrets_at("/land/down") == {}  # https -> http: dropped
    assert plain.seen["/land/down"]["X-Keep"] == "yes"
    assert tls.secrets_at("/land/tls") == SECRETS  # https -> same https origin: kept
