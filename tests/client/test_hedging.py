"""The hedged race itself (``_client/hedging.py``): who wins, what is counted, and a
late timer on a busy loop. Copies are plain coroutines here; tests/client/test_fanout.py
runs hedging against real servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

from aiograb._client.hedging import Copy, race
from aiograb._core.models import Outcome
from tests.helpers import run


def answer(after: float, text: str, log: list[str]) -> Callable[[], Awaitable[Copy]]:
    async def copy() -> Outcome:
        try:
            await asyncio.sleep(after)
        except asyncio.CancelledError:
            log.append(f"{text} cancelled")
            raise
        log.append(f"{text} answered")
        return Outcome(url=text, ok=True, attempts=1)

    return copy


def test_a_slow_first_copy_loses_to_the_hedge_and_is_cancelled() -> None:
    log: list[str] = []

    async def main() -> None:
        got, attempts, hedged, won = await race(
            answer(5.0, "first", log), answer(0.01, "second", log), 0.02, lambda: True
        )
        assert isinstance(got, Outcome)
        assert (got.url, attempts, hedged, won) == ("second", 2, True, True)
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0  # the cancellation used on the first copy was taken back

    run(main())
    assert log == ["second answered", "first cancelled"]


def test_a_fast_first_copy_sends_no_hedge() -> None:
    log: list[str] = []
    asked: list[bool] = []

    async def main() -> None:
        got, attempts, hedged, won = await race(
            answer(0.0, "first", log),
            answer(0.0, "second", log),
            0.05,
            lambda: asked.append(True) or True,
        )
        assert isinstance(got, Outcome)
        assert (got.url, attempts, hedged, won) == ("first", 1, False, False)
        await asyncio.sleep(0.1)  # past the hedge's delay: its timer was cancelled

    run(main())
    assert log == ["first answered"]
    assert asked == []


def test_without_budget_the_first_copy_stands() -> None:
    log: list[str] = []

    async def main() -> None:
        got, attempts, hedged, _ = await race(
            answer(0.1, "first", log), answer(0.0, "second", log), 0.01, lambda: False
        )
        assert isinstance(got, Outcome)
        assert (got.url, attempts, hedged) == ("first", 1, False)

    run(main())
    assert log == ["first answered"]


def test_a_timer_late_because_the_loop_was_busy_sends_no_hedge() -> None:
    """The loop is held (CPU work) past both the hedge's delay and the first copy's
    answer: the late timer waits for the loop to catch up, and the answer is there."""
    log: list[str] = []
    asked: list[bool] = []

    async def hold_the_loop() -> None:
        await asyncio.sleep(0)
        time.sleep(0.2)  # noqa: ASYNC251 (CPU work on the loop thread, on purpose)

    async def main() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(hold_the_loop())
            got, _, hedged, _ = await race(
                answer(0.05, "first", log),
                answer(0.0, "second", log),
                0.02,
                lambda: asked.append(True) or True,
            )
        assert isinstance(got, Outcome)
        assert (got.url, hedged) == ("first", False)

    run(main())
    assert asked == []
    assert log == ["first answered"]


def test_an_answer_already_in_the_socket_when_the_timer_fires_sends_no_hedge() -> None:
    """The timer fires on time, but the loop was held while the first copy's answer
    arrived: it is in the socket, unread. The verdict waits for the loop's next look at
    its sockets, which finishes the first copy; no hedge is sent."""
    log: list[str] = []
    asked: list[bool] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ours, server = socket.socketpair()
        ours.setblocking(False)

        async def first() -> Copy:
            await loop.sock_recv(ours, 1)
            log.append("first answered")
            return Outcome(url="first", ok=True, attempts=1)

        async def hold_the_loop() -> None:
            await asyncio.sleep(0.03)
            time.sleep(0.008)  # noqa: ASYNC251 (the loop is busy: CPU work, on purpose)
            server.send(b"x")  # the answer arrives while the loop is held...
            time.sleep(0.02)  # noqa: ASYNC251 (... past the hedge's delay, by < delay/2)

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(hold_the_loop())
                got, _, hedged, _ = await race(
                    first, answer(0.0, "second", log), 0.05, lambda: asked.append(True) or True
                )
        finally:
            ours.close()
            server.close()
        assert isinstance(got, Outcome)
        assert (got.url, hedged) == ("first", False)

    run(main())
    assert asked == []
    assert log == ["first answered"]


def test_cancelling_the_caller_cancels_both_copies() -> None:
    log: list[str] = []

    async def main() -> None:
        call = asyncio.ensure_future(
            race(answer(5.0, "first", log), answer(5.0, "second", log), 0.01, lambda: True)
        )
        await asyncio.sleep(0.1)  # the hedge is out
        call.cancel()
        await asyncio.wait((call,))
        assert call.cancelled()
        await asyncio.sleep(0.01)  # the second copy's cancellation lands

    run(main())
    assert sorted(log) == ["first cancelled", "second cancelled"]
