"""The async client API: in-memory fan-out with limits, retries and deadlines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

import aiograb
from aiograb import (
    DeadlineExceeded,
    FakeClock,
    HTTPStatusError,
    Limits,
    Request,
    RequestPolicy,
    RetryPolicy,
    open_client,
)
from aiograb.testing import RunningServer
from tests.helpers import closed_port, run, serve_app


def test_public_api_is_what_we_mean_to_export() -> None:
    expected = {
        # entry points
        "download", "download_async", "open_client", "open_source", "__version__",
        "crawl", "crawl_async", "CrawlOptions", "CrawlSummary",
        # values and results
        "Client", "Request", "Response", "Result", "Summary", "Progress", "InputRow",
        "Limits", "RequestPolicy", "RetryPolicy", "Timeouts", "Network",
        "DEFAULT_CONCURRENCY", "DEFAULT_PER_HOST", "DEFAULT_USER_AGENT",
        "Clock", "LoopClock", "FakeClock", "Transport", "ResponseStream", "AiohttpTransport",
        # the service fan-out (#12)
        "Hedge", "Budget", "ClientStatistics",
        # the exception tree
        "AiograbError", "RequestError", "InvalidURL", "InvalidRequest", "TransportError",
        "ConnectError",
        "BlockedAddress", "Timeout", "ConnectionReset", "Truncated", "ProtocolError",
        "ProxyError", "TLSError", "TLSCertificateError",
        "HTTPStatusError",
        "RedirectError", "ContentError", "TooLarge", "NotAccepted", "WriteError",
        "RobotsTagDisallowed",
        "DeadlineExceeded", "UsageError", "InputError",
        # the image pipeline
        "ImagePipeline", "ImageOptions", "ImageError",
    }  # fmt: skip
    assert set(aiograb.__all__) == expected
    for name in expected:
        assert hasattr(aiograb, name), name
    assert issubclass(aiograb.InputError, aiograb.UsageError)
    assert issubclass(aiograb.Truncated, aiograb.TransportError)
    assert not issubclass(aiograb.UsageError, aiograb.RequestError)


def test_fetch_all_posts_json_and_returns_every_result(server: RunningServer) -> None:
    async def main() -> list[aiograb.Result]:
        async with open_client(limits=Limits(concurrency=20)) as client:
            requests = [
                Request(server.url("/echo"), method="POST", json={"i": i}, tag=i)
                for i in range(100)
            ]
            return [r async for r in client.fetch_all(requests)]

    results = run(main())
    assert len(results) == 100
    assert all(r.ok for r in results)
    for r in results:
        assert r.response is not None
        body = r.response.json()
        assert body["method"] == "POST"
        assert body["json"] == {"i": r.request.tag}


def test_fetch_all_reads_requests_lazily_from_an_async_iterator(server: RunningServer) -> None:
    produced = 0

    async def requests() -> AsyncIterator[str]:
        nonlocal produced
        for i in range(1000):
            produced += 1
            yield server.url(f"/echo?i={i}")

    async def main() -> int:
        async with open_client(limits=Limits(concurrency=5)) as client:
            results = client.fetch_all(requests())
            got = 0
            async for _ in results:
                got += 1
                if got == 10:
                    break
            await results.aclose()  # type: ignore[attr-defined]
            return got

    assert run(main()) == 10
    # Bounded: the producer ran at most a few queue lengths ahead of the consumer.
    assert produced < 100


def test_fetch_raises_our_errors(server: RunningServer) -> None:
    async def main() -> None:
        policy = RequestPolicy(accept="any", retry=RetryPolicy(retries=0))
        async with open_client(policy=policy) as client:
            with pytest.raises(HTTPStatusError) as info:
                await client.fetch(server.url("/status/418"))
            assert info.value.status == 418
            assert info.value.code == "http_418"
            with pytest.raises(aiograb.ConnectError) as refused:
                await client.fetch(f"http://127.0.0.1:{closed_port()}/")
            assert refused.value.code == "connect_refused"
            with pytest.raises(aiograb.InvalidURL):
                await client.fetch("gopher://example.org/")
            resp = await client.fetch(server.url("/img/3.png"))
            assert resp.status == 200
            assert resp.content_type == "image/png"

    run(main())


def test_client_retries_idempotent_requests_but_not_posts(server: RunningServer) -> None:
    async def main() -> None:
        policy = RequestPolicy(accept="any", retry=RetryPolicy(retries=2))
        async with open_client(policy=policy, clock=FakeClock()) as client:
            resp = await client.fetch(server.url(f"/flaky/{uuid.uuid4().hex}/2"))
            assert resp.attempts == 3
            post = Request(server.url(f"/flaky/{uuid.uuid4().hex}/1"), method="POST", data=b"x")
            with pytest.raises(HTTPStatusError):
                await client.fetch(post)

    run(main())


def test_deadline_gives_every_request_one_result(server: RunningServer) -> None:
    async def main() -> list[aiograb.Result]:
        async with open_client(limits=Limits(concurrency=4)) as client:
            fast = [Request(server.url("/echo"), tag="fast") for _ in range(4)]
            slow = [Request(server.url("/echo?delay_ms=5000"), tag="slow") for _ in range(8)]
            return [r async for r in client.fetch_all(fast + slow, deadline=0.5)]

    results = run(main())
    assert len(results) == 12
    assert all(r.ok for r in results if r.request.tag == "fast")
    late = [r for r in results if r.request.tag == "slow"]
    assert all(isinstance(r.error, DeadlineExceeded) for r in late)
    assert all(r.error is not None and r.error.code == "deadline_exceeded" for r in late)


def test_per_host_limit_is_never_exceeded() -> None:
    """A server that counts requests in flight at once; nothing mocked."""
    in_flight = peak = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        async with (
            serve_app(app) as base,
            open_client(limits=Limits(concurrency=50, per_host=3)) as client,
        ):
            results = [r async for r in client.fetch_all(f"{base}/?i={i}" for i in range(30))]
            assert all(r.ok for r in results)

    run(main())
    assert peak == 3
