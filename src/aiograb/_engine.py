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
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

from yarl import URL

from ._clock import Clock, LoopClock
from ._config import Limits, RequestPolicy
from ._exceptions import InvalidURL
from ._fetch import Fetcher, Request
from ._journal import JOURNAL_NAME, Journal, NewRow, PendingRow
from ._politeness import Politeness
from ._sinks import FileSink
from ._sources import InputRow
from ._stats import Progress, ResourcePeaks, Summary, peak_rss_mb
from ._transport import AiohttpTransport, Transport
from ._urls import parse_url, url_key

__all__ = ["MANIFEST_NAME", "run_get"]

MANIFEST_NAME = "manifest.jsonl"
INGEST_CHUNK = 2000
PENDING_CHUNK = 500
FLUSH_ROWS = 1000
FLUSH_SECONDS = 0.5
PARK_PER_WORKER = 4


class _Stopped(Exception):
    """Raised inside the task group to stop a run on request."""


def _to_journal(rows: Iterable[InputRow]) -> Iterator[NewRow]:
    for row in rows:
        if row.error is not None:
            yield NewRow(
                f"line:{row.line}", row.url, row.line, row.error, _ROW_ERRORS[row.error], row.extra
            )
            continue
        try:
            url = parse_url(row.url)
        except InvalidURL as exc:
            yield NewRow(f"line:{row.line}", row.url, row.line, exc.code, str(exc), row.extra)
            continue
        yield NewRow(str(url), row.url, row.line, extra=row.extra)


_ROW_ERRORS = {
    "invalid_encoding": "input row is not valid UTF-8",
    "invalid_row": "input row is not valid (bad JSON, or no URL field)",
    "missing_url": "input row has no URL",
}


def _host(key: str) -> str:
    # ``key`` is a normalised URL (already encoded): the same host Politeness sees.
    return URL(key, encoded=True).host or ""


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
        rows: Iterable[InputRow],
        journal: Journal,
        sink: FileSink,
        fetcher: Fetcher,
        limits: Limits,
        *,
        retry_failed: bool,
        on_progress: Callable[[Progress], None] | None,
        progress_interval: float,
    ) -> None:
        self._rows = _to_journal(rows)
        self.journal = journal
        self._sink = sink
        self.fetcher = fetcher
        self._workers = limits.concurrency
        self._parking = _Parking(PARK_PER_WORKER * limits.concurrency)
        self._retry_failed = retry_failed
        self._on_progress = on_progress
        self._interval = progress_interval
        self.progress = Progress()
        self.peaks = ResourcePeaks()
        counts = journal.counts()
        self.progress.total = sum(counts.values())
        self.progress.already_done = counts.get("ok", 0) + (
            0 if retry_failed else counts.get("failed", 0)
        )

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
        cursor = 0
        while True:
            batch = self.journal.pending(cursor, PENDING_CHUNK, retry_failed=self._retry_failed)
            if batch:
                cursor = batch[-1].id
                for row in batch:
                    await queue.put(row)
                continue
            if self.progress.input_done:
                break
            chunk = list(islice(self._rows, INGEST_CHUNK))
            if len(chunk) < INGEST_CHUNK:
                self.progress.input_done = True
            new_pending, new_failed = self.journal.add(chunk)
            self.progress.total += new_pending + new_failed
            self.progress.failed += new_failed
            await asyncio.sleep(0)  # let workers run between chunks
        for _ in range(self._workers):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[PendingRow | None]) -> None:
        parking, politeness = self._parking, self.fetcher.politeness
        while (row := await queue.get()) is not None:
            host = _host(row.key)
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
            await self._fetch_row(next_row)
            next_row = parking.pop(host) if politeness.available(host) else None

    async def _fetch_row(self, row: PendingRow) -> None:
        journal, progress, sink = self.journal, self.progress, self._sink
        key = url_key(row.key)
        outcome = await self.fetcher.fetch(Request(row.url), sink, key)
        if outcome.ok:
            progress.ok += 1
            progress.bytes += outcome.stored.size if outcome.stored else 0
        else:
            progress.failed += 1
            progress.errors[outcome.error_code or "unknown"] += 1
            sink.remove_stale(key)
        journal.record(row.id, outcome)
        if journal.buffered >= FLUSH_ROWS:
            journal.flush()

    async def _tick(self, done: asyncio.Event) -> None:
        while not done.is_set():
            self.peaks.sample()
            if time.monotonic() - self.journal.last_commit >= FLUSH_SECONDS:
                self.journal.flush()
            if self._on_progress is not None:
                self._on_progress(self.progress)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self._interval)
        self.peaks.sample()


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
    progress_interval: float = 0.2,
) -> Summary:
    """Download every URL of ``rows`` into ``out_dir``; resume what a journal there holds."""
    limits = limits or Limits()
    policy = policy or RequestPolicy()
    out = Path(out_dir)
    sink = FileSink(out)
    sink.prepare()
    journal = Journal(out / JOURNAL_NAME)
    clock = clock or LoopClock()
    own_transport = transport is None
    transport = transport or AiohttpTransport(limits)
    fetcher = Fetcher(transport, Politeness(limits, clock), policy, clock)
    run = _Run(
        rows,
        journal,
        sink,
        fetcher,
        limits,
        retry_failed=retry_failed,
        on_progress=on_progress,
        progress_interval=progress_interval,
    )
    t0 = time.monotonic()
    interrupted = True  # until the run returns normally
    try:
        interrupted = await run.run(stop)
    finally:
        run.peaks.sample()
        elapsed = time.monotonic() - t0
        journal.flush()
        journal.write_manifest(out / MANIFEST_NAME)
        counts, errors = journal.counts(), journal.error_counts()
        journal.close()
        if own_transport:
            await transport.aclose()
        if on_progress is not None:
            on_progress(run.progress)
    return Summary(
        out_dir=out,
        manifest=out / MANIFEST_NAME,
        journal=out / JOURNAL_NAME,
        counts=counts,
        errors=errors,
        fetched=run.progress.done,
        ok=run.progress.ok,
        failed=run.progress.failed,
        bytes=run.progress.bytes,
        elapsed=elapsed,
        retries=fetcher.retries,
        peak_threads=run.peaks.threads,
        peak_rss_mb=peak_rss_mb(),
        interrupted=interrupted,
    )
