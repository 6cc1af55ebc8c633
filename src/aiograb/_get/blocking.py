"""The blocking engines of ``aiograb get``: ``sync`` and ``threads``.

They exist to be measured against the event loop (``aiograb bench``) and as
the code people write first: one request after another, or a pool of C
threads each with its own keep-alive connection pool (urllib3). They share
everything with the async engine but how they wait: the fetching
(``_fetch.blocking.BlockingFetcher`` over the urllib3 transport, driving the
same request rules), the file sink, the journal-driven row source and the
summary (``RunState``).

Per-host limits hold across threads (a semaphore per host); Retry-After and
backoff sleep the thread that got them. ``--rate`` is an async-engine feature.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.errors import UsageError
from aiograb._core.fdlimit import fit_limits
from aiograb._core.models import InputRow, Outcome, Request
from aiograb._core.stats import Progress, Summary
from aiograb._core.urls import url_key
from aiograb._fetch.blocking import BlockingFetcher
from aiograb._get.runstate import OutcomeHook, RunState
from aiograb._http.network import ProxyRoutes
from aiograb._store.journal import PendingRow

__all__ = ["run_get_blocking"]


def run_get_blocking(
    rows: Iterable[InputRow],
    out_dir: str | Path,
    *,
    engine: str,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    retry_failed: bool = False,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_outcome: OutcomeHook | None = None,
    progress_interval: float = 0.2,
) -> Summary:
    """``run_get`` with the ``sync`` or ``threads`` engine (threads = ``limits.concurrency``)."""
    if engine not in ("sync", "threads"):
        raise UsageError(f"unknown blocking engine {engine!r}")
    limits = fit_limits(limits or Limits())
    policy = policy or RequestPolicy()
    if limits.rate:
        raise UsageError("Limits.rate needs the async engine")
    if ProxyRoutes(policy.network.proxy):
        raise UsageError(
            "Network.proxy (or HTTP_PROXY/HTTPS_PROXY/ALL_PROXY) needs the async engine "
            "(proxy='' ignores the environment)"
        )
    if policy.network.cookies:
        raise UsageError("Network.cookies needs the async engine")
    state = RunState(
        rows, out_dir, retry_failed=retry_failed, on_progress=on_progress, on_outcome=on_outcome
    )
    fetcher = BlockingFetcher(policy, limits)
    stop = stop or threading.Event()
    state.on_storage_error = stop.set  # a full disk ends the run cleanly
    stopped = True
    try:
        if engine == "sync":
            stopped = _run_sync(state, fetcher, stop, progress_interval)
        else:
            stopped = _run_threads(state, fetcher, limits.concurrency, stop, progress_interval)
    finally:
        fetcher.close()
        summary = state.close(interrupted=stopped, retries=fetcher.retries)
    return summary


def _fetch_row(fetcher: BlockingFetcher, state: RunState, row: PendingRow) -> tuple[Outcome, str]:
    key = url_key(row.key)
    return fetcher.fetch(Request(row.url), state.sink, key), key


def _run_sync(
    state: RunState, fetcher: BlockingFetcher, stop: threading.Event, interval: float
) -> bool:
    last = time.monotonic()
    for row in state.pending():
        if stop.is_set():
            return True
        state.record(row, *_fetch_row(fetcher, state, row))
        if time.monotonic() - last >= interval:
            state.tick()
            last = time.monotonic()
    state.tick()
    return False


def _run_threads(
    state: RunState,
    fetcher: BlockingFetcher,
    threads: int,
    stop: threading.Event,
    interval: float,
) -> bool:
    # Bounded: at most 2 x threads rows submitted and not yet recorded. Outcomes are
    # recorded on this (the calling) thread, the only one that touches the journal.
    inflight: dict[Future[tuple[Outcome, str]], PendingRow] = {}
    rows = state.pending()
    exhausted = False
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aiograb-get") as pool:
        while True:
            while not exhausted and not stop.is_set() and len(inflight) < 2 * threads:
                row = next(rows, None)
                if row is None:
                    exhausted = True
                    break
                inflight[pool.submit(_fetch_row, fetcher, state, row)] = row
            if not inflight:
                break
            done, _ = wait(inflight, timeout=interval, return_when=FIRST_COMPLETED)
            for future in done:
                outcome, key = future.result()
                state.record(inflight.pop(future), outcome, key)
            state.tick()
            if stop.is_set():
                for future in inflight:
                    future.cancel()
                # Rows already running finish and are recorded; the rest stay pending.
                for future in [f for f in inflight if not f.cancelled()]:
                    outcome, key = future.result()
                    state.record(inflight[future], outcome, key)
                return True
    return False
