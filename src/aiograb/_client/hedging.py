"""A hedged call: the first copy runs in the caller's task, a timer starts the second.

The cheap shape matters: every hedgeable call of a fan-out pays for it, and most never
send a hedge. So the first copy is awaited inline (no task, no ``asyncio.wait``), and
only a ``call_later`` handle waits beside it. When it fires and the first copy is still
out, a second copy starts as a task (within the retry budget). Whichever copy succeeds
first wins: the other is cancelled — the second by ``Task.cancel``, the first by
cancelling the caller's task and taking that cancellation back (``uncancel``), as
``asyncio.timeout`` does. Nothing outlives the call: the second copy is always
cancelled or awaited before ``race`` returns.

When the timer fires, the transport is asked where the first copy's answer stands
(``_http/answers.py``; the curl transport looks at the transfer and its socket). Sent
with nothing to read: the hedge goes now, even while the loop is busy with a burst of
other answers, so a slow call is raced while the burst is read rather than after it.
Its answer waiting in the socket, unread: look again a quarter of the delay later. Its
head read: no hedge.

A transport that cannot say (aiohttp's, or a request not sent yet) leaves the old
guess: a timer that fires late means the loop itself was busy (a burst of calls going
out or of answers coming in), the answer may be waiting in a socket already, and a
hedge sent then only adds work. So the verdict waits until the loop is on time again,
looking every quarter of the delay; a loop that is always a little late (by less than
half the delay) still hedges. And a timer on time decides only after the loop's next
look at its sockets: an answer that arrived while the loop was busy is read first and
finishes the first copy, rather than being raced by a hedge it has already beaten.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiograb._core.errors import RequestError
from aiograb._core.models import Outcome
from aiograb._http.answers import ANSWERING, SILENT, UNKNOWN, WATCH, AnswerWatch

__all__ = ["Copy", "race"]

Copy = Outcome | RequestError
_RECHECK_S = 0.002


def succeeded(got: Copy) -> bool:
    return not isinstance(got, RequestError) and got.ok


def attempts_of(got: Copy) -> int:
    return 0 if isinstance(got, RequestError) else got.attempts


class _Race:
    __slots__ = (
        "_backup",
        "_delay",
        "_due",
        "_handle",
        "_loop",
        "_may_hedge",
        "_owner",
        "_start_backup",
        "_watch",
        "backup_won",
        "first_done",
    )

    def __init__(
        self,
        delay: float,
        may_hedge: Callable[[], bool],
        start_backup: Callable[[], Coroutine[Any, Any, Copy]],
        watch: AnswerWatch,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        owner = asyncio.current_task()
        assert owner is not None
        self._owner = owner
        self._delay = delay
        self._may_hedge = may_hedge
        self._start_backup = start_backup
        self._watch = watch
        self._backup: asyncio.Task[Copy] | None = None
        self._due = self._loop.time() + delay
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(delay, self._fire)
        self.first_done = False
        self.backup_won = False

    @property
    def backup(self) -> asyncio.Task[Copy] | None:
        return self._backup

    def _fire(self) -> None:
        self._handle = None
        if self.first_done:
            return
        state = self._watch.state()
        if state == SILENT:  # its socket looked at just now: no answer to race
            self._decide()
            return
        if state == ANSWERING:
            return
        now = self._loop.time()
        if state != UNKNOWN or now - self._due > max(0.005, self._delay / 2):
            # Its answer is waiting, unread, or the loop was busy: look again.
            step = max(_RECHECK_S, self._delay / 4)
            self._due = now + step
            self._handle = self._loop.call_later(step, self._fire)
            return
        # The verdict comes after the loop's next look at its sockets (a 0 s timer runs
        # after it on both loops): an answer already there finishes the first copy first.
        self._handle = self._loop.call_later(0, self._decide)

    def _decide(self) -> None:
        self._handle = None
        if self.first_done or not self._may_hedge():
            return
        # The second copy runs without the watch: the transport reports the first's.
        context = contextvars.copy_context()
        context.run(WATCH.set, None)
        self._backup = backup = self._loop.create_task(self._start_backup(), context=context)
        backup.add_done_callback(self._backup_done)

    def _backup_done(self, backup: asyncio.Task[Copy]) -> None:
        if self.first_done or backup.cancelled() or backup.exception() is not None:
            return
        if succeeded(backup.result()):
            self.backup_won = True
            self._owner.cancel()  # interrupts the first copy, awaited in the owner task

    def first_finished(self) -> None:
        self.first_done = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def taken_back(self) -> bool:
        """After a CancelledError in the owner: True when it was ours (the second copy
        won) and nobody else cancelled the task too."""
        return self.backup_won and self._owner.uncancel() == 0

    async def settle(self) -> Copy | None:
        """The second copy's result once the first has finished: awaited when the first
        failed, else cancelled (None)."""
        backup = self._backup
        if backup is None:
            return None
        if not backup.done():
            backup.cancel()
        await asyncio.wait((backup,))
        if backup.cancelled():
            return None
        return backup.result()


async def race(
    first: Callable[[], Awaitable[Copy]],
    second: Callable[[], Coroutine[Any, Any, Copy]],
    delay: float,
    may_hedge: Callable[[], bool],
) -> tuple[Copy, int, bool, bool]:
    """Run ``first``; after ``delay`` seconds without an answer, and if ``may_hedge()``,
    ``second`` beside it. Returns the winning copy's result, the attempts of every copy
    sent (a cancelled one counts as one), whether a hedge was sent and whether it won."""
    watch = AnswerWatch()
    state = _Race(delay, may_hedge, second, watch)
    token = WATCH.set(watch)
    try:
        try:
            got: Copy | None = await first()
        except asyncio.CancelledError:
            state.first_finished()
            if not state.taken_back():
                raise
            got = None  # interrupted: the second copy won
        state.first_finished()
        backup = state.backup
        if backup is None:
            assert got is not None
            return got, attempts_of(got), False, False
        if got is None:  # the second copy won
            won = backup.result()
            return won, attempts_of(won) + 1, True, True
        if succeeded(got):
            late = await state.settle()  # cancelled unless it had finished as well
            extra = max(1, attempts_of(late)) if late is not None else 1
            return got, max(1, attempts_of(got)) + extra, True, False
        other = await state.settle()  # the first copy failed: the second may still succeed
        if other is not None and succeeded(other):
            return other, max(1, attempts_of(got)) + max(1, attempts_of(other)), True, True
        extra = max(1, attempts_of(other)) if other is not None else 1
        return got, max(1, attempts_of(got)) + extra, True, False
    finally:
        WATCH.reset(token)
        state.first_finished()
        backup = state.backup
        if backup is not None and not backup.done():
            backup.cancel()
