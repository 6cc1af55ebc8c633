"""The hedged race itself (``_client/hedging.py``): who wins, what is counted, and a
late timer on a busy loop. Copies are plain coroutines here; tests/client/test_fanout.py
runs hedging against real servers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from aiograb._client.hedging import Copy, race
from aiograb._core.models import Outcome
from aiograb._http.answers import ANSWERING, SILENT, UNKNOWN, WAITING, WATCH
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


async def first_stands(
    first: Callable[[], Awaitable[Copy]], log: list[str], asked: list[bool]
) -> None:
    """Race ``first`` against a second copy that would answer at once, after 20 ms: the
    first copy must win unhedged (``asked`` records every call to the budget)."""
    got, _, hedged, _ = await race(
        first, answer(0.0, "second", log), 0.02, lambda: asked.append(True) or True
    )
    assert isinstance(got, Outcome)
    assert (got.url, hedged) == ("first", False)


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
            await first_stands(answer(0.05, "first", log), log, asked)

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


class Reported:
    """A transport's word on the first copy's answer (``_http/answers.py``), as given."""

    def __init__(self, state: int) -> None:
        self.state = state

    def answer_state(self) -> int:
        return self.state


def reporting(state: Reported, after: float, log: list[str]) -> Callable[[], Awaitable[Copy]]:
    """A first copy whose transport tells the watch ``state`` (as the curl transport
    hands it its exchange), answering after ``after`` seconds."""
    copy = answer(after, "first", log)

    async def first() -> Copy:
        watch = WATCH.get()
        assert watch is not None  # the race watches its first copy
        watch.exchange = state
        return await copy()

    return first


async def busy_loop(seconds: float) -> None:
    """The loop held in 50 ms slices (a burst of other answers being read)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)  # noqa: ASYNC251 (CPU work on the loop thread, on purpose)
        await asyncio.sleep(0)


def test_a_silent_first_copy_is_hedged_while_the_loop_is_busy() -> None:
    """Sent, nothing to read: the hedge goes at once, not after the burst (which the
    guess of a transport that cannot say waits for: see the next test)."""
    log: list[str] = []
    seen: list[object] = []

    async def second() -> Copy:
        seen.append(WATCH.get())  # the second copy is not watched
        return await answer(0.0, "second", log)()

    async def main() -> float:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(busy_loop(1.0))
            start = time.monotonic()
            got, _, hedged, won = await race(
                reporting(Reported(SILENT), 5.0, log), second, 0.02, lambda: True
            )
            took = time.monotonic() - start
        assert isinstance(got, Outcome)
        assert (got.url, hedged, won) == ("second", True, True)
        return took

    assert run(main()) < 0.5  # the burst lasts 1 s
    assert seen == [None]
    assert log == ["second answered", "first cancelled"]


def test_a_transport_that_cannot_say_leaves_the_hedge_until_the_burst_is_read() -> None:
    log: list[str] = []

    async def main() -> float:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(busy_loop(0.5))
            start = time.monotonic()
            got, _, hedged, won = await race(
                reporting(Reported(UNKNOWN), 5.0, log),
                answer(0.0, "second", log),
                0.02,
                lambda: True,
            )
            took = time.monotonic() - start
        assert isinstance(got, Outcome)
        assert (got.url, hedged, won) == ("second", True, True)
        return took

    assert run(main()) >= 0.45


@pytest.mark.parametrize("state", [WAITING, ANSWERING])
def test_an_answer_begun_or_waiting_unread_is_not_hedged(state: int) -> None:
    log: list[str] = []
    asked: list[bool] = []

    run(first_stands(reporting(Reported(state), 0.2, log), log, asked))
    assert asked == []
    assert log == ["first answered"]


def test_an_answer_waiting_unread_is_looked_at_again() -> None:
    """Its bytes in the socket, then gone without an answer (the connection reset):
    the next look finds it silent and hedges."""
    log: list[str] = []
    reported = Reported(WAITING)

    async def main() -> None:
        async def change() -> None:
            await asyncio.sleep(0.05)
            reported.state = SILENT

        async with asyncio.TaskGroup() as tg:
            tg.create_task(change())
            got, _, hedged, won = await race(
                reporting(reported, 5.0, log), answer(0.0, "second", log), 0.02, lambda: True
            )
        assert isinstance(got, Outcome)
        assert (got.url, hedged, won) == ("second", True, True)

    run(main())
