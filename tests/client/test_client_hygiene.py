"""The README's client patterns leave nothing behind: no warning, no logged task error,
and every request gets its one Result, even one that cannot be sent."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

import aiograb
from aiograb import Hedge, Limits, Request, UsageError, open_client
from aiograb.testing import RunningServer
from tests.helpers import run


def _run_clean(coro: Any, caplog: pytest.LogCaptureFixture) -> Any:
    """Run on a fresh loop; fail on anything the loop would report (e.g. "Task exception
    was never retrieved") during the run or when its leftovers are collected after it."""
    reported: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        return await coro

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        result = run(main())
        gc.collect()
    assert reported == []
    assert [r for r in caplog.records if r.name == "asyncio"] == []
    return result


def test_breaking_out_of_fetch_all_then_leaving_the_client_is_silent(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> int:
        got = 0
        async with open_client(limits=Limits(concurrency=50)) as client:
            async for result in client.fetch_all(server.url(f"/echo?i={i}") for i in range(2000)):
                got += result.ok
                if got == 5:
                    break  # no aclose(): the generator is left suspended
        return got

    assert _run_clean(main(), caplog) == 5


def test_the_readme_patterns_are_silent(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with open_client(hedge=Hedge(after="p95")) as client:
            requests = (
                Request(server.url("/echo"), method="POST", json={"i": i}) for i in range(200)
            )
            codes = [r.error.code async for r in client.fetch_all(requests, deadline=5) if r.error]
            assert codes == []
            results = await client.gather([server.url(f"/echo?i={i}") for i in range(200)])
            assert all(r.ok for r in results)
            assert (await client.fetch(server.url("/echo"))).status == 200
        with pytest.raises(UsageError, match="closed"):
            await client.fetch(server.url("/echo"))

    _run_clean(main(), caplog)


BAD = {
    "crlf-value": {"headers": {"X-Bad": "a\r\nInjected: yes"}},
    "lf-name": {"headers": {"X-Bad\n": "a"}},
    "bad-method": {"method": "GE T"},
}


@pytest.mark.parametrize("checked", [True, False], ids=["checked", "refused-by-the-transport"])
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_a_request_that_cannot_be_sent_is_an_error_result(
    server: RunningServer, bad: dict[str, Any], checked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not checked:  # what the client's own check would miss, the transport refuses: same result
        monkeypatch.setattr("aiograb._client.calls.check_request", lambda _request: None)
    bad_request = Request(server.url("/echo?bad"), **bad)

    async def main() -> list[aiograb.Result]:
        async with open_client() as client:
            requests = [Request(server.url(f"/echo?i={i}")) for i in range(20)]
            requests.insert(7, bad_request)
            return [r async for r in client.fetch_all(requests)]

    results = run(main())
    assert len(results) == 21
    errors = [r for r in results if not r.ok]
    assert [r.request for r in errors] == [bad_request]
    assert isinstance(errors[0].error, aiograb.InvalidRequest)
    assert errors[0].error.code == "invalid_request"


def test_a_consumer_outliving_its_client_gets_an_error_not_a_hang(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        got: list[aiograb.Result] = []
        async with open_client(limits=Limits(concurrency=2)) as client:
            slow = (Request(server.url("/echo?delay_ms=2000")) for _ in range(100))
            results = client.fetch_all(slow)

            async def consume() -> None:
                async for result in results:
                    got.append(result)

            consumer = asyncio.create_task(consume())
            await asyncio.sleep(0.1)  # the consumer waits for the first result
        # The block ended with the consumer still reading: it is told, promptly.
        async with asyncio.timeout(5):
            with pytest.raises(UsageError, match="closed while fetch_all"):
                await consumer
        assert got == []

    _run_clean(main(), caplog)
