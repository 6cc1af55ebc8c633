"""``aiograb crawl``: seed pages in, every image they show out, on the ``get`` engine.

::

    seeds ──> journal (kind=page, depth 0)
    journal pending rows (id order) ──> bounded queue ──> N workers (TaskGroup)
        page / css / sitemap row: robots ─> fetch into memory ─> extract ─> scope
            └─> one transaction: the page's outcome + new rows + its edges
        image row: robots ─> fetch ─> FileSink (as in get)

The frontier is the journal: discovered URLs are rows with higher ids, which
the producer's keyset scan reaches naturally. The run ends when no row is
pending *and* no page that could still add rows is in flight; until then the
producer waits for the next page to finish. Pages and images share one event
loop, one connection pool and the per-host slots.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from aiograb._core.clock import Clock, LoopClock
from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.content import AcceptPolicy
from aiograb._core.errors import ContentError, InvalidURL, NotAccepted, RequestError, TooLarge
from aiograb._core.models import Outcome, Request, Stored
from aiograb._core.stats import Progress, Summary
from aiograb._core.urls import url_key
from aiograb._crawl.extract import Found, extract_css, extract_html, extract_sitemap
from aiograb._crawl.frontier import Discovery, Frontier, LinkRow, data_key
from aiograb._crawl.options import CrawlOptions
from aiograb._crawl.robots import MAX_ROBOTS_BYTES, Robots
from aiograb._crawl.scope import Scope, normalize_url
from aiograb._fetch.fetcher import Fetcher
from aiograb._fetch.politeness import Politeness
from aiograb._get.engine import Processor, Stage, _Run
from aiograb._get.runstate import RunState
from aiograb._http.addresses import address_policy
from aiograb._http.aiohttp_transport import AiohttpTransport
from aiograb._http.base import Transport
from aiograb._store.graph import GRAPH_NAMES, write_graph
from aiograb._store.journal import PendingRow
from aiograb._store.sinks import MemorySink

__all__ = ["CrawlSummary", "run_crawl"]

EXPANDING = frozenset({"page", "css", "sitemap"})  # rows whose bodies add rows
_ACCEPT = {
    "page": "text/html,application/xhtml+xml",
    "css": "text/css,text/plain",
    "sitemap": "application/xml,text/xml,application/gzip,application/x-gzip,text/plain",
}
_NOT_WHAT = {"page": "not_html", "css": "not_css", "sitemap": "not_sitemap"}


@dataclass(frozen=True, slots=True)
class CrawlSummary:
    """The result of a crawl: the ``get`` summary plus what the crawl saw, by kind."""

    summary: Summary
    kinds: dict[str, dict[str, int]]  # kind -> state -> rows, over the whole journal
    graph: Path
    robots: str  # "obeyed" or "ignored (--ignore-robots)"
    robots_fetched: int

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code


class _Fetchers:
    def __init__(
        self,
        transport: Transport,
        limits: Limits,
        policy: RequestPolicy,
        clock: Clock,
        max_page: int,
    ) -> None:
        self.politeness = Politeness(limits, clock)
        self.max_bytes = policy.max_bytes
        self.image = Fetcher(transport, self.politeness, policy, clock)
        by_kind = {}
        # X-Robots-Tag guards what is kept (images), not the pages and robots.txt read.
        read = dataclasses.replace(policy, disallowed_header_directives=())
        for kind, accept in _ACCEPT.items():
            p = dataclasses.replace(read, accept=accept, max_bytes=max_page)
            by_kind[kind] = Fetcher(transport, self.politeness, p, clock)
        self.by_kind = by_kind
        robots = dataclasses.replace(read, accept="any", max_bytes=MAX_ROBOTS_BYTES)
        self.robots = Fetcher(transport, self.politeness, robots, clock)

    @property
    def retries(self) -> int:
        every = [self.image, self.robots, *self.by_kind.values()]
        return sum(f.retries for f in every)


class _Crawl(_Run):
    def __init__(
        self,
        state: RunState,
        fetchers: _Fetchers,
        frontier: Frontier,
        scope: Scope,
        options: CrawlOptions,
        limits: Limits,
        user_agent: str,
        progress_interval: float,
        stage: Stage | None = None,
    ) -> None:
        # Images go through the get engine's path: the image pipeline's stage when given.
        super().__init__(state, fetchers.image, limits, progress_interval, stage)
        self.fetchers = fetchers
        self.frontier = frontier
        self.scope = scope
        self.options = options
        self.robots = Robots(
            fetchers.robots,
            frontier,
            fetchers.politeness,
            user_agent,
            obey=options.obey_robots,
            on_sitemaps=self._add_sitemaps if options.sitemaps else None,
        )
        self._open = 0  # rows that can add rows: handed out, not finished
        self._changed = asyncio.Event()
        self._data_accept = AcceptPolicy("image")

    # -- the producer: the journal's pending rows, until nothing can add more ----------

    async def _produce(self, queue: asyncio.Queue[PendingRow | None]) -> None:
        cursor, n = 0, 0
        while True:
            for row in self.state.pending(after=cursor):
                cursor = row.id
                if row.kind in EXPANDING:
                    self._open += 1
                await queue.put(row)
                n += 1
                if n % 1000 == 0:
                    await asyncio.sleep(0)
            if self._open == 0:
                break
            self._changed.clear()
            await self._changed.wait()
        for _ in range(self._workers):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[PendingRow | None]) -> None:
        parking, politeness = self._parking, self.fetcher.politeness
        while True:
            # Parked rows are served before waiting on an empty queue: the producer may
            # be waiting for exactly these pages to finish.
            if queue.empty() and (item := parking.pop_any()) is not None:
                await self._fetch_host(*item)
                continue
            row = await queue.get()
            if row is None:
                break
            host = URL(row.key, encoded=True).host or ""
            if not politeness.available(host) and parking.park(host, row):
                continue
            await self._fetch_host(host, row)
        while (item := parking.pop_any()) is not None:
            await self._fetch_host(*item)

    # -- one row -----------------------------------------------------------------------

    async def _process(self, row: PendingRow) -> None:
        try:
            url = URL(row.key, encoded=True)  # checked and normalised when it was found
            verdict = await self.robots.verdict(url)
            if verdict is not None:
                self.frontier.skip(row.id, *verdict)
                self.state.progress.total -= 1
            elif row.kind in EXPANDING:
                await self._expand(row, url)
            else:
                await super()._process(row)
        finally:
            if row.kind in EXPANDING:
                self._open -= 1
                self._changed.set()

    async def _expand(self, row: PendingRow, url: URL) -> None:
        key = url_key(row.key)
        fetcher = self.fetchers.by_kind[row.kind]
        sink = MemorySink(hash_body=True)
        outcome = await fetcher.fetch(Request(row.url), sink, key, url=url)
        found = Discovery()
        landed = URL(outcome.final_url, encoded=True).host if outcome.final_url else None
        if outcome.ok and row.kind == "page" and landed and not self.scope.in_scope(landed):
            # A redirect carried the page out of scope: it was fetched, but is not parsed.
            message = f"redirected to {landed}, outside --scope {self.options.scope}"
            found.skip = ("out_of_scope", message)
            outcome.stored = None
        elif outcome.ok and outcome.stored is not None:
            body = outcome.stored.body or b""
            outcome.stored = Stored(size=outcome.stored.size, sha256=outcome.stored.sha256)
            try:
                found = self._discover(row, outcome, body)
            except Exception as exc:  # a document no parser copes with is a row, not a crash
                outcome.ok, outcome.stored = False, None
                outcome.error = ContentError(f"cannot parse: {exc!r}"[:300], code="parse_error")
            links = sum(1 for _t, kind, _a in found.edges if kind in ("page", "sitemap"))
            outcome.info = {"links": links, "images": len(found.edges) - links}
        elif isinstance(outcome.error, TooLarge):
            limit = self.options.max_page_bytes
            outcome.error = TooLarge(
                f"{row.kind} larger than --max-page-bytes {limit}", url=row.url
            )
        elif isinstance(outcome.error, NotAccepted):
            ctype = outcome.headers.get("Content-Type", "none")
            found.skip = (_NOT_WHAT[row.kind], f"not followed: Content-Type {ctype}")
        writer = self.frontier.writer(row.id, found)
        self.state.record(row, outcome, key, commit_with=writer)
        if found.skip is not None:
            _uncount(self.state.progress, outcome)
        self.state.progress.total += writer.added

    # -- discovery ---------------------------------------------------------------------

    def _discover(self, row: PendingRow, outcome: Outcome, body: bytes) -> Discovery:
        depth = row.depth or 0
        base = URL(outcome.final_url or row.key)
        d = Discovery()
        if row.kind == "page":
            page = extract_html(
                body,
                outcome.headers.get("Content-Type"),
                all_sizes=self.options.all_sizes,
                follow_nofollow=self.options.follow_nofollow,
                css=self.options.css,
            )
            if page.base:
                with contextlib.suppress(ValueError):
                    base = base.join(URL(page.base))
            for f in page.found:
                self._classify(f, base, depth, row.url, d)
        elif row.kind == "css":
            urls = extract_css(body.decode("utf-8", "replace"))
            for u in urls.images:
                self._classify(Found(u, "image"), base, depth, row.url, d)
            for u in urls.imports:
                self._classify(Found(u, "css"), base, depth, row.url, d)
        else:
            locs, is_index = extract_sitemap(body)
            kind = "sitemap" if is_index else "page"
            for u in locs:
                self._classify(Found(u, kind), base, -1, row.url, d)
        return d

    def _classify(self, f: Found, base: URL, depth: int, page_url: str, d: Discovery) -> None:
        """Turn one found URL into an edge and (usually) a row."""
        if f.kind == "data":
            if self.options.data_uris and not self.options.pages_only:
                self._data_uri(f, page_url, d)
            return
        try:
            key = normalize_url(f.url, base)
        except InvalidURL as exc:
            text = f.url.strip()[:300]
            d.edges.append((text, f.kind, f.alt))
            row = LinkRow(f"{exc.code}:{text}", text, f.kind, depth + 1, "skipped", exc.code)
            d.rows.append(dataclasses.replace(row, message=str(exc)))
            return
        d.edges.append((key, f.kind, f.alt))
        if len(key) > self.options.max_url_length:
            msg = f"URL longer than --max-url-length {self.options.max_url_length}"
            long_key = "url_too_long:" + data_key(key).rsplit(":", 1)[1]
            row = LinkRow(long_key, key[:300], f.kind, depth + 1, "skipped", "url_too_long")
            d.rows.append(dataclasses.replace(row, message=msg))
            return
        if f.kind == "image":
            if not self.options.pages_only:
                extra = {"page": page_url, "alt": f.alt}
                d.rows.append(LinkRow(key, key, "image", depth + 1, extra=extra))
            return
        host = URL(key, encoded=True).host or ""
        if f.kind == "css":
            d.rows.append(LinkRow(key, key, "css", depth + 1, extra={"page": page_url}))
            return
        verdict = self.scope.follow(key, host, max(depth + 1, 0), f.nofollow)
        if f.kind == "sitemap" and verdict is not None and verdict.code == "depth_limit":
            verdict = None
        if verdict is not None:
            row = LinkRow(key, key, f.kind, depth + 1, "skipped", verdict.code)
            d.rows.append(dataclasses.replace(row, message=verdict.message))
        else:
            page_host = host if f.kind == "page" else None
            d.rows.append(LinkRow(key, key, f.kind, max(depth + 1, 0), host=page_host))

    def _data_uri(self, f: Found, page_url: str, d: Discovery) -> None:
        key = data_key(f.url)
        shown = f.url[:60] + ("…" if len(f.url) > 60 else "")
        d.edges.append((key, "image", f.alt))
        journal_db = self.state.journal.db
        if journal_db.execute("SELECT 1 FROM items WHERE key=?", (key,)).fetchone():
            return
        extra = {"page": page_url, "alt": f.alt}
        try:
            body, declared = decode_data_uri(f.url)
            limit = self.fetchers.max_bytes
            if limit and len(body) > limit:
                raise NotAccepted(f"data: URI of {len(body)} bytes > --max-bytes", code="too_large")
            mime = self._data_accept.check_body(body[:32], declared, shown)
            writer = self.state.sink.open(url_key(key))
            writer.write(body)
            stored = writer.commit(mime)
        except RequestError as exc:
            d.rows.append(LinkRow(key, shown, "image", 0, "skipped", exc.code, str(exc), extra))
            return
        assert stored.path is not None
        saved = (stored.path, stored.size, stored.sha256, mime)
        d.rows.append(LinkRow(key, shown, "image", 0, "ok", extra=extra, stored=saved))
        self.state.progress.ok += 1
        self.state.progress.bytes += stored.size

    # -- sitemaps from robots.txt ------------------------------------------------------

    def _add_sitemaps(self, urls: list[str]) -> None:
        rows = []
        for u in urls:
            try:
                key = normalize_url(u)
            except InvalidURL:
                continue
            if self.scope.in_scope(URL(key, encoded=True).host or ""):
                rows.append(LinkRow(key, key, "sitemap", 0))
        self.state.progress.total += self.frontier.add_seeds(rows)
        self._changed.set()


def _uncount(progress: Progress, outcome: Outcome) -> None:
    """A document that turned out not to be HTML/CSS/XML is skipped, not failed."""
    progress.failed -= 1
    code = outcome.error_code or "unknown"
    progress.errors[code] -= 1
    if progress.errors[code] <= 0:
        del progress.errors[code]


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """The bytes and declared MIME type of a ``data:`` URI; ``InvalidURL`` if malformed."""
    header, comma, data = uri[5:].partition(",")
    if not comma:
        raise InvalidURL("data: URI without a comma", url=uri[:60], code="invalid_data_uri")
    params = [p.strip().lower() for p in header.split(";")]
    raw = urllib.parse.unquote_to_bytes(data)
    if "base64" in params[1:]:
        try:
            raw = base64.b64decode(b"".join(raw.split()), validate=True)
        except ValueError as exc:
            raise InvalidURL(
                f"data: URI is not valid base64: {exc}", url=uri[:60], code="invalid_data_uri"
            ) from exc
    return raw, params[0] or "text/plain"


def seed_rows(seeds: Iterable[str], scope: Scope) -> Iterable[LinkRow]:
    """Seeds as depth-0 page rows; a bad seed is a failed row keyed by its position."""
    for n, text in enumerate(seeds, 1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            key = normalize_url(text)
        except InvalidURL as exc:
            yield LinkRow(f"line:{n}", text[:300], "page", 0, "failed", exc.code, str(exc))
            continue
        host = URL(key, encoded=True).host or ""
        scope.add_seed_host(host)
        yield LinkRow(key, key, "page", 0, host=host)


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
    processor: Processor | None = None,
) -> CrawlSummary:
    """Crawl from ``seeds`` into ``out_dir``; resume what a journal there holds.

    With a ``processor`` (the image pipeline), every image found is verified,
    transformed and stored by it (files, WebDataset or Parquet shards), as in ``get``.
    """
    options = options or CrawlOptions()
    limits = limits or Limits()
    policy = policy or RequestPolicy()
    state = RunState((), out_dir, on_progress=on_progress)
    frontier = Frontier(
        state.journal, max_pages=options.max_pages, max_pages_per_host=options.max_pages_per_host
    )
    scope = Scope(options)
    state.progress.total += frontier.add_seeds(seed_rows(seeds, scope))
    state.progress.total += frontier.reopen_depth(options.max_depth)
    clock = clock or LoopClock()
    own_transport = transport is None
    if transport is None:
        guard = None if options.allow_private else address_policy(scope.seed_hosts)
        transport = AiohttpTransport(limits, address_policy=guard)
    fetchers = _Fetchers(transport, limits, policy, clock, options.max_page_bytes)
    interrupted = True
    try:
        async with contextlib.AsyncExitStack() as stack:
            stage = (
                None
                if processor is None
                else await stack.enter_async_context(processor.open(state))
            )
            run = _Crawl(
                state,
                fetchers,
                frontier,
                scope,
                options,
                limits,
                policy.user_agent,
                progress_interval,
                stage,
            )
            interrupted = await run.run(stop)
    finally:
        state.journal.flush()
        graph = state.out / GRAPH_NAMES[options.graph_format]
        write_graph(frontier, graph, options.graph_format)
        kinds = frontier.kind_counts()
        summary = state.close(interrupted=interrupted, retries=fetchers.retries)
        if own_transport:
            await transport.aclose()
    robots = "obeyed" if options.obey_robots else "ignored (--ignore-robots)"
    return CrawlSummary(summary, kinds, graph, robots, run.robots.fetched)
