"""One part of a planned run, as a task for any executor (a process pool, Dask).

``run_part`` is a top-level function of picklable arguments: it runs the
part's own event loop (``run_get`` over ``OUT/parts/NNNNN/``) in whatever
process the executor chose, and returns the part's ``Summary``. A part is an
ordinary aiograb output, so running it again — after Ctrl-C, a kill -9, a
Dask worker that died — resumes from its journal. It stops early when the
coordinator's stop file appears (Ctrl-C of the coordinator: this works the
same in a local child and on another machine of a shared file system), and
writes its progress to ``progress.json`` about once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.errors import UsageError
from aiograb._core.loop import run_stoppable
from aiograb._core.stats import Progress, Summary
from aiograb._store.atomic import replacing

if TYPE_CHECKING:  # the engine is the parts' to import, not the coordinator's
    from aiograb._images.pipeline import ImagePipeline

__all__ = [
    "PROGRESS_NAME",
    "STOP_NAME",
    "PartJob",
    "check_canary",
    "read_progress",
    "run_part",
    "warm_up",
]

PROGRESS_NAME = "progress.json"
STOP_NAME = "STOP"  # in OUT/parts/: every part stops when it appears
PROGRESS_SECONDS = 1.0
STOP_POLL_SECONDS = 0.3


@dataclass(frozen=True, slots=True)
class PartJob:
    out: str  # the part's folder
    input: str  # its input.jsonl
    stop_file: str
    limits: Limits
    policy: RequestPolicy
    retry_failed: bool = False
    io_threads: int = 0
    pipeline: ImagePipeline | None = None
    use_uvloop: bool = True
    own_process: bool = False  # a process we started (--procs, local:N): tune its collector


class _ProgressFile:
    """``progress.json`` rewritten atomically at most once a second (and at the end)."""

    def __init__(self, folder: str) -> None:
        self._path = os.path.join(folder, PROGRESS_NAME)
        self._last = 0.0

    def __call__(self, p: Progress, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        data = {k: v for k, v in asdict(p).items() if k != "errors"}
        # Only the bar's count: a full disk is the journal's to report.
        with contextlib.suppress(OSError), replacing(self._path) as tmp, open(tmp, "w") as fh:
            json.dump(data, fh)


def read_progress(folder: Path) -> Progress | None:
    """A part's last written progress, or None before it has written any."""
    try:
        data = json.loads((folder / PROGRESS_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return Progress(**data)


async def _watch_stop_file(path: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.path.exists(path):  # noqa: ASYNC240 (a stat every 0.3 s, not worth a thread)
            stop.set()
            return
        await asyncio.sleep(STOP_POLL_SECONDS)


def run_part(job: PartJob) -> Summary:
    """Run (or resume) one part to its end; the executor's task."""
    progress = _ProgressFile(job.out)
    if job.own_process:
        # As the CLI does for its own process (BENCHMARKS.md: -8% CPU): a bulk download
        # makes many short-lived containers. Not in the worker of a cluster given by
        # address, which is not ours (a LocalCluster's workers are).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    summary = run_stoppable(functools.partial(_run, job, progress), use_uvloop=job.use_uvloop)
    with contextlib.suppress(OSError):
        state = Progress(ok=summary.ok, failed=summary.failed, bytes=summary.bytes)
        state.total = sum(summary.counts.values())
        state.already_done = state.total - summary.counts.get("pending", 0) - state.done
        state.input_done = True
        progress(state, force=True)
    return summary


async def _run(job: PartJob, progress: _ProgressFile, stop: asyncio.Event) -> Summary:
    from aiograb._get.download import run_get
    from aiograb._scale.plan import read_part_rows

    try:
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(_watch_stop_file(job.stop_file, stop))
            try:
                return await run_get(
                    read_part_rows(Path(job.input)),
                    job.out,
                    limits=job.limits,
                    policy=job.policy,
                    retry_failed=job.retry_failed,
                    stop=stop,
                    on_progress=progress,
                    pipeline=job.pipeline,
                    io_threads=job.io_threads,
                )
            finally:
                watcher.cancel()
    except BaseExceptionGroup as group:
        # The watcher never fails: what failed is run_get. Raise it as itself (an
        # OSError of a full disk is what the coordinator's summary looks for).
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


def warm_up(limits: Limits) -> None:
    """A task for a fresh pool process: import what a part runs (the engine, its
    transport, uvloop) while the coordinator plans, not after it in the first part."""
    import importlib

    from aiograb._http.default import transport_name

    with contextlib.suppress(UsageError):  # a part with a bad transport says so itself
        modules = ["aiograb._get.download", f"aiograb._http.{transport_name(limits)}_transport"]
        for name in [*modules, "uvloop"]:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)


def check_canary(path: str, token: str) -> str | None:
    """On a worker: None when ``path`` holds ``token`` (the coordinator's folder is
    visible here), else what went wrong."""
    try:
        with open(path) as fh:
            found = fh.read()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return None if found == token else f"{path} holds another run's token"
