"""The coordinator: plan once, run every part as an executor task, merge, sum up.

::

    download(..., procs=N)  ──> ProcessPoolExecutor(N) ─┐
    download(..., executor=E) (a Dask client's, ...) ───┴─> run_parted
        plan (plan.py, once) ──> one task per part (part.py: its own event loop)
        ──> futures ──> OUT/manifest.jsonl (merge.py) + one Summary

Progress comes from the parts' ``progress.json`` files and the summary from
the ``Summary`` each task returns: both reach the coordinator the same way for
a local process pool and for Dask workers on other machines (a shared file
system and the executor's futures), and no process but a part's own ever
opens its journal while it runs (SQLite over a network file system is only
safe with one writer and no readers). The merge reads the journals after the
parts have finished.

``-c`` is the total: each part gets ``concurrency // width`` where ``width``
is how many parts run at once. A part holding a share of a split domain
divides the per-host limit and rate by the number of parts sharing it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiograb._core.config import DEFAULT_TRANSPORT, Limits, RequestPolicy
from aiograb._core.errors import UsageError
from aiograb._core.loop import stop_signals
from aiograb._core.stats import Progress, Summary, peak_rss_mb
from aiograb._get.sources import InputRow
from aiograb._scale import forkserver
from aiograb._scale.merge import MANIFEST_NAME, write_merged_manifest
from aiograb._scale.part import (
    STOP_NAME,
    PartJob,
    check_canary,
    read_progress,
    run_part,
    warm_up,
)
from aiograb._scale.plan import PART_INPUT, PARTS_DIR, PLAN_NAME, Part, Plan, load_plan, make_plan
from aiograb._store.journal import JOURNAL_NAME, LOST_FOLDER_HINT
from aiograb._store.refusals import REFUSALS, storage_refusal

if TYPE_CHECKING:  # the engine is the parts' to import, not the coordinator's
    from aiograb._images.pipeline import ImagePipeline

__all__ = ["default_procs", "run_parted"]

POLL_SECONDS = 0.5


def default_procs() -> int:
    """``auto``: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ignore_sigint() -> None:
    # A pool process between parts must not die of the terminal's Ctrl-C; while a
    # part runs, its loop handles SIGINT itself (run_stoppable) and stops cleanly.
    # The terminal's hangup is the coordinator's to act on (the stop file): a pool
    # process ignores it as the fork server it comes from does (forkserver.start).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def process_pool(procs: int, transport: str = DEFAULT_TRANSPORT) -> cf.ProcessPoolExecutor:
    """The executor of ``--procs``: processes forked from a fork server, a fresh
    single-threaded interpreter that imported the engine (and ``transport``'s module)
    once, so no inherited loop or threads and no import per process (``spawn`` where
    there is no fork server: each process imports the engine itself)."""
    import multiprocessing
    from multiprocessing.context import BaseContext

    context: BaseContext
    if not forkserver.available():
        context = multiprocessing.get_context("spawn")
    else:
        context = multiprocessing.get_context("forkserver")
        forkserver.start("procs", transport)  # nothing when the CLI's already runs
    return cf.ProcessPoolExecutor(procs, mp_context=context, initializer=_ignore_sigint)


def part_limits(limits: Limits, part: Part, width: int) -> Limits:
    """The share of ``-c`` (and of a split domain's per-host limit and rate) of one part."""
    div = part.host_divisor
    return replace(
        limits,
        concurrency=max(1, limits.concurrency // width),
        per_host=max(1, limits.per_host // div) if limits.per_host else 0,
        rate=limits.rate / div,
    )


def check_visible(out: Path, probe: Callable[[str, str], Iterable[str | None]]) -> None:
    """Write a canary file in ``out``; ``probe(path, token)`` reads it where the parts
    run. Any problem is one line: the output folder must be on a shared file system."""
    token = secrets.token_hex(8)
    canary = out / f".aiograb-canary-{token}"
    canary.write_text(token)
    try:
        problems = [p for p in probe(str(canary), token) if p is not None]
    finally:
        canary.unlink(missing_ok=True)
    if problems:
        raise UsageError(
            f"the output folder {out} is not visible to every worker ({problems[0]}): "
            "put it on a file system they all share"
        )


def _executor_probe(executor: cf.Executor, width: int) -> Callable[[str, str], list[str | None]]:
    def probe(path: str, token: str) -> list[str | None]:
        futures = [executor.submit(check_canary, path, token) for _ in range(width)]
        return [f.result() for f in futures]

    return probe


def executor_width(executor: cf.Executor) -> int:
    """How many tasks ``executor`` runs at once (its pool size, or a Dask cluster's threads)."""
    # Neither Executor API exposes this: probe the two executors we know.
    width = getattr(executor, "_max_workers", None)
    if width is None and (client := getattr(executor, "_client", None)) is not None:
        width = sum(client.nthreads().values())
    return int(width or default_procs())


def _plan(rows: Callable[[], Iterable[InputRow]], out: Path, parts: int | None, width: int) -> Plan:
    plan = load_plan(out)
    if plan is not None:
        return plan
    if (out / JOURNAL_NAME).exists():
        raise UsageError(
            f"{out} holds a one-process run; run it again without --procs/--dask, "
            "or pick another output folder"
        )
    return make_plan(rows(), out, parts or width)


class _Stop:
    """Ctrl-C, SIGTERM or SIGHUP of the coordinator (``stop_signals``): write the stop
    file every part watches."""

    def __init__(self, stop_file: Path) -> None:
        self._file = stop_file
        self.requested = threading.Event()
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        self._file.unlink(missing_ok=True)
        if threading.current_thread() is threading.main_thread():
            for sig in stop_signals():
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, sig: int, _frame: object) -> None:
        signal.signal(sig, self._old.get(sig, signal.SIG_DFL))  # a second one: the default
        self.requested.set()
        self._file.touch()

    def __exit__(self, *_exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._file.unlink(missing_ok=True)


def _total_progress(plan: Plan) -> Progress:
    total = Progress(input_done=True)
    for part in plan.parts:
        p = read_progress(plan.part_dir(part))
        if p is None:
            total.total += part.rows
            continue
        total.total += max(p.total, part.rows) if not p.input_done else p.total
        total.already_done += p.already_done
        total.ok += p.ok
        total.failed += p.failed
        total.bytes += p.bytes
    return total


Probe = Callable[[str, str], Iterable[str | None]]
Starting = Callable[[], cf.Executor]  # a cluster still starting: its executor, once it is up


def _ready(executor: cf.Executor | Starting) -> cf.Executor:
    return executor if isinstance(executor, cf.Executor) else executor()


def _check_and_plan(
    rows: Callable[[], Iterable[InputRow]],
    out: Path,
    executor: cf.Executor | Starting,
    width: int | None,
    parts: int | None,
    probe: Probe | Literal[False] | None,
    limits: Limits,
) -> tuple[cf.Executor, Plan, int]:
    """The canary, then the plan, overlapped with what the executor's start-up costs.

    Workers that may be elsewhere see the canary before anything is planned for them.
    Processes of this machine (``probe=False``) need none: a cluster
    still starting comes up while the plan is written, and a ready pool's processes
    are spawned, and import the engine, meanwhile (``warm_up``).
    """
    if probe is not False:
        executor = _ready(executor)
        width = width or executor_width(executor)
        check_visible(out, probe or _executor_probe(executor, width))
    warming: threading.Thread | None = None
    if isinstance(executor, cf.Executor):
        width = width or executor_width(executor)
        # In a thread: a pool starts its processes in submit(), and a fork server's
        # first one only once the server has imported the engine (~0.3 s of planning).
        warming = threading.Thread(target=_warm_up, args=(executor, width, limits))
        warming.start()
    try:
        if width is None:
            raise UsageError("a starting executor needs its width")
        plan = _plan(rows, out, parts, width)
    finally:
        if warming is not None:
            warming.join()
    return _ready(executor), plan, width


def _warm_up(executor: cf.Executor, width: int, limits: Limits) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # a broken pool says so at the parts' submit
        for _ in range(width):  # futures nobody waits for: a warm-up only imports
            executor.submit(warm_up, limits)


def run_parted(
    rows: Callable[[], Iterable[InputRow]],
    out_dir: str | os.PathLike[str],
    executor: cf.Executor | Starting,
    *,
    width: int | None = None,
    parts: int | None = None,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    retry_failed: bool = False,
    io_threads: int = 0,
    pipeline: ImagePipeline | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    probe: Probe | Literal[False] | None = None,
    use_uvloop: bool = True,
    own_processes: bool = False,
) -> Summary:
    """Plan ``rows()`` (only when ``out_dir`` has no plan yet) and run every part on
    ``executor``; return the summary of the whole run.

    ``executor`` may be a callable that returns it (a cluster still starting: called
    once the plan is written; give ``width`` then). ``probe`` reads the canary where
    the parts run (default: a task per worker); ``False``: the executor's processes
    are this machine's (our own pool, a ``LocalCluster``), no canary is needed.
    """
    t0 = time.monotonic()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    limits, policy = limits or Limits(), policy or RequestPolicy()
    ready, plan, width = _check_and_plan(rows, out, executor, width, parts, probe, limits)
    running = max(1, min(width, len(plan.parts)))
    stop_file = out / PARTS_DIR / STOP_NAME
    common = PartJob(
        out="", input="", stop_file=str(stop_file), limits=limits, policy=policy,
        retry_failed=retry_failed, io_threads=io_threads, use_uvloop=use_uvloop,
        own_process=own_processes,
    )  # fmt: skip
    with _Stop(stop_file) as stop:
        jobs = [_job(common, plan, part, running, pipeline) for part in plan.parts]
        futures = [ready.submit(run_part, job) for job in jobs]
        results = list(_wait(futures, plan, on_progress))
        interrupted = stop.requested.is_set()
    # A part whose task returned has just written its manifest from its journal.
    fresh = [
        part.index
        for part, r in zip(plan.parts, results, strict=True)
        if isinstance(r, Summary) and r.storage_error is None
    ]
    summary = _combine(plan, results, time.monotonic() - t0, interrupted, (io_threads, running))
    if not (out / PLAN_NAME).exists():  # OUT was removed or replaced: the parts stopped
        lost = f"{out}: the output folder was removed or replaced during the run; stopped"
        return replace(
            summary,
            storage_error=f"{lost}. {LOST_FOLDER_HINT}",
            storage_stop="folder_lost",
            manifest_written=False,
        )
    unmerged = _merge(plan, fresh)
    if unmerged is not None:  # the parts' journals hold every row: nothing is lost
        full = summary.storage_error
        summary = replace(
            summary,
            storage_error=f"{full}. {unmerged}" if full else unmerged,
            manifest_written=False,
        )
    return summary


def _merge(plan: Plan, fresh: list[int]) -> str | None:
    """Write ``OUT/manifest.jsonl``; on a full disk or a read-only folder, say how to
    rebuild it (else None)."""
    target = plan.out / MANIFEST_NAME
    try:
        write_merged_manifest(plan, target, fresh=fresh)
    except OSError as exc:
        if (code := storage_refusal(exc)) is None:
            raise
        return (
            f"{target}: the merged manifest could not be written ({exc.strerror}): after "
            f"you {REFUSALS[code][1]}, rebuild it with 'aiograb manifest {plan.out} --to {target}'"
        )
    return None


def _job(
    common: PartJob, plan: Plan, part: Part, running: int, pipeline: ImagePipeline | None
) -> PartJob:
    folder = plan.part_dir(part)
    return replace(
        common,
        out=str(folder),
        input=str(folder / PART_INPUT),
        limits=part_limits(common.limits, part, running),
        pipeline=pipeline.shared(running, part.index) if pipeline is not None else None,
    )


def _wait(
    futures: list[cf.Future[Summary]], plan: Plan, on_progress: Callable[[Progress], None] | None
) -> Iterator[Summary | BaseException]:
    pending = set(futures)
    while pending:
        _done, pending = cf.wait(pending, timeout=POLL_SECONDS)
        if on_progress is not None:
            on_progress(_total_progress(plan))
    for f in futures:
        exc = f.exception()
        yield f.result() if exc is None else exc


def _combine(
    plan: Plan,
    results: list[Summary | BaseException],
    elapsed: float,
    interrupted: bool,
    threads: tuple[int, int],
) -> Summary:
    """One summary from the parts'; a part whose task failed (its process died for
    good) leaves the run resumable: counted from its journal, and ``interrupted``."""
    from aiograb._store.journal import Journal

    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    done = [r for r in results if isinstance(r, Summary)]
    broken = [
        (p, r) for p, r in zip(plan.parts, results, strict=True) if not isinstance(r, Summary)
    ]
    io_threads, running = threads
    # Parts share processes: the `running` largest part peaks bound the run's memory.
    rss = sorted((s.peak_rss_mb for s in done), reverse=True)[:running]
    for s in done:
        counts.update(s.counts)
        errors.update(s.errors)
    for part, _exc in broken:
        path = plan.part_dir(part) / JOURNAL_NAME
        if path.is_file():
            journal = Journal(path, readonly=True)
            counts.update(journal.counts())
            errors.update(journal.error_counts())
            journal.close()
    return Summary(
        out_dir=plan.out,
        manifest=plan.out / MANIFEST_NAME,
        journal=plan.out / PARTS_DIR,
        counts=dict(counts),
        errors=dict(errors.most_common()),
        fetched=sum(s.fetched for s in done),
        ok=sum(s.ok for s in done),
        failed=sum(s.failed for s in done),
        bytes=sum(s.bytes for s in done),
        elapsed=elapsed,
        retries=sum(s.retries for s in done),
        peak_threads=max((s.peak_threads for s in done), default=0),
        peak_rss_mb=sum(rss) + peak_rss_mb(),
        interrupted=interrupted or any(s.interrupted for s in done) or bool(broken),
        input_read=not broken and all(s.input_read for s in done),
        io_threads=io_threads,
        files_by_io_pool=sum(s.files_by_io_pool for s in done),
        journals_written_back=sum(s.journals_written_back for s in done),
        processes=running,
        part_errors=tuple(
            f"part {p.name}: {type(e).__name__}: {e}"
            for p, e in broken
            if storage_refusal(e) is None
        ),
        # A part whose disk filled up stopped cleanly, or could not start: the run
        # ends as that (exit 74), and the rerun resumes it.
        storage_error=next(_storage_errors(plan, results), None),
        storage_stop=next(
            (
                code
                for r in results
                if (code := r.storage_stop if isinstance(r, Summary) else storage_refusal(r))
            ),
            None,
        ),
    )


def _storage_errors(plan: Plan, results: list[Summary | BaseException]) -> Iterator[str]:
    """What each part whose disk filled up says: from its summary, or from the error
    that stopped it before its journal could be written (it left nothing to refuse)."""
    for part, result in zip(plan.parts, results, strict=True):
        if isinstance(result, Summary):
            if result.storage_error is not None:
                yield f"part {part.name}: {result.storage_error}"
        elif (code := storage_refusal(result)) is not None:
            what, fix = REFUSALS[code]
            yield (
                f"part {part.name}: {plan.part_dir(part)}: {what} ({result}); the part "
                f"stopped: {fix} and run the same command again to finish"
            )
