"""``crawl``: the one-call library entry point of the crawler."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.loop import run_stoppable
from aiograb._core.stats import Progress
from aiograb._crawl.options import CrawlOptions
from aiograb._crawl.run import CrawlSummary, run_crawl

if TYPE_CHECKING:
    from aiograb._core.clock import Clock
    from aiograb._http.base import Transport
    from aiograb._images.pipeline import ImagePipeline

__all__ = ["crawl", "crawl_async"]


async def crawl_async(
    seeds: Iterable[str] | str,
    out_dir: str | os.PathLike[str],
    *,
    options: CrawlOptions | None = None,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    pipeline: ImagePipeline | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
) -> CrawlSummary:
    """Crawl from ``seeds`` (a URL or an iterable of URLs) and save every image found.

    Resumable: run it again with the same ``out_dir`` and the crawl goes on where
    it stopped. Per-URL problems are manifest rows, never exceptions. With a
    ``pipeline`` (``ImagePipeline``) every image found is verified, transformed
    and stored by it, as in ``download``. ``transport`` and ``clock`` replace the
    HTTP client and time (tests: ``aiograb.testing.MockTransport``, ``FakeClock``).
    """
    return await run_crawl(
        [seeds] if isinstance(seeds, str) else seeds,
        Path(out_dir),
        options=options,
        limits=limits,
        policy=policy,
        stop=stop,
        on_progress=on_progress,
        pipeline=pipeline,
        transport=transport,
        clock=clock,
    )


def crawl(
    seeds: Iterable[str] | str,
    out_dir: str | os.PathLike[str],
    *,
    options: CrawlOptions | None = None,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    pipeline: ImagePipeline | None = None,
) -> CrawlSummary:
    """Blocking ``crawl_async`` on a fresh event loop; Ctrl-C stops it cleanly (resumable).

    >>> result = aiograb.crawl("https://example.org/gallery/", "out/",
    ...                        options=aiograb.CrawlOptions(max_depth=2))
    >>> result.kinds["image"]
    {'ok': 120}
    """

    return run_stoppable(
        lambda stop: crawl_async(
            seeds,
            out_dir,
            options=options,
            limits=limits,
            policy=policy,
            stop=stop,
            pipeline=pipeline,
        ),
        names=("crawl", "crawl_async"),
    )
