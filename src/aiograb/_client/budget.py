"""The retry budget (Finagle/Envoy style) that retries and hedges share.

Per host, over a sliding window: extra attempts may be at most
``ratio`` × requests + ``min_extra``. A backend that fails everything then
gets at most ``ratio`` more load, not ``retries`` times more.
"""

from __future__ import annotations

from collections import deque

from aiograb._core.clock import Clock
from aiograb._core.config import Budget

__all__ = ["ExtraBudget"]

_BUCKETS = 10  # the window slides in tenths
_MAX_HOSTS = 4096  # a service calls few backends; forget the least recent beyond this


class _Window:
    __slots__ = ("buckets", "extras", "requests")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [bucket number, requests, extras]
        self.requests = 0
        self.extras = 0

    def current(self, bucket: int) -> list[int]:
        buckets = self.buckets
        while buckets and buckets[0][0] <= bucket - _BUCKETS:
            _, requests, extras = buckets.popleft()
            self.requests -= requests
            self.extras -= extras
        if not buckets or buckets[-1][0] != bucket:
            buckets.append([bucket, 0, 0])
        return buckets[-1]


class ExtraBudget:
    """Counts requests and extra attempts per host; says whether one more extra fits."""

    def __init__(self, budget: Budget, clock: Clock) -> None:
        self.budget = budget
        self._clock = clock
        self._width = budget.window / _BUCKETS
        self._hosts: dict[str, _Window] = {}
        self.spent = 0  # extras granted, over all hosts
        self.refused = 0  # extras refused for lack of budget

    def _window(self, host: str) -> tuple[_Window, list[int]]:
        window = self._hosts.get(host)
        if window is None:
            if len(self._hosts) >= _MAX_HOSTS:  # forget the oldest host seen
                del self._hosts[next(iter(self._hosts))]
            window = self._hosts[host] = _Window()
        bucket = int(self._clock.now() // self._width)
        buckets = window.buckets
        if buckets and buckets[-1][0] == bucket and buckets[0][0] > bucket - _BUCKETS:
            return window, buckets[-1]  # the usual case: nothing to slide
        return window, window.current(bucket)

    def request(self, host: str) -> None:
        """Count one request (a deposit)."""
        window, bucket = self._window(host)
        bucket[1] += 1
        window.requests += 1

    def try_spend(self, host: str) -> bool:
        """Take one extra attempt (a retry or a hedge) if the budget allows it."""
        window, bucket = self._window(host)
        allowed = self.budget.ratio * window.requests + self.budget.min_extra
        if window.extras + 1 > allowed:
            self.refused += 1
            return False
        bucket[2] += 1
        window.extras += 1
        self.spent += 1
        return True
