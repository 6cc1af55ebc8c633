"""``get``'s row handler: fetch one URL into a sink and record its outcome — and ``run_get``.

::

    input rows ──(ingest, in chunks)──> journal ──(pending rows, in id order)──>
    Engine (the one worker loop) ──> DownloadHandler.handle ──> outcome ──> journal (batched)

The row source is lazy: it reads the next chunk of input only when the journal
has no pending row left to hand out, so memory does not grow with the input
and a resumed run first finishes what an earlier run left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from aiograb._core.clock import Clock, LoopClock
from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.errors import UsageError
from aiograb._core.fdlimit import fit_limits
from aiograb._core.models import InputRow, Request
from aiograb._core.stats import Progress, Summary
from aiograb._core.urls import url_key, url_of
from aiograb._fetch.fetcher import Fetcher
from aiograb._fetch.politeness import Politeness
from aiograb._get.engine import Engine, Stage, StageFactory
from aiograb._get.runstate import OutcomeHook, RunState
from aiograb._http.base import Transport
from aiograb._http.default import make_transport
from aiograb._store.journal import PendingRow

__all__ = ["DownloadHandler", "run_get"]


class DownloadHandler:
    """Fetch a row's URL and record it — through the image stage when there is one.

    The crawl composes one of these for its image rows.
    """

    def __init__(self, state: RunState, fetcher: Fetcher, stage: Stage | None = None) -> None:
        self.state = state
        self.fetcher = fetcher
        self.stage = stage

    async def rows(self) -> AsyncIterator[PendingRow]:
        for n, row in enumerate(self.state.pending()):
            yield row
            if n % 1000 == 999:
                await asyncio.sleep(0)  # reading input never starves the workers

    async def handle(self, row: PendingRow) -> None:
        key = url_key(row.key)
        url = url_of(row.key)  # checked and normalised at ingest
        if (stage := self.stage) is None:
            if self.state.adopt(row, key):  # stored before a kill -9, row not committed
                return
            outcome = await self.fetcher.fetch(Request(row.url), self.state.sink, key, url=url)
            self.state.record(row, outcome, key)
        else:  # the image pipeline: its stage stores and records the outcome
            await stage.admit()
            outcome = await self.fetcher.fetch(Request(row.url), stage.sink, key, url=url)
            await stage.process(row, outcome, key)


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
    pipeline: StageFactory | None = None,
    verify_hash: tuple[str, str] | None = None,
    io_threads: int = 0,
) -> Summary:
    """Download every URL of ``rows`` into ``out_dir``; resume what a journal there holds.

    With a ``pipeline`` (the image pipeline), each body goes through its stage
    before it is stored and recorded. ``io_threads`` > 0 stores files from that
    many IO threads (``FileSink``), so the loop never waits for the disk.
    """
    limits = fit_limits(limits or Limits())
    policy = policy or RequestPolicy()
    own_transport = transport is None
    # Before the journal opens: a bad CA bundle or cookie file is a UsageError.
    transport = transport or make_transport(limits, network=policy.network)
    if verify_hash is not None and pipeline is not None:
        raise UsageError("verify_hash checks the downloaded bytes: it cannot go with a pipeline")
    state = RunState(
        rows,
        out_dir,
        retry_failed=retry_failed,
        on_progress=on_progress,
        on_outcome=on_outcome,
        verify_hash=verify_hash,
        io_threads=io_threads,
    )
    stop = stop or asyncio.Event()
    state.on_storage_error = stop.set  # a full disk ends the run cleanly
    clock = clock or LoopClock()
    politeness = Politeness(limits, clock)
    fetcher = Fetcher(transport, politeness, policy, clock)
    interrupted = True  # until the run returns normally

    def tick() -> None:
        state.sample_hosts(politeness.held_back(limits.concurrency), politeness.per_host)
        state.tick()

    async def run(stage: Stage | None) -> bool:
        handler = DownloadHandler(state, fetcher, stage)
        engine = Engine(
            handler,
            politeness,
            workers=limits.concurrency,
            tick=tick,
            interval=progress_interval,
        )
        return await engine.run(stop)

    try:
        if pipeline is None:
            interrupted = await run(None)
        else:
            async with pipeline.open(state) as stage:
                interrupted = await run(stage)
    finally:
        summary = state.close(interrupted=interrupted, retries=fetcher.retries)
        if own_transport:
            await transport.aclose()
    return summary
