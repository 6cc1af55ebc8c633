"""The one worker loop of aiograb, for ``get`` and ``crawl`` alike.

::

    handler.rows() ──> bounded queue ──> N long-lived workers (TaskGroup) ──> handler.handle(row)

The engine knows nothing of what a row means: a ``RowHandler`` gives the rows
(lazily, from the journal) and handles each one — download and record for
``get`` (``aiograb._get.download``), fetch, parse and discover for ``crawl``
(``aiograb._crawl.handler``); the image stage wraps either. The engine owns
the concurrency: no task per URL, a bounded queue, rows for a busy or paused
host parked aside (bounded) so a worker serves other hosts meanwhile, and one
``TaskGroup`` that a stop request (Ctrl-C, SIGTERM) cancels — the journal and
manifest are still written by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

from aiograb._core.urls import host_of
from aiograb._store.journal import PendingRow

if TYPE_CHECKING:
    from aiograb._core.models import Outcome
    from aiograb._fetch.fetcher import SinkFactory
    from aiograb._get.runstate import RunState

__all__ = ["Engine", "RowHandler", "Stage", "StageFactory"]

PARK_PER_WORKER = 4


class RowHandler(Protocol):
    """What the engine drives: where rows come from, and what is done with each."""

    def rows(self) -> AsyncIterator[PendingRow]:
        """The rows to handle, lazily; it ends when no more can come."""
        ...

    async def handle(self, row: PendingRow) -> None:
        """Handle one row completely (fetch, record, ...); never raises for a per-URL failure."""
        ...


class HostGate(Protocol):
    def available(self, host: str) -> bool: ...


class Stage(Protocol):
    """Work between "body complete" and "recorded" (the image pipeline), for one run.

    The handler fetches into ``sink``, calls ``await admit()`` before each
    fetch (a stage whose backlog is full makes downloading wait), and hands
    every outcome, ok or not, to ``process``, which must record it through
    ``RunState.record`` (at once, or later, e.g. when its shard is complete).
    """

    @property
    def sink(self) -> SinkFactory: ...

    async def admit(self) -> None: ...

    async def process(self, row: PendingRow, outcome: Outcome, key: str) -> None: ...


class StageFactory(Protocol):
    """Opens a ``Stage`` for one run; leaving the context records every held outcome."""

    def open(self, state: RunState) -> AbstractAsyncContextManager[Stage]: ...


class _Stopped(Exception):
    """Raised inside the task group to stop a run on request."""


class _Parking:
    """Rows waiting for a busy or paused host, per host, bounded in total."""

    def __init__(self, limit: int) -> None:
        self._rows: dict[str, deque[PendingRow]] = {}
        self._limit = limit
        self.size = 0

    def park(self, host: str, row: PendingRow) -> bool:
        if self.size >= self._limit:
            return False
        self._rows.setdefault(host, deque()).append(row)
        self.size += 1
        return True

    def pop(self, host: str) -> PendingRow | None:
        rows = self._rows.get(host)
        if not rows:
            return None
        row = rows.popleft()
        if not rows:
            del self._rows[host]
        self.size -= 1
        return row

    def pop_any(self) -> tuple[str, PendingRow] | None:
        for host in self._rows:
            row = self.pop(host)
            assert row is not None
            return host, row
        return None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class Engine:
    """Runs one ``RowHandler`` with ``workers`` long-lived workers.

    ``gate`` says whether a host can take a request now (politeness);
    ``tick`` is called every ``interval`` seconds (progress, time-based commits).
    """

    def __init__(
        self,
        handler: RowHandler,
        gate: HostGate,
        *,
        workers: int,
        tick: Callable[[], None],
        interval: float = 0.2,
    ) -> None:
        self._handler = handler
        self._gate = gate
        self._workers = workers
        self._parking = _Parking(PARK_PER_WORKER * workers)
        self._tick_fn = tick
        self._interval = interval

    async def run(self, stop: asyncio.Event | None = None) -> bool:
        """Run to completion; return True when stopped early.

        A handler never raises for a per-URL failure; anything else it raises is a bug
        (ours, or a user's transport's) and leaves here as itself, not as the task
        group's ``ExceptionGroup``.
        """
        queue: asyncio.Queue[PendingRow | None] = asyncio.Queue(maxsize=2 * self._workers)
        stopped = False
        try:
            try:
                async with asyncio.TaskGroup() as tg:
                    done = asyncio.Event()
                    tg.create_task(self._produce(queue))
                    workers = [tg.create_task(self._work(queue)) for _ in range(self._workers)]
                    tg.create_task(self._tick(done))
                    if stop is not None:
                        tg.create_task(self._watch(stop, done))
                    await asyncio.gather(*workers)
                    done.set()
            except* _Stopped:
                stopped = True
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from group
        return stopped

    async def _watch(self, stop: asyncio.Event, done: asyncio.Event) -> None:
        stopped = asyncio.ensure_future(stop.wait())
        finished = asyncio.ensure_future(done.wait())
        try:
            await asyncio.wait({stopped, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            finished.cancel()
        if stop.is_set() and not done.is_set():
            raise _Stopped

    async def _produce(self, queue: asyncio.Queue[PendingRow | None]) -> None:
        async for row in self._handler.rows():
            await queue.put(row)
        for _ in range(self._workers):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[PendingRow | None]) -> None:
        parking, gate = self._parking, self._gate
        while True:
            # Parked rows are served before waiting on an empty queue: the handler's
            # row source may be waiting for exactly these rows to finish (a crawl).
            if queue.empty() and (item := parking.pop_any()) is not None:
                await self._serve_host(*item)
                continue
            row = await queue.get()
            if row is None:
                break
            host = host_of(row.key)  # the key is the URL in normal form
            # A row for a host that is busy or paused waits aside, so this worker can
            # serve other hosts meanwhile (bounded: past the limit, the worker waits).
            if not gate.available(host) and parking.park(host, row):
                continue
            await self._serve_host(host, row)
        # End of input: finish the rows still parked, each worker taking its share.
        while (item := parking.pop_any()) is not None:
            await self._serve_host(*item)

    async def _serve_host(self, host: str, row: PendingRow) -> None:
        """Handle a row, then keep serving rows parked for the same host while it has room."""
        parking, gate, handle = self._parking, self._gate, self._handler.handle
        next_row: PendingRow | None = row
        while next_row is not None:
            await handle(next_row)
            next_row = parking.pop(host) if gate.available(host) else None

    async def _tick(self, done: asyncio.Event) -> None:
        while not done.is_set():
            self._tick_fn()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._interval)
