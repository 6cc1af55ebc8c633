"""``download``: the one-call library entry point over the engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aiograb._core.config import Limits, RequestPolicy
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
    """
    rows: Iterable[InputRow]
    if isinstance(urls, str | os.PathLike):
        checked = parse_verify_hash(verify_hash)
        rows = open_source(urls, extra_columns=[checked[0]] if checked else [])
    elif isinstance(urls, RowSource):  # keeps its line accounting for the summary
        rows = urls
    else:
        rows = (
            u if isinstance(u, InputRow) else InputRow(line=i, url=str(u).strip())
            for i, u in enumerate(urls, 1)
        )
    return await run_get(
        rows,
        Path(out_dir),
        limits=limits,
        policy=policy,
        retry_failed=retry_failed,
        stop=stop,
        on_progress=on_progress,
        pipeline=pipeline,
        transport=transport,
        clock=clock,
        on_outcome=on_outcome,
        verify_hash=parse_verify_hash(verify_hash),
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
    transport: Transport | None = None,
) -> Summary:
    """Blocking ``download_async`` on a fresh event loop (uvloop when installed).

    Ctrl-C stops the run cleanly: the journal and manifest are written and
    the returned ``Summary`` has ``interrupted=True``.

    >>> summary = aiograb.download(["https://example.org/a.jpg"], "images/")
    >>> summary.counts
    {'ok': 1}
    """

    return run_stoppable(
        lambda stop: download_async(
            urls,
            out_dir,
            limits=limits,
            policy=policy,
            retry_failed=retry_failed,
            stop=stop,
            pipeline=pipeline,
            transport=transport,
        )
    )
