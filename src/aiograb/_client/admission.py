"""Fair admission to the client's concurrency slots.

Every fan-out (one ``fetch_all``/``gather`` call, or one ``fetch``) gets its own
``Lane``. Waiting lanes are served round-robin, one slot per turn, so a fan-out
of 5,000 calls queued first does not make a fan-out of 10 wait behind all of
them: each incoming request of a service keeps its latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["Admission", "Lane"]


class Lane:
    """One fan-out's queue of waiters."""

    __slots__ = ("queued", "waiters")

    def __init__(self) -> None:
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.queued = False  # in the admission's ring


class Admission:
    """``capacity`` slots, handed to waiting lanes in turn (a fair semaphore)."""

    __slots__ = ("_free", "_ring", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._ring: deque[Lane] = deque()

    @property
    def in_use(self) -> int:
        return self.capacity - self._free

    async def acquire(self, lane: Lane, *, urgent: bool = False) -> None:
        """Wait for a slot; ``urgent`` waiters (hedges) go to the front of their lane."""
        if self._free > 0 and not self._ring:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if urgent:
            lane.waiters.appendleft(waiter)
        else:
            lane.waiters.append(waiter)
        if not lane.queued:
            lane.queued = True
            self._ring.append(lane)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled before it could be used
            else:
                with contextlib.suppress(ValueError):
                    lane.waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give the slot to the next lane in turn, or back to the pool."""
        ring = self._ring
        while ring:
            lane = ring.popleft()
            waiters = lane.waiters
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    if waiters:
                        ring.append(lane)
                    else:
                        lane.queued = False
                    return
            lane.queued = False
        self._free += 1
