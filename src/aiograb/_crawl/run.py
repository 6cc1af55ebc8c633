"""``run_crawl``: a crawl over one output folder — the engine driving the crawl handler."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiograb._core.clock import Clock, LoopClock
from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.errors import InvalidURL
from aiograb._core.fdlimit import fit_limits
from aiograb._core.stats import Progress, Summary
from aiograb._core.urls import host_of
from aiograb._crawl.frontier import Frontier
from aiograb._crawl.handler import CrawlHandler, Fetchers
from aiograb._crawl.options import CrawlOptions
from aiograb._crawl.parsework import ParseOptions, ParsePool
from aiograb._crawl.robots import Robots
from aiograb._crawl.scope import Scope, normalize_url
from aiograb._get.download import DownloadHandler
from aiograb._get.engine import Engine, Stage, StageFactory
from aiograb._get.runstate import RunState
from aiograb._http.addresses import address_policy
from aiograb._http.base import Transport
from aiograb._http.default import make_transport
from aiograb._store.crawl import CrawlTables
from aiograb._store.graph import GRAPH_NAMES, write_graph
from aiograb._store.journal import NewRow

__all__ = ["CrawlSummary", "run_crawl", "seed_rows"]


@dataclass(frozen=True, slots=True)
class CrawlSummary:
    """The result of a crawl: the ``get`` summary plus what the crawl saw, by kind."""

    summary: Summary
    kinds: dict[str, dict[str, int]]  # kind -> state -> rows, over the whole journal
    graph: Path
    robots: str  # "obeyed" or "ignored" (obey_robots=False)
    robots_fetched: int
    graph_written: bool = True  # False: the storage refused it (the summary's error says so)

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code


def seed_rows(seeds: Iterable[str], scope: Scope) -> Iterator[tuple[NewRow, str | None]]:
    """Seeds as depth-0 page rows with their host; a bad seed is a failed row keyed by its
    position."""
    for n, text in enumerate(seeds, 1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            key = normalize_url(text)
        except InvalidURL as exc:
            row = NewRow(
                f"line:{n}", text[:300], kind="page", depth=0, error=exc.code, message=str(exc)
            )
            yield row, None
            continue
        host = host_of(key)
        scope.add_seed_host(host)
        yield NewRow(key, key, kind="page", depth=0), host


def _sitemap_rows(urls: list[str], scope: Scope) -> Iterator[tuple[NewRow, str | None]]:
    for u in urls:
        try:
            key = normalize_url(u)
        except InvalidURL:
            continue
        if scope.in_scope(host_of(key)):
            yield NewRow(key, key, kind="sitemap", depth=0), None


async def run_crawl(
    seeds: Iterable[str],
    out_dir: str | Path,
    *,
    options: CrawlOptions | None = None,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.2,
    pipeline: StageFactory | None = None,
) -> CrawlSummary:
    """Crawl from ``seeds`` into ``out_dir``; resume what a journal there holds.

    With a ``pipeline`` (the image pipeline), every image found is verified,
    transformed and stored by it (files, WebDataset or Parquet shards), as in ``get``.
    """
    options = options or CrawlOptions()
    limits = fit_limits(limits or Limits())
    policy = policy or RequestPolicy()
    state = RunState((), out_dir, on_progress=on_progress)
    stop = stop or asyncio.Event()
    state.on_storage_error = stop.set  # a full disk ends the run cleanly
    tables = CrawlTables(state.journal)
    frontier = Frontier(
        tables, max_pages=options.max_pages, max_pages_per_host=options.max_pages_per_host
    )
    scope = Scope(options)
    state.progress.total += frontier.add_seeds(seed_rows(seeds, scope))
    state.progress.total += frontier.reopen_depth(options.max_depth)
    clock = clock or LoopClock()
    own_transport = transport is None
    if transport is None:
        guard = None if options.allow_private else address_policy(scope.seed_hosts)
        transport = make_transport(limits, network=policy.network, address_policy=guard)
    fetchers = Fetchers(transport, limits, policy, clock, options.max_page_bytes)
    handler: CrawlHandler | None = None

    def add_sitemaps(urls: list[str]) -> None:
        state.progress.total += frontier.add_seeds(_sitemap_rows(urls, scope))
        if handler is not None:
            handler.more_rows()

    robots = Robots(
        fetchers.robots,
        tables,
        fetchers.politeness,
        policy.user_agent_token,  # robots.txt groups, like X-Robots-Tag, by the product token
        obey=options.obey_robots,
        on_sitemaps=add_sitemaps if options.sitemaps else None,
    )
    interrupted = True
    try:
        async with contextlib.AsyncExitStack() as stack:
            stage: Stage | None = None
            if pipeline is not None:
                stage = await stack.enter_async_context(pipeline.open(state))
            images = DownloadHandler(state, fetchers.image, stage)
            parser = ParsePool(
                ParseOptions(
                    all_sizes=options.all_sizes,
                    follow_nofollow=options.follow_nofollow,
                    css=options.css,
                ),
                off_loop=options.parse_off_loop_bytes,
                timeout=options.parse_timeout,
            )
            stack.callback(parser.close)  # its worker processes, if a big body started them
            handler = CrawlHandler(
                state, fetchers, frontier, robots, scope, options, images, parser
            )
            engine = Engine(
                handler,
                fetchers.politeness,
                workers=limits.concurrency,
                tick=state.tick,
                interval=progress_interval,
            )
            interrupted = await engine.run(stop)
    finally:
        state.flush()
        graph = state.out / GRAPH_NAMES[options.graph_format]
        graph_written = False
        try:
            if not state.folder_lost:  # its pages would name files that are gone
                write_graph(tables, graph, options.graph_format)
                graph_written = True
        except OSError as exc:  # a full disk, a read-only folder: one line, exit 74
            state.write_refused(exc, f"The link graph {graph}")
        kinds = tables.kind_counts()
        summary = state.close(interrupted=interrupted, retries=fetchers.retries)
        if own_transport:
            await transport.aclose()
    robots_said = "obeyed" if options.obey_robots else "ignored"
    return CrawlSummary(summary, kinds, graph, robots_said, robots.fetched, graph_written)
