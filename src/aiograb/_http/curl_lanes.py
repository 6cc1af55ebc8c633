"""The curl transport's multi handles ("lanes"): no more than ``LANE_WIDTH`` transfers to
one destination in any one of them.

libcurl keeps its connections per multi handle and, for every new transfer, walks the
connections it has to the same destination to find a free one (``Curl_cpool_find``,
``url_match_conn``, ``Curl_peer_same_destination``): linear in that host's
connections, for each request. A fan-out of 1,000 calls to one backend keeps 1,000
connections to it, and callgrind put that walk at ~40 % of all instructions per call
(BENCHMARKS.md, "#12 fan-out, sixth pass"). ``Lanes`` spreads a busy destination over
several multi handles, at most ``LANE_WIDTH`` of its transfers at once in each, so the
walk is never longer than that. A destination that never has more than
``LANE_WIDTH`` transfers at once (every host of a polite ``get``) stays in the first
lane, with every connection it has, exactly as with one multi handle; a lane is only
made when a destination overflows the ones there are. A destination's transfers
fill the lowest lane with room first, so the lanes above are used only at its peaks
and their connections are the ones a peak needs again.

One thread still: every lane's sockets are in the transport's one epoll set, and
each lane has its own timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["LANE_WIDTH", "Lane", "Lanes"]

LANE_WIDTH = 64  # transfers to one destination in one multi handle at once


class Lane:
    """One multi handle, its timer, and how many transfers are in it."""

    __slots__ = ("added", "deadline", "index", "multi", "timer")

    def __init__(self, index: int, multi: Any) -> None:
        self.index = index
        self.multi = multi
        self.added = 0  # transfers added and not yet removed
        self.timer: asyncio.Handle | None = None
        self.deadline = 0.0  # loop time the timer fires at


class Lanes:
    """Which lane a transfer to a destination goes to; lanes made as needed, at most
    ``most`` (past that, the one where the destination has the fewest)."""

    __slots__ = ("_load", "_make", "_most", "all")

    def __init__(self, make: Callable[[int], Lane], most: int) -> None:
        self._make = make
        self._most = max(1, most)
        self.all: list[Lane] = []
        # destination -> its transfers in each lane (index = the lane's), while it has any
        self._load: dict[object, list[int]] = {}

    def first(self) -> Lane:
        if not self.all:
            self.all.append(self._make(0))
        return self.all[0]

    def take(self, key: object) -> tuple[Lane, list[int]]:
        """A lane for one more transfer to ``key``, and the counts to give it back to."""
        counts = self._load.get(key)
        if counts is None:
            counts = self._load[key] = [0]
        i, end = 0, len(counts)
        while i < end and counts[i] >= LANE_WIDTH:
            i += 1
        if i == end:  # every lane it is in is full: the next one, or the least full
            if end < self._most:
                counts.append(0)
            else:
                i = min(range(end), key=counts.__getitem__)
        counts[i] += 1
        lanes = self.all
        while len(lanes) <= i:
            lanes.append(self._make(len(lanes)))
        return lanes[i], counts

    def give_back(self, key: object, counts: list[int], lane: Lane) -> None:
        counts[lane.index] -= 1
        if not counts[lane.index] and not any(counts):
            self._load.pop(key, None)

    def destinations(self) -> int:
        """How many destinations have transfers now (a test's view)."""
        return len(self._load)
