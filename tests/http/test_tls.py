"""HTTPS against real TLS servers: aiohttp with trustme certificates (in-process, to see
the SNI the client sent) and nginx (for the CLI, the blocking engine and the
environment variables OpenSSL honours).

aiograb resolves names itself and, under uvloop, hands the resolved address to
``create_connection``; these tests prove the server name sent (SNI) and the
name checked are still the URL's host, on both loops.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
import uvloop
from aiohttp import web

from aiograb import Limits, Network, RequestPolicy, RetryPolicy, UsageError, open_client
from aiograb._client.client import Result
from aiograb.testing import image_bytes
from tests.helpers import aiograb_cli, by_url
from tests.procs import nginx

T = TypeVar("T")
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}
POLICY = RequestPolicy(accept="any", retry=RetryPolicy(retries=3, backoff=0.0))


def run_on(loop: str, coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(coro)


def server_context(cert: trustme.LeafCert, seen: list[str | None]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)

    def on_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.append(name)

    ctx.sni_callback = on_sni  # type: ignore[assignment]
    return ctx


@asynccontextmanager
async def https_server(ctx: ssl.SSLContext | None) -> AsyncIterator[int]:
    """A small app on 127.0.0.1 (TLS when ``ctx``); yields its port."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.host}")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
        await asyncio.sleep(0.25)  # the server's TLS close_notify, before the loop closes


async def fetch_one(
    cert: trustme.LeafCert | None,
    network: Network,
    host: str = "localhost",
    limits: Limits | None = None,
) -> tuple[Result, list[str | None]]:
    seen: list[str | None] = []
    ctx = None if cert is None else server_context(cert, seen)
    async with (
        https_server(ctx) as port,
        open_client(policy=POLICY, network=network, limits=limits or Limits()) as client,
    ):
        results = [r async for r in client.fetch_all([f"https://{host}:{port}/hello"])]
    return results[0], seen


@pytest.mark.parametrize("loop", LOOPS)
def test_sni_and_hostname_are_the_urls_host(loop: str, ca: trustme.CA, ca_file: Path) -> None:
    # "localhost" is resolved by aiograb's own resolver (c-ares) to 127.0.0.1 and the
    # address is what is connected to; the TLS name must still be "localhost".
    result, seen = run_on(
        loop, fetch_one(ca.issue_cert("localhost"), Network(ca_bundle=str(ca_file)))
    )
    assert result.error is None, result.error
    assert result.response is not None
    assert result.response.content.startswith(b"hello localhost:")
    assert seen == ["localhost"]


@pytest.mark.parametrize("loop", LOOPS)
def test_hostname_mismatch_is_tls_certificate_not_retried(
    loop: str, ca: trustme.CA, ca_file: Path
) -> None:
    result, seen = run_on(
        loop, fetch_one(ca.issue_cert("example.test"), Network(ca_bundle=str(ca_file)))
    )
    assert result.error is not None
    assert result.error.code == "tls_certificate"
    assert "hostname mismatch" in str(result.error)
    assert "localhost" in str(result.error)
    assert seen == ["localhost"]  # one handshake: not retried


def test_unknown_issuer_is_tls_certificate(ca: trustme.CA) -> None:
    # The system's trust store does not know the throwaway CA.
    result, seen = run_on("uvloop", fetch_one(ca.issue_cert("localhost"), Network()))
    assert result.error is not None
    assert result.error.code == "tls_certificate"
    assert "unknown issuer" in str(result.error)
    assert len(seen) == 1


def test_expired_certificate_says_expired(ca: trustme.CA, ca_file: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    cert = ca.issue_cert(
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    result, _ = run_on("uvloop", fetch_one(cert, Network(ca_bundle=str(ca_file))))
    assert result.error is not None
    assert result.error.code == "tls_certificate"
    assert "expired" in str(result.error)


def test_another_cas_bundle_is_unknown_issuer(ca_file: Path) -> None:
    other = trustme.CA()
    result, _ = run_on(
        "uvloop", fetch_one(other.issue_cert("localhost"), Network(ca_bundle=str(ca_file)))
    )
    assert result.error is not None
    assert result.error.code == "tls_certificate"
    assert "unknown issuer" in str(result.error)


@pytest.mark.one_transport  # runs both transports itself
def test_both_transports_say_the_same_of_a_refused_certificate(
    ca: trustme.CA, ca_file: Path
) -> None:
    # libcurl checks the name itself and reports OpenSSL's verify code apart: its
    # refusals are said in the aiohttp transport's words all the same.
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    expired = {"not_before": now - 30 * day, "not_after": now - day}
    bundle = Network(ca_bundle=str(ca_file))
    cases = [
        (ca.issue_cert("localhost", **expired), bundle, "localhost", "expired (certificate has"),
        (ca.issue_cert("example.test"), bundle, "localhost", "hostname mismatch (Hostname"),
        (ca.issue_cert("example.test"), bundle, "127.0.0.1", "IP address mismatch (IP address"),
        (trustme.CA().issue_cert("localhost"), bundle, "localhost", "unknown issuer (unable"),
        (ca.issue_cert("localhost"), Network(), "localhost", "unknown issuer (unable"),
    ]
    for cert, network, host, words in cases:
        said = set()
        for transport in ("aiohttp", "curl"):
            limits = Limits(transport=transport)
            result, _ = run_on("uvloop", fetch_one(cert, network, host, limits))
            assert result.error is not None
            assert result.error.code == "tls_certificate"
            said.add(str(result.error))
        [message] = said
        assert message.startswith(f"TLS certificate not accepted: {words}"), message


@pytest.mark.parametrize("loop", LOOPS)
def test_insecure_accepts_any_certificate(loop: str) -> None:
    other = trustme.CA()  # unknown issuer *and* the wrong name
    result, _ = run_on(loop, fetch_one(other.issue_cert("example.test"), Network(verify=False)))
    assert result.error is None, result.error


@pytest.mark.parametrize("loop", LOOPS)
def test_handshake_failure_is_tls_error_not_retried(loop: str) -> None:
    # https:// to a plain-HTTP server: the handshake fails, no certificate involved.
    result, _ = run_on(loop, fetch_one(None, Network(), host="127.0.0.1"))
    assert result.error is not None
    assert result.error.code == "tls_error", result.error
    assert result.error.retryable is False


def test_bad_ca_bundle_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        Network(ca_bundle=str(tmp_path / "missing.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")

    async def go() -> None:
        async with open_client(network=Network(ca_bundle=str(empty))):
            pass

    with pytest.raises(UsageError, match="ca_bundle"):
        run_on("asyncio", go())
    with pytest.raises(UsageError, match="exclude"):
        Network(ca_bundle=str(empty), verify=False)


# --- nginx over TLS, driven through the CLI ---------------------------------------


@pytest.fixture(scope="module")
def tls_nginx(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("nginx-tls")
    root = folder / "www"
    root.mkdir()
    for i in range(20):
        (root / f"{i}.png").write_bytes(image_bytes(i, "png"))
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(folder / "cert.pem"), append=True)
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    with nginx(folder / "run", root, cert=folder / "cert.pem", key=folder / "key.pem") as proc:
        yield proc


def _urls(tmp_path: Path, port: int) -> Path:
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"https://localhost:{port}/{i}.png\n" for i in range(20)))
    return urls


def _env(**extra: str) -> dict[str, str]:
    skip = ("ssl_cert_file", "ssl_cert_dir", "http_proxy", "https_proxy", "all_proxy")
    env = {k: v for k, v in os.environ.items() if k.lower() not in skip}
    env.update(extra)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["async", "threads"])
def test_cli_https_from_nginx(tls_nginx: Any, ca_file: Path, tmp_path: Path, engine: str) -> None:
    urls = _urls(tmp_path, tls_nginx.port)
    out = tmp_path / "out"
    args = [urls, "-o", out, "-q", "--engine", engine, "--retries", "3"]
    refused = aiograb_cli("get", *args, env=_env())
    assert refused.returncode == 1, refused.stderr
    rows = by_url(out).values()
    assert {r["error"] for r in rows} == {"tls_certificate"}
    assert all("unknown issuer" in r["message"] for r in rows)
    assert all(r["attempts"] == 1 for r in rows)  # not retried

    ok = aiograb_cli("get", *args, "--retry-failed", "--ca-bundle", ca_file, env=_env())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert all(r["state"] == "ok" for r in by_url(out).values())


@pytest.mark.slow
def test_cli_honours_ssl_cert_file_and_dir(tls_nginx: Any, ca_file: Path, tmp_path: Path) -> None:
    urls = _urls(tmp_path, tls_nginx.port)
    done = aiograb_cli(
        "get", urls, "-o", tmp_path / "a", "-q", env=_env(SSL_CERT_FILE=str(ca_file))
    )
    assert done.returncode == 0, done.stdout + done.stderr
    hashed = tmp_path / "certs"
    hashed.mkdir()
    (hashed / "ca.pem").write_bytes(ca_file.read_bytes())
    subprocess.run(["openssl", "rehash", str(hashed)], check=True, capture_output=True)
    done = aiograb_cli("get", urls, "-o", tmp_path / "b", "-q", env=_env(SSL_CERT_DIR=str(hashed)))
    assert done.returncode == 0, done.stdout + done.stderr
    done = aiograb_cli("get", urls, "-o", tmp_path / "c", "-q", "--ca-bundle", hashed, env=_env())
    assert done.returncode == 0, done.stdout + done.stderr
    for engine in ("async", "threads"):
        out = tmp_path / f"insecure-{engine}"
        insecure = aiograb_cli("get", urls, "-o", out, "-q", "-k", "--engine", engine, env=_env())
        assert insecure.returncode == 0, insecure.stdout + insecure.stderr
        assert insecure.stderr == ""  # no warning per request: -k was asked for
        assert all(r["state"] == "ok" for r in by_url(out).values())


def test_cli_bad_ca_bundle_is_one_line_exit_2(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("https://localhost:1/x.png\n")
    done = aiograb_cli("get", urls, "-o", tmp_path / "o", "--ca-bundle", tmp_path / "nope.pem")
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"aiograb: error: --ca-bundle: no such file: {tmp_path / 'nope.pem'}"
    )
