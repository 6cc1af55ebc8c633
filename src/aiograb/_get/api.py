"""``download``: the one-call library entry point over the engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aiograb._core.config import DEFAULT_IO_THREADS, Limits, RequestPolicy
from aiograb._core.errors import UsageError
from aiograb._core.loop import run_stoppable
from aiograb._core.models import InputRow
from aiograb._core.stats import Progress, Summary
from aiograb._get.download import run_get
from aiograb._get.sources import RowSource, open_source

if TYPE_CHECKING:
    from aiograb._core.clock import Clock
    from aiograb._get.runstate import OutcomeHook
    from aiograb._http.base import Transport
    from aiograb._images.pipeline import ImagePipeline

__all__ = ["download", "download_async"]


async def download_async(
    urls: Iterable[str] | Iterable[InputRow] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    retry_failed: bool = False,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    pipeline: ImagePipeline | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
    io_threads: int = DEFAULT_IO_THREADS,
    on_outcome: OutcomeHook | None = None,
    verify_hash: str | None = None,
) -> Summary:
    """Download ``urls`` (an iterable of URLs or input rows, or a path to a URL list).

    Resumable: run it again with the same ``out_dir`` and only what is not
    done yet is fetched. Per-URL failures are rows of the manifest, not
    exceptions; ``UsageError`` is raised only for unusable input or options.
    With a ``pipeline`` (``ImagePipeline``), images are verified, filtered,
    resized and deduplicated in worker processes and stored as files or shards.
    ``transport`` replaces the HTTP client (``aiograb.testing.MockTransport`` in
    tests); ``clock`` replaces time for backoff and rate limits (``FakeClock``).
    Files are created and renamed on the loop while that is measured cheap, else by
    ``io_threads`` IO threads (0: always on the loop; ``Summary.files_by_io_pool``).
    """
    return await run_get(
        _rows(urls, verify_hash),
        Path(out_dir),
        limits=limits,
        policy=policy,
        retry_failed=retry_failed,
        stop=stop,
        on_progress=on_progress,
        pipeline=pipeline,
        transport=transport,
        clock=clock,
        io_threads=io_threads,
        on_outcome=on_outcome,
        verify_hash=parse_verify_hash(verify_hash),
    )


def _rows(
    urls: Iterable[str] | Iterable[InputRow] | str | os.PathLike[str], verify_hash: str | None
) -> Iterable[InputRow]:
    if isinstance(urls, str | os.PathLike):
        checked = parse_verify_hash(verify_hash)  # the hash column is read along
        return open_source(urls, extra_columns=[checked[0]] if checked else [])
    if isinstance(urls, RowSource):  # keeps its line accounting for the summary
        return urls
    return (
        u if isinstance(u, InputRow) else InputRow(line=i, url=str(u).strip())
        for i, u in enumerate(urls, 1)
    )


def parse_verify_hash(spec: str | None) -> tuple[str, str] | None:
    """``"sha256"`` -> ``("sha256", "sha256")``; ``"md5_col:md5"`` -> ``("md5_col", "md5")``:
    the input column holding the expected hash, and which hash it is (default sha256)."""
    if spec is None:
        return None
    column, _, algo = spec.partition(":")
    algo = algo.strip().lower() or "sha256"
    if not column.strip() or algo not in ("sha256", "md5"):
        raise UsageError(f"verify_hash must be COLUMN or COLUMN:sha256|md5, not {spec!r}")
    return column.strip(), algo


def download(
    urls: Iterable[str] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    retry_failed: bool = False,
    pipeline: ImagePipeline | None = None,
    io_threads: int = DEFAULT_IO_THREADS,
    procs: int | Literal["auto"] = 1,
    executor: Executor | None = None,
    parts: int | None = None,
    transport: Transport | None = None,
) -> Summary:
    """Blocking ``download_async`` on a fresh event loop (uvloop when installed).

    Ctrl-C stops the run cleanly: the journal and manifest are written and
    the returned ``Summary`` has ``interrupted=True``.

    >>> summary = aiograb.download(["https://example.org/a.jpg"], "images/")
    >>> summary.counts
    {'ok': 1}

    Scale-out: ``procs=N`` (or ``"auto"``: the cores) runs N event-loop processes,
    ``executor`` (a ``ProcessPoolExecutor``, a Dask ``client.get_executor()``) runs
    the run's parts wherever it runs tasks. The input is planned once into
    ``parts`` parts by host (default: one per process), under ``out_dir/parts/``,
    with the merged manifest in ``out_dir/manifest.jsonl``; ``limits.concurrency``
    is the total over all of them. Rerun to resume, with any ``procs``. (A script
    that uses ``procs`` needs the ``if __name__ == "__main__":`` guard: the
    processes are spawned.)

    >>> aiograb.download("urls.txt", "images/", procs="auto")
    """
    from aiograb._store.parts import is_parted

    if executor is not None or procs != 1 or is_parted(out_dir):
        if transport is not None:
            raise UsageError("a transport cannot cross processes: use procs=1 without executor")
        return _download_parted(
            urls, out_dir, limits, policy, retry_failed, pipeline, io_threads, procs, executor,
            parts,
        )  # fmt: skip

    return run_stoppable(
        lambda stop: download_async(
            urls,
            out_dir,
            limits=limits,
            policy=policy,
            retry_failed=retry_failed,
            stop=stop,
            pipeline=pipeline,
            io_threads=io_threads,
            transport=transport,
        )
    )


def _download_parted(
    urls: Iterable[str] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    limits: Limits | None,
    policy: RequestPolicy | None,
    retry_failed: bool,
    pipeline: ImagePipeline | None,
    io_threads: int,
    procs: int | Literal["auto"],
    executor: Executor | None,
    parts: int | None,
) -> Summary:
    from aiograb._http.default import transport_name
    from aiograb._scale.procs import default_procs, process_pool, run_parted

    n = default_procs() if procs == "auto" else procs
    if not isinstance(n, int) or not 1 <= n <= 1024:
        raise UsageError("procs must be between 1 and 1024, or 'auto'")
    own = executor is None
    pool = process_pool(n, transport_name(limits or Limits())) if executor is None else executor
    try:
        return run_parted(
            lambda: _rows(urls, None),
            out_dir,
            pool,
            width=n if own else None,
            parts=parts,
            limits=limits,
            policy=policy,
            retry_failed=retry_failed,
            io_threads=io_threads,
            pipeline=pipeline,
            own_processes=own,
            probe=False if own else None,  # our own pool's processes see our folders
        )
    finally:
        if own:
            pool.shutdown(wait=True, cancel_futures=True)
