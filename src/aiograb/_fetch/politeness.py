"""Per-host slots: how many requests may be in flight to a host, how often they
may start, and whether the host asked us to back off (Retry-After).

A slot exists only while some request uses it or a wait on it is still in the
future, so a run over a million hosts does not keep a million slots.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiograb._core.clock import Clock
from aiograb._core.config import Limits

__all__ = ["Politeness"]


@dataclass(slots=True)
class _Slot:
    semaphore: asyncio.Semaphore | None
    users: int = 0  # requests holding or waiting for a slot
    taken: int = 0  # requests holding a slot
    next_start: float = 0.0
    paused_until: float = 0.0


class Politeness:
    """Hands out per-host slots according to ``Limits.per_host`` and ``Limits.rate``."""

    def __init__(self, limits: Limits, clock: Clock) -> None:
        self._per_host = limits.host_limit()
        self._interval = 1.0 / limits.rate if limits.rate > 0 else 0.0
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self._delays: dict[str, float] = {}  # per-host minimum interval (robots Crawl-delay)

    def _slot(self, host: str) -> _Slot:
        slot = self._slots.get(host)
        if slot is None:
            sem = asyncio.Semaphore(self._per_host) if self._per_host > 0 else None
            slot = self._slots[host] = _Slot(sem)
        return slot

    def pause(self, host: str, seconds: float) -> None:
        """Start no request to ``host`` for ``seconds`` (from a Retry-After)."""
        slot = self._slot(host)
        until = self._clock.now() + seconds
        slot.paused_until = max(slot.paused_until, until)

    def set_delay(self, host: str, seconds: float) -> None:
        """Start requests to ``host`` at least ``seconds`` apart (e.g. a Crawl-delay)."""
        if seconds > 0:
            self._delays[host] = max(seconds, self._interval)
        else:
            self._delays.pop(host, None)

    def available(self, host: str) -> bool:
        """Whether a request to ``host`` could start right now without waiting."""
        slot = self._slots.get(host)
        if slot is None:
            return True
        if slot.semaphore is not None and slot.semaphore.locked():
            return False
        now = self._clock.now()
        return slot.paused_until <= now and slot.next_start <= now

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of ``host``'s slots for the duration of a request."""
        slot = await self.acquire(host)
        try:
            yield
        finally:
            self.release(host, slot)

    async def acquire(self, host: str) -> _Slot | None:
        """Wait for a slot of ``host``; pair with ``release``. (The engines' hot path.)"""
        no_limit = not self._per_host and not self._interval and host not in self._slots
        if no_limit and host not in self._delays:
            return None  # no limits and no pause: nothing to hold
        slot = self._slot(host)
        slot.users += 1
        try:
            if slot.semaphore is not None:
                await slot.semaphore.acquire()
                slot.taken += 1
            try:
                await self._wait_turn(slot, self._delays.get(host, self._interval))
            except BaseException:
                if slot.semaphore is not None:
                    slot.semaphore.release()
                    slot.taken -= 1
                raise
        except BaseException:
            self._forget(host, slot)
            raise
        return slot

    def release(self, host: str, slot: _Slot | None) -> None:
        if slot is None:
            return
        if slot.semaphore is not None:
            slot.semaphore.release()
            slot.taken -= 1
        self._forget(host, slot)

    def _forget(self, host: str, slot: _Slot) -> None:
        slot.users -= 1
        now = self._clock.now()
        idle = slot.users == 0 and slot.paused_until <= now and slot.next_start <= now
        if idle and self._slots.get(host) is slot:
            del self._slots[host]

    async def _wait_turn(self, slot: _Slot, interval: float) -> None:
        while True:
            now = self._clock.now()
            wait = max(slot.paused_until, slot.next_start) - now
            if wait <= 0:
                break
            await self._clock.sleep(wait)
        if interval:
            slot.next_start = max(now, slot.next_start) + interval

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def per_host(self) -> int:
        return self._per_host

    def held_back(self, concurrency: int) -> bool:
        """Whether the per-host limit holds the run back right now: some host has every
        slot taken and a request waiting for one, while the run has room for more."""
        waiting = in_flight = 0
        for slot in self._slots.values():
            if slot.semaphore is None:
                continue
            in_flight += slot.taken
            if slot.users > slot.taken:  # a request of this host waits for a slot
                waiting += 1
        return waiting > 0 and in_flight < concurrency
