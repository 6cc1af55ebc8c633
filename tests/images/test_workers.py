"""The loop-driven process pool: crashes, time-outs, cancellation, no threads."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aiograb._images.workers import WorkerPool
from tests.helpers import run

HANDLER = """
import os, signal, time

def handle(request):
    if request.get("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if request.get("exit"):
        os._exit(3)
    time.sleep(request.get("sleep", 0))
    return {"ok": True, "pid": os.getpid(), "echo": request.get("x")}
"""


@pytest.fixture
def handler(tmp_path: Path) -> Path:
    path = tmp_path / "handler.py"
    path.write_text(HANDLER)
    return path


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_requests_round_trip_without_adding_threads(handler: Path) -> None:
    async def main() -> None:
        before = threads()
        async with WorkerPool(handler, workers=2) as pool:
            results = await asyncio.gather(*(pool.call({"x": i}) for i in range(20)))
            assert threads() == before
        assert [r["echo"] for r in results] == list(range(20))
        assert len({r["pid"] for r in results}) == 2
        assert pool.statistics().requests == 20

    run(main())


def test_crash_and_exit_fail_one_request_each_and_the_pool_recovers(handler: Path) -> None:
    async def main() -> None:
        async with WorkerPool(handler, workers=2) as pool:
            crash, died, *rest = await asyncio.gather(
                pool.call({"crash": 1}),
                pool.call({"exit": 1}),
                *(pool.call({"x": i}) for i in range(6)),
            )
            assert crash == {
                "ok": False,
                "code": "worker_crashed",
                "message": "worker process killed by SIGSEGV",
            }
            assert died["code"] == "worker_crashed"
            assert "status 3" in died["message"]
            assert all(r["ok"] for r in rest)
            stats = pool.statistics()
            assert (stats.crashed, stats.started) == (2, 4)

    run(main())


def test_a_stuck_request_times_out_and_its_worker_is_replaced(handler: Path) -> None:
    async def main() -> None:
        async with WorkerPool(handler, workers=1, timeout=0.5) as pool:
            stuck = await pool.call({"sleep": 30})
            assert stuck["code"] == "worker_timeout"
            assert (await pool.call({"x": 1}))["ok"]
            assert pool.statistics().timed_out == 1

    run(main())


def test_cancelling_a_request_leaves_a_working_pool(handler: Path) -> None:
    async def main() -> None:
        async with WorkerPool(handler, workers=1) as pool:
            task = asyncio.ensure_future(pool.call({"sleep": 30}))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await pool.call({"x": 7}))["echo"] == 7

    run(main())


def test_closing_the_pool_ends_every_worker(handler: Path) -> None:
    async def main() -> list[int]:
        async with WorkerPool(handler, workers=2) as pool:
            results = await asyncio.gather(pool.call({}), pool.call({"sleep": 0.1}))
        return [r["pid"] for r in results]

    for pid in run(main()):
        assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_a_request_queued_behind_a_crash_goes_to_another_worker(handler: Path) -> None:
    async def main() -> None:
        async with WorkerPool(handler, workers=1, depth=2) as pool:
            crash, behind = await asyncio.gather(pool.call({"crash": 1}), pool.call({"x": 5}))
            assert crash["code"] == "worker_crashed"
            assert behind["echo"] == 5  # it never reached the dead worker: not a crash
            stats = pool.statistics()
            assert (stats.crashed, stats.started) == (1, 2)

    run(main())


def test_the_time_limit_counts_from_when_the_worker_can_start(handler: Path) -> None:
    async def main() -> None:
        # Each works 0.8 s, within the 1.5 s limit (0.7 s of slack for a loaded machine);
        # the second waits 0.8 s behind the first: 1.6 s from its call, over the limit.
        async with WorkerPool(handler, workers=1, depth=2, timeout=1.5) as pool:
            first, second = await asyncio.gather(
                pool.call({"sleep": 0.8}), pool.call({"sleep": 0.8, "x": 2})
            )
            assert first["ok"]
            assert second["echo"] == 2
            assert pool.statistics().timed_out == 0

    run(main())
