"""The client for a service's fan-out (#12): hedging, the retry budget, gather, fairness.

Real aiohttp servers on port 0; each test's server counts what it saw.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
from collections import Counter

import pytest
from aiohttp import web

from aiograb import (
    DEFAULT_PER_HOST,
    Budget,
    FakeClock,
    Hedge,
    HTTPStatusError,
    Limits,
    Request,
    RequestPolicy,
    RetryPolicy,
    UsageError,
    open_client,
)
from tests.helpers import run, serve_app

NO_RETRY = RequestPolicy(accept="any", retry=RetryPolicy(retries=0))


class Backend:
    """A backend whose first request for a key stalls until the client goes away."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.disconnected: Counter[str] = Counter()
        self.gone = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        self.seen[key] += 1
        if self.seen[key] == 1:  # the first copy: a slow replica
            for _ in range(500):  # 5 s at most
                if request.transport is None or request.transport.is_closing():
                    self.disconnected[key] += 1
                    self.gone.set()
                    return web.Response(text="too late")
                await asyncio.sleep(0.01)
        return web.Response(text=f"{key}:{self.seen[key]}")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/k/{key}", self.handle)
        return app


@pytest.mark.parametrize("limits", [None, Limits(concurrency=150)], ids=["default", "unset"])
def test_open_client_has_no_per_host_limit_by_default(limits: Limits | None) -> None:
    """100 calls to one host are all in flight at once (get/crawl keep 16)."""
    assert Limits().host_limit() == DEFAULT_PER_HOST == 16  # what get/crawl use
    in_flight = peak = 0
    everyone = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 100:
            everyone.set()
        try:
            async with asyncio.timeout(5):
                await everyone.wait()
        except TimeoutError:
            pass
        in_flight -= 1
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        async with serve_app(app) as base, open_client(limits=limits) as client:
            results = await client.gather(f"{base}/?i={i}" for i in range(100))
            assert all(r.ok for r in results)

    run(main())
    assert peak == 100


def test_a_hedge_wins_against_a_slow_first_copy_which_is_cancelled() -> None:
    backend = Backend()

    async def main() -> None:
        hedge = Hedge(after=0.05)
        async with (
            serve_app(backend.app()) as base,
            open_client(hedge=hedge, policy=NO_RETRY) as client,
        ):
            result = (await client.gather([f"{base}/k/a"]))[0]
            assert result.ok, result.error
            assert result.response is not None
            assert result.response.text() == "a:2"  # the second copy answered
            assert result.hedged
            assert result.hedge_won
            assert result.response.hedge_won
            assert result.attempts == 2
            assert client.statistics().hedges == 1
            # The loser was cancelled: the slow replica sees its client go away.
            async with asyncio.timeout(3):
                await backend.gone.wait()
            assert backend.disconnected["a"] == 1
            assert client.statistics().in_flight == 0

    run(main())


def test_a_fast_answer_sends_no_hedge() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="fast")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        async with serve_app(app) as base, open_client(hedge=Hedge(after=2.0)) as client:
            results = await client.gather([f"{base}/"] * 20)
            assert all(r.ok and not r.hedged and r.attempts == 1 for r in results)
            assert client.statistics().hedges == 0

    run(main())


def test_only_idempotent_requests_are_hedged() -> None:
    backend = Backend()

    async def main() -> None:
        hedge = Hedge(after=0.02, budget=Budget(ratio=1.0))
        async with (
            serve_app(backend.app()) as base,
            open_client(hedge=hedge, policy=NO_RETRY) as client,
        ):
            requests = [
                Request(f"{base}/k/post", method="POST", data=b"x"),
                Request(f"{base}/k/patch", method="PATCH", data=b"x"),
                Request(f"{base}/k/opted-out", hedge=False),
                Request(f"{base}/k/put-said-idempotent", method="PUT", idempotent=True),
                Request(f"{base}/k/head", method="HEAD"),
                Request(f"{base}/k/get-said-not", idempotent=False),
            ]
            # The unhedged ones wait for their slow first copy: give them 0.3 s.
            results = await client.gather(requests, deadline=0.3)
        hedged = {r.request.url.rsplit("/", 1)[1] for r in results if r.hedged}
        assert hedged == {"put-said-idempotent", "head"}
        for name in ("post", "patch", "opted-out", "get-said-not"):
            assert backend.seen[name] == 1, name
        assert backend.seen["put-said-idempotent"] == 2

    run(main())


def test_the_budget_caps_retries_of_a_backend_that_fails_everything() -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.Response(status=503)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        policy = RequestPolicy(accept="any", retry=RetryPolicy(retries=3))
        budget = Budget(ratio=0.1, min_extra=0)
        async with (
            serve_app(app) as base,
            open_client(policy=policy, budget=budget, clock=FakeClock()) as client,
        ):
            results = await client.gather(f"{base}/?i={i}" for i in range(200))
            assert all(r.error is not None and r.error.code == "http_503" for r in results)
            stats = client.statistics()
            assert stats.retries == 20  # 10 % of 200, not 3 x 200
            assert stats.budget_refused > 0

    run(main())
    assert calls == 220


def test_hedges_and_retries_share_one_budget() -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)  # every answer is late enough to be hedged
        return web.Response(status=503)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        policy = RequestPolicy(accept="any", retry=RetryPolicy(retries=3, backoff=0))
        hedge = Hedge(after=0.005, budget=Budget(ratio=0.05, min_extra=0))
        async with serve_app(app) as base, open_client(policy=policy, hedge=hedge) as client:
            results = await client.gather([f"{base}/?i={i}" for i in range(100)])
            assert all(not r.ok for r in results)
            stats = client.statistics()
            assert stats.hedges + stats.retries == 5
            assert stats.hedges > 0

    run(main())
    assert calls <= 105


def test_adaptive_hedge_delay_follows_the_hosts_latency() -> None:
    """With after="p90", the delay is learnt: fast calls are not hedged, a stalled one is."""
    backend = Backend()

    async def fast(request: web.Request) -> web.Response:
        await asyncio.sleep(0.002)
        return web.Response(text="ok")

    async def main() -> None:
        app = backend.app()
        app.router.add_get("/fast", fast)
        hedge = Hedge(after="p90", initial=5.0, min_samples=20, budget=Budget(ratio=1.0))
        async with serve_app(app) as base, open_client(hedge=hedge, policy=NO_RETRY) as client:
            # Before 20 samples the delay is `initial` (5 s): nothing is hedged.
            warm = await client.gather([f"{base}/fast"] * 20, concurrency=1)
            assert not any(r.hedged for r in warm)
            result = (await client.gather([f"{base}/k/stalled"]))[0]
            assert result.hedge_won  # learnt delay ~ a few ms, not 5 s
            assert backend.seen["stalled"] == 2

    run(main())


def test_gather_keeps_the_input_order() -> None:
    async def handler(request: web.Request) -> web.Response:
        i = int(request.query["i"])
        await asyncio.sleep(random.random() * 0.02)
        return web.Response(text=str(i))

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        async with serve_app(app) as base, open_client(limits=Limits(concurrency=30)) as client:
            results = await client.gather([f"{base}/?i={i}" for i in range(300)])
            assert [r.response.text() if r.response else None for r in results] == [
                str(i) for i in range(300)
            ]
            assert await client.gather([]) == []

    run(main())


def test_gather_fail_fast_cancels_the_rest_and_raises_the_first_error() -> None:
    finished = started = 0
    all_started = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        nonlocal started, finished
        started += 1
        if started == 10:
            all_started.set()
        await asyncio.sleep(10)
        finished += 1
        return web.Response(text="late")

    async def bad(request: web.Request) -> web.Response:
        await all_started.wait()
        return web.Response(status=500)

    async def main() -> None:
        app = web.Application(handler_args={"handler_cancellation": True})
        app.router.add_get("/slow", slow)
        app.router.add_get("/bad", bad)
        async with serve_app(app) as base, open_client(policy=NO_RETRY) as client:
            requests = [f"{base}/slow?i={i}" for i in range(10)] + [f"{base}/bad"]
            # Without fail_fast this would take 10 s; the test's bound says it did not.
            async with asyncio.timeout(5):
                with pytest.raises(HTTPStatusError) as info:
                    await client.gather(requests, fail_fast=True)
            assert info.value.status == 500
            assert client.statistics().in_flight == 0
            # Without fail_fast the same failure is one result among the others.
            all_started.set()
            results = await client.gather([f"{base}/bad", f"{base}/bad"])
            assert [r.error.code if r.error else None for r in results] == ["http_500"] * 2

    run(main())
    assert finished == 0


def test_fan_outs_share_the_slots_fairly() -> None:
    """A fan-out of 10 started behind one of 1,000 (with 200 workers) is not served after
    the big one's queue: count the big one's calls the server saw meanwhile."""
    order: list[str] = []
    big_started = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        order.append(request.query["fan"])
        if order.count("big") == 30:
            big_started.set()
        await asyncio.sleep(0.005)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        async with serve_app(app) as base, open_client(limits=Limits(concurrency=5)) as client:
            big = [f"{base}/?fan=big&i={i}" for i in range(1000)]
            small = [f"{base}/?fan=small&i={i}" for i in range(10)]

            async def later() -> list[object]:
                await big_started.wait()
                return list(await client.gather(small))

            async with asyncio.TaskGroup() as tg:
                big_task = tg.create_task(client.gather(big, concurrency=200))
                small_task = tg.create_task(later())
            assert all(r.ok for r in big_task.result())
            assert len(small_task.result()) == 10

    run(main())
    first_small = order.index("small")
    last_small = len(order) - 1 - order[::-1].index("small")
    # The small one goes first (one queue for both, FIFO: ~200 big calls in between).
    assert order[first_small:last_small].count("big") <= 30


@pytest.mark.slow
def test_no_fd_or_task_leak_after_10k_hedged_calls() -> None:
    served = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        if served % 2:
            await asyncio.sleep(0.02)  # every other copy is slow: hedges win and lose
        return web.Response(text="ok")

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main() -> tuple[int, int, int, int]:
        app = web.Application()
        app.router.add_get("/", handler)
        async with serve_app(app) as base:
            tasks_before, fds_before = len(asyncio.all_tasks()), fds()
            # 10 ms: long enough for a busy loop's timers to be on time (a late one waits)
            hedge = Hedge(after=0.01, budget=Budget(ratio=1.0))
            async with (
                asyncio.timeout(100),
                open_client(hedge=hedge, limits=Limits(concurrency=64)) as client,
            ):
                results = await client.gather([f"{base}/?i={i}" for i in range(10_000)])
                assert all(r.ok for r in results)
                assert client.statistics().hedges > 1000
                assert client.statistics().in_flight == 0
            for _ in range(100):  # the server's side of closed connections winds down
                if len(asyncio.all_tasks()) <= tasks_before and fds() <= fds_before:
                    break
                await asyncio.sleep(0.02)
            gc.collect()
            return tasks_before, len(asyncio.all_tasks()), fds_before, fds()

    tasks_before, tasks_after, fds_before, fds_after = run(main())
    assert tasks_after <= tasks_before
    assert fds_after <= fds_before


def test_hedge_and_budget_are_validated() -> None:
    with pytest.raises(UsageError, match="hedge after"):
        Hedge(after="fast")
    with pytest.raises(UsageError, match="hedge after"):
        Hedge(after=-1)
    with pytest.raises(UsageError, match="budget"):
        Budget(ratio=-0.1)
    assert Hedge(after="p99.9").percentile == 99.9
    assert Hedge(budget=0.2).extra_budget == Budget(ratio=0.2)


def test_equal_fan_outs_finish_one_after_another_not_all_at_the_end() -> None:
    """Four fan-outs of 40 started together through 4 slots: the first is done after
    about a quarter of the work (round-robin would finish every one near the end)."""
    served = 0
    done_at: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        await asyncio.sleep(0.002)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", handler)
        async with serve_app(app) as base, open_client(limits=Limits(concurrency=4)) as client:

            async def fan(j: int) -> None:
                results = await client.gather([f"{base}/?fan={j}&i={i}" for i in range(40)])
                assert all(r.ok for r in results)
                done_at.append(served)

            async with asyncio.TaskGroup() as tg:
                for j in range(4):
                    tg.create_task(fan(j))

    run(main())
    assert sorted(done_at) == done_at
    assert done_at[0] <= 60  # of 160: the first fan-out did not wait for the others
    assert done_at[1] <= 100
