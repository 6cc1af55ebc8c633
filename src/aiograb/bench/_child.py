"""The measured side of a bench run: ``python -m aiograb.bench._child SPEC RESULT``.

It runs one engine of ``aiograb get`` in this process over the spec's workload
and writes what only the client itself can see as JSON: the run's summary, every
request's timeline, the event loop's lag, and the CPU work done per file. The
parent measures the process from outside (CPU time, peak RSS, OS threads).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.loop import run_loop
from aiograb._core.models import InputRow, Outcome
from aiograb._core.stats import Summary
from aiograb._get.blocking import run_get_blocking
from aiograb._get.download import run_get
from aiograb._store.journal import PendingRow

from ._cpu import Processor, make_processor
from ._measure import peak_rss_mb, peak_vm_mb
from ._workloads import RunSpec

__all__ = ["main", "run_spec"]

LAG_INTERVAL_S = 0.01


class _Recorder:
    """The ``on_outcome`` hook: timeline rows, and files handed to the CPU work."""

    def __init__(self, spec: RunSpec, processor: Processor | None) -> None:
        self._timeline = spec.timeline
        self._out = Path(spec.out)
        self.processor = processor
        self.rows: list[tuple[float, float, float, int, bool]] = []

    def __call__(self, row: PendingRow, outcome: Outcome) -> None:
        if self._timeline and (t := outcome.timing) is not None:
            self.rows.append((t.start, t.first_byte, t.end, t.thread, outcome.ok))
        stored = outcome.stored
        if self.processor is not None and outcome.ok and stored is not None and stored.path:
            self.processor.submit(str(self._out / stored.path))


async def _run_async(
    spec: RunSpec, rows: Any, limits: Limits, hook: _Recorder
) -> tuple[Summary, list[tuple[float, float]]]:
    lags: list[tuple[float, float]] = []
    finished = asyncio.Event()

    async def probe() -> None:
        t0 = time.perf_counter()
        while not finished.is_set():
            before = time.perf_counter()
            await asyncio.sleep(LAG_INTERVAL_S)
            late = time.perf_counter() - before - LAG_INTERVAL_S
            lags.append((before - t0, max(0.0, late) * 1000))

    async with asyncio.TaskGroup() as tg:
        if spec.lag_probe:
            tg.create_task(probe())
        try:
            summary = await run_get(
                rows, spec.out, limits=limits, policy=RequestPolicy(), on_outcome=hook
            )
        finally:
            finished.set()
    return summary, lags


def _cpu_now() -> float:
    """CPU seconds of this process and of the children it reaped (a pool's workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_spec(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` in this process; return the client-side measurements."""
    rows = (InputRow(line=i, url=url) for i, url in enumerate(spec.workload.urls(), 1))
    limits = Limits(concurrency=spec.concurrency, per_host=0)
    processor = make_processor(spec.cpu, spec.thumb, spec.workers)
    hook = _Recorder(spec, processor)
    lags: list[tuple[float, float]] = []
    cpu0 = _cpu_now()
    t0 = time.perf_counter()
    try:
        if spec.engine == "async":
            summary, lags = run_loop(_run_async(spec, rows, limits, hook))
        else:
            summary = run_get_blocking(
                rows, spec.out, engine=spec.engine, limits=limits, on_outcome=hook
            )
        if processor is not None:
            processor.finish()
        t_done = time.perf_counter()
    finally:
        if processor is not None:
            processor.close()
    done = processor.done if processor is not None else []
    return {
        "engine": spec.engine,
        "pid": os.getpid(),
        "run_cpu_s": _cpu_now() - cpu0,
        "peak_rss_mb": peak_rss_mb(os.getpid()),
        "peak_vm_mb": peak_vm_mb(os.getpid()),
        "ok": summary.ok,
        "failed": summary.failed,
        "errors": summary.errors,
        "retries": summary.retries,
        "elapsed_s": summary.elapsed,
        "total_s": t_done - t0,
        "peak_threads": summary.peak_threads,
        "main_thread": threading.main_thread().ident,
        "timeline": [list(r) for r in hook.rows] if spec.timeline else None,
        "lag_ms": [list(x) for x in lags] if spec.lag_probe and spec.engine == "async" else None,
        "processed": len(done),
        "process_failed": processor.failed if processor is not None else 0,
        "process_pids": sorted({d["pid"] for d in done}),
        "process_threads": sorted({d["thread"] for d in done}),
    }


def main(argv: list[str] | None = None) -> int:
    import json

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m aiograb.bench._child SPEC.json RESULT.json", file=sys.stderr)
        return 2
    spec = RunSpec.from_json(Path(args[0]).read_text(encoding="utf-8"))
    result = run_spec(spec)
    Path(args[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
