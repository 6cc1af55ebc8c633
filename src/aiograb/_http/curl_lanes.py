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

The lanes share the transport's connections, as one multi handle had them: each lane's
libcurl limits are its share (``Lanes``), so a busy destination's extra lanes never
take the open connections past the concurrency.

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
    """One multi handle, its timer, how many transfers are in it, and how many
    connections it may have open (``room``)."""

    __slots__ = ("added", "deadline", "index", "multi", "room", "timer")

    def __init__(self, index: int, multi: Any, room: int = 0) -> None:
        self.index = index
        self.multi = multi
        self.room = room
        self.added = 0  # transfers added and not yet removed
        self.timer: asyncio.Handle | None = None
        self.deadline = 0.0  # loop time the timer fires at


class Lanes:
    """Which lane a transfer to a destination goes to; lanes made as needed.

    The lanes share ``capacity`` connections (the transport's concurrency), as one
    multi handle had them: a lane above the first has room for ``LANE_WIDTH``, the
    first for the rest (never less than ``LANE_WIDTH``), so there are at most
    ``capacity // LANE_WIDTH`` lanes. Each lane's libcurl limits are set to its room
    (``limit``, called whenever a lane's room is set or changes), so libcurl closes a
    lane's idle connections before it opens more than that, and the connections open
    across lanes stay within ``capacity``. A transfer goes to the lowest lane with room
    for it and for one more of its destination; when every lane is full of its
    destination, to the lane with room where it has the fewest.
    """

    __slots__ = ("_capacity", "_limit", "_load", "_make", "_most", "all")

    def __init__(
        self, make: Callable[[int], Lane], capacity: int, limit: Callable[[Lane], None]
    ) -> None:
        self._make = make
        self._limit = limit
        self._capacity = max(1, capacity)
        self._most = max(1, self._capacity // LANE_WIDTH)
        self.all: list[Lane] = []
        # destination -> its transfers in each lane (index = the lane's), while it has any
        self._load: dict[object, list[int]] = {}
        self._add_lane()

    def take(self, key: object) -> tuple[Lane, list[int]]:
        """A lane for one more transfer to ``key``, and the counts to give it back to."""
        lanes = self.all
        counts = self._load.get(key)
        if counts is None:
            counts = self._load[key] = [0]
        lane = lanes[0]
        if counts[0] < LANE_WIDTH and lane.added < lane.room:  # nearly always
            i = 0
        else:
            i = self._place(counts)
            lane = lanes[i]
        counts[i] += 1
        lane.added += 1
        return lane, counts

    def _place(self, counts: list[int]) -> int:
        lanes = self.all
        for i, lane in enumerate(lanes):
            if i == len(counts):
                counts.append(0)
            if counts[i] < LANE_WIDTH and lane.added < lane.room:
                return i
        if len(lanes) < self._most:
            self._add_lane()
            counts.append(0)
            return len(lanes) - 1
        roomy = [i for i, lane in enumerate(lanes) if lane.added < lane.room]
        if roomy:  # every lane with room has its fill of this destination
            return min(roomy, key=counts.__getitem__)
        return min(range(len(lanes)), key=lambda i: lanes[i].added)  # more than capacity

    def _add_lane(self) -> None:
        lanes = self.all
        lane = self._make(len(lanes))
        lanes.append(lane)
        if lane.index:
            lane.room = LANE_WIDTH
            self._limit(lane)
        first = lanes[0]
        first.room = self._capacity - LANE_WIDTH * (len(lanes) - 1)
        self._limit(first)

    def give_back(self, key: object, counts: list[int], lane: Lane) -> None:
        lane.added -= 1
        counts[lane.index] -= 1
        if not counts[lane.index] and not any(counts):
            self._load.pop(key, None)

    def destinations(self) -> int:
        """How many destinations have transfers now (a test's view)."""
        return len(self._load)
