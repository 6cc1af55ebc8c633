"""Admission to the client's concurrency slots, shared fairly by concurrent fan-outs.

Every fan-out (one ``gather``/``fetch_all`` call, or one ``fetch``) gets its own
``Lane``. When a slot frees, it goes to the waiting lane with the fewest requests
left to start (then the oldest): a fan-out of 10 started behind one of 5,000 is
served at once instead of after the big one's queue, and many equal fan-outs
(one per incoming request of a service) finish one after another, not all
together at the end as they would if served round-robin. This is "shortest
remaining first", which minimises the mean latency of the fan-outs; its price is
that a big fan-out yields to smaller ones for as long as they keep coming (its
``deadline`` bounds that wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import deque

__all__ = ["UNKNOWN", "Admission", "Lane"]

UNKNOWN = 1 << 62  # a lazily read input (fetch_all): its size is not known
_order = itertools.count()


class Lane:
    """One fan-out's queue of waiters and how many of its requests are left to start."""

    __slots__ = ("queued", "remaining", "seq", "waiters")

    def __init__(self, size: int = UNKNOWN) -> None:
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.remaining = size
        self.seq = next(_order)  # older lanes first among equals
        self.queued = False  # has an entry in the admission's heap


class Admission:
    """``capacity`` slots, each freed slot handed to the lane with the fewest requests left."""

    __slots__ = ("_free", "_heap", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._free = capacity
        self._heap: list[tuple[int, int, Lane]] = []

    @property
    def in_use(self) -> int:
        return self.capacity - self._free

    async def acquire(self, lane: Lane, *, urgent: bool = False) -> None:
        """Wait for a slot; ``urgent`` waiters (hedges) go to the front of their lane."""
        if self._free > 0 and not self._heap:
            self._free -= 1
            lane.remaining -= not urgent
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if urgent:
            lane.waiters.appendleft(waiter)
        else:
            lane.waiters.append(waiter)
        if not lane.queued:
            self._push(lane)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled before it could be used
            else:
                with contextlib.suppress(ValueError):
                    lane.waiters.remove(waiter)
            raise
        lane.remaining -= not urgent

    def _push(self, lane: Lane) -> None:
        lane.queued = True
        heapq.heappush(self._heap, (lane.remaining, lane.seq, lane))

    def release(self) -> None:
        """Give the slot to the next lane, or back to the pool."""
        heap = self._heap
        while heap:
            _, _, lane = heapq.heappop(heap)
            lane.queued = False
            waiters = lane.waiters
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    if waiters:
                        # Its key is now one better; re-entered with the new count.
                        lane.remaining -= 1
                        self._push(lane)
                        lane.remaining += 1  # counted for real when the waiter wakes
                    return
        self._free += 1
