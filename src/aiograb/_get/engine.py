"""The one event loop of ``aiograb get``.

::

    input rows ──(ingest, in chunks)──> journal ──(pending rows, in id order)──>
    bounded queue ──> N long-lived workers (TaskGroup) ──> outcomes ──> journal (batched)

The producer is lazy: it reads the next chunk of input only when the journal
has no pending row left to hand out, so memory does not grow with the input
and a resumed run first finishes what an earlier run left. No task is created
per URL. Every task belongs to one ``TaskGroup``; a stop request (Ctrl-C,
SIGTERM) cancels the group, and the journal and manifest are still written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from yarl import URL

from aiograb._core.clock import Clock, LoopClock
from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.models import InputRow, Outcome, Request
from aiograb._core.stats import Progress, Summary
from aiograb._core.urls import url_key
from aiograb._fetch.fetcher import Fetcher, SinkFactory
from aiograb._fetch.politeness import Politeness
from aiograb._get.runstate import MANIFEST_NAME, OutcomeHook, RunState
from aiograb._http.aiohttp_transport import AiohttpTransport
from aiograb._http.base import Transport
from aiograb._store.journal import PendingRow

__all__ = ["MANIFEST_NAME", "Processor", "Stage", "run_get"]

PARK_PER_WORKER = 4


class Stage(Protocol):
    """Work between "body complete" and "recorded" (the image pipeline), for one run.

    The engine fetches into ``sink``, calls ``await admit()`` before each
    fetch (a stage whose backlog is full makes downloading wait), and hands
    every outcome, ok or not, to ``process``, which must record it through
    ``RunState.record`` (at once, or later, e.g. when its shard is complete).
    """

    @property
    def sink(self) -> SinkFactory: ...

    async def admit(self) -> None: ...

    async def process(self, row: PendingRow, outcome: Outcome, key: str) -> None: ...


class Processor(Protocol):
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


class _Run:
    def __init__(
        self,
        state: RunState,
        fetcher: Fetcher,
        limits: Limits,
        progress_interval: float,
        stage: Stage | None = None,
    ) -> None:
        self.state = state
        self.stage = stage
        self.fetcher = fetcher
        self._workers = limits.concurrency
        self._parking = _Parking(PARK_PER_WORKER * limits.concurrency)
        self._interval = progress_interval

    async def run(self, stop: asyncio.Event | None) -> bool:
        """Run to completion; return True when stopped early."""
        queue: asyncio.Queue[PendingRow | None] = asyncio.Queue(maxsize=2 * self._workers)
        stopped = False
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
        for n, row in enumerate(self.state.pending()):
            await queue.put(row)
            if n % 1000 == 999:
                await asyncio.sleep(0)  # reading input never starves the workers
        for _ in range(self._workers):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[PendingRow | None]) -> None:
        parking, politeness = self._parking, self.fetcher.politeness
        while (row := await queue.get()) is not None:
            host = URL(row.key, encoded=True).host or ""  # the key is the normalised URL
            # A row for a host that is busy or paused waits aside, so this worker can
            # serve other hosts meanwhile (bounded: past the limit, the worker waits).
            if not politeness.available(host) and parking.park(host, row):
                continue
            await self._fetch_host(host, row)
        # End of input: finish the rows still parked, each worker taking its share.
        while (item := parking.pop_any()) is not None:
            await self._fetch_host(*item)

    async def _fetch_host(self, host: str, row: PendingRow) -> None:
        """Fetch a row, then keep serving rows parked for the same host while it has room."""
        parking, politeness = self._parking, self.fetcher.politeness
        next_row: PendingRow | None = row
        while next_row is not None:
            await self._process(next_row)
            next_row = parking.pop(host) if politeness.available(host) else None

    async def _process(self, row: PendingRow) -> None:
        """Fetch one row and record its outcome (the crawl also parses pages here)."""
        key = url_key(row.key)
        url = URL(row.key, encoded=True)  # checked and normalised at ingest
        if (stage := self.stage) is None:
            outcome = await self.fetcher.fetch(Request(row.url), self.state.sink, key, url=url)
            self.state.record(row, outcome, key)
        else:  # the image pipeline: its stage stores and records the outcome
            await stage.admit()
            outcome = await self.fetcher.fetch(Request(row.url), stage.sink, key, url=url)
            await stage.process(row, outcome, key)

    async def _tick(self, done: asyncio.Event) -> None:
        while not done.is_set():
            self.state.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._interval)


async def run_get(
    rows: Iterable[InputRow],
    out_dir: str | Path,
    *,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    retry_failed: bool = False,
    transport: Transport | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_outcome: OutcomeHook | None = None,
    progress_interval: float = 0.2,
    processor: Processor | None = None,
) -> Summary:
    """Download every URL of ``rows`` into ``out_dir``; resume what a journal there holds.

    With a ``processor`` (the image pipeline), each body goes through its stage
    before it is stored and recorded.
    """
    limits = limits or Limits()
    policy = policy or RequestPolicy()
    state = RunState(
        rows, out_dir, retry_failed=retry_failed, on_progress=on_progress, on_outcome=on_outcome
    )
    clock = clock or LoopClock()
    own_transport = transport is None
    transport = transport or AiohttpTransport(limits)
    fetcher = Fetcher(transport, Politeness(limits, clock), policy, clock)
    interrupted = True  # until the run returns normally
    try:
        if processor is None:
            interrupted = await _Run(state, fetcher, limits, progress_interval).run(stop)
        else:
            async with processor.open(state) as stage:
                run = _Run(state, fetcher, limits, progress_interval, stage)
                interrupted = await run.run(stop)
    finally:
        summary = state.close(interrupted=interrupted, retries=fetcher.retries)
        if own_transport:
            await transport.aclose()
    return summary
