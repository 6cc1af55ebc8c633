"""The crawl's row handler: robots, then fetch-parse-discover for documents, download for images.

::

    journal pending rows (id order) ──> Engine (the one worker loop) ──> CrawlHandler.handle
        page / css / sitemap row: robots ─> fetch into memory ─> extract ─> scope
            (a body over parse_off_loop_bytes is extracted in a worker process: parsework.py)
            └─> one transaction: the document's outcome + new rows + its edges
        image row: robots ─> DownloadHandler (as in get, through the image stage if any)

The frontier is the journal: discovered URLs are rows with higher ids, which
``rows()``'s keyset scan reaches naturally. It ends when no row is pending
*and* no document that could still add rows is in flight; until then it waits
for the next document to finish. Pages and images share one event loop, one
connection pool and the per-host slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping

from yarl import URL

from aiograb._core.clock import Clock
from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.errors import ContentError, InvalidURL, NotAccepted, RequestError, TooLarge
from aiograb._core.models import Outcome, Request, Stored
from aiograb._core.stats import Progress
from aiograb._core.urls import host_of, url_key, url_of
from aiograb._crawl.datauri import save_data_uri
from aiograb._crawl.extract import Found
from aiograb._crawl.frontier import Discovery, Frontier, data_key
from aiograb._crawl.options import CrawlOptions
from aiograb._crawl.parsework import Parsed, ParseFailure, ParsePool
from aiograb._crawl.robots import MAX_ROBOTS_BYTES, Robots
from aiograb._crawl.scope import Scope, Verdict, normalize_url
from aiograb._fetch.fetcher import Fetcher
from aiograb._fetch.politeness import Politeness
from aiograb._get.download import DownloadHandler
from aiograb._get.runstate import RunState
from aiograb._http.base import Transport
from aiograb._store.journal import NewRow, PendingRow
from aiograb._store.sinks import MemorySink

__all__ = ["EXPANDING", "CrawlHandler", "Fetchers"]

EXPANDING = frozenset({"page", "css", "sitemap"})  # rows whose bodies add rows
_ACCEPT = {
    "page": "text/html,application/xhtml+xml",
    "css": "text/css,text/plain",
    "sitemap": "application/xml,text/xml,application/gzip,application/x-gzip,text/plain",
}
_CHUNK = 2000  # found URLs classified between two turns of the loop (~40 ms)
_NOT_WHAT = {"page": "not_html", "css": "not_css", "sitemap": "not_sitemap"}


class Fetchers:
    """One fetcher per kind of row, sharing the transport and the per-host slots."""

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


class CrawlHandler:
    """Handles crawl rows; images are handed to a composed ``DownloadHandler``."""

    def __init__(
        self,
        state: RunState,
        fetchers: Fetchers,
        frontier: Frontier,
        robots: Robots,
        scope: Scope,
        options: CrawlOptions,
        images: DownloadHandler,
        parser: ParsePool,
    ) -> None:
        self.state = state
        self.fetchers = fetchers
        self.frontier = frontier
        self.robots = robots
        self.scope = scope
        self.options = options
        self.images = images
        self.parser = parser
        self._open = 0  # rows that can add rows: handed out, not finished
        self._changed = asyncio.Event()

    # -- the row source: the journal's pending rows, until nothing can add more --------

    async def rows(self) -> AsyncIterator[PendingRow]:
        cursor, n = 0, 0
        while True:
            for row in self.state.pending(after=cursor):
                cursor = row.id
                if row.kind in EXPANDING:
                    self._open += 1
                yield row
                n += 1
                if n % 1000 == 0:
                    await asyncio.sleep(0)
            if self._open == 0:
                return
            self._changed.clear()
            await self._changed.wait()

    def more_rows(self) -> None:
        """Rows were added outside a document's transaction (sitemaps from robots.txt)."""
        self._changed.set()

    # -- one row -----------------------------------------------------------------------

    async def handle(self, row: PendingRow) -> None:
        try:
            url = url_of(row.key)  # checked and normalised when it was found
            verdict = await self.robots.verdict(url)
            if verdict is not None:
                self.frontier.skip(row.id, *verdict)
                self.state.progress.total -= 1
            elif row.kind in EXPANDING:
                await self._expand(row, url)
            else:
                await self.images.handle(row)
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
            message = f"redirected to {landed}, outside scope {self.options.scope!r}"
            found.skip = ("out_of_scope", message)
            outcome.stored = None
        elif outcome.ok and outcome.stored is not None:
            body = outcome.stored.body or b""
            outcome.stored = Stored(size=outcome.stored.size, sha256=outcome.stored.sha256)
            try:  # a big body is parsed in a worker process, with a time limit
                parsed = await self.parser.parse(
                    row.kind, body, outcome.headers.get("Content-Type")
                )
            except ParseFailure as exc:  # a document no parser copes with is a row, not a crash
                outcome.ok, outcome.stored = False, None
                outcome.error = ContentError(str(exc), url=row.url, code=exc.code)
            else:
                found = await self._discover(row, outcome, parsed)
            links = sum(1 for _t, kind, _a in found.edges if kind in ("page", "sitemap"))
            outcome.info = {"links": links, "images": len(found.edges) - links}
        elif isinstance(outcome.error, TooLarge):
            limit = self.options.max_page_bytes
            outcome.error = TooLarge(f"{row.kind} larger than max_page_bytes {limit}", url=row.url)
        elif isinstance(outcome.error, NotAccepted):
            ctype = outcome.headers.get("Content-Type", "none")
            found.skip = (_NOT_WHAT[row.kind], f"not followed: Content-Type {ctype}")
        writer = self.frontier.writer(row.id, found)
        self.state.record(row, outcome, key, commit_with=writer)
        if found.skip is not None:
            _uncount(self.state.progress, outcome)
        self.state.progress.total += writer.added

    # -- discovery ---------------------------------------------------------------------

    async def _discover(self, row: PendingRow, outcome: Outcome, parsed: Parsed) -> Discovery:
        """Classify what a document holds. One page must not flood the frontier: past
        --max-links-per-page the rest is counted, not added, and becomes one links_cut
        row; a long list gives the loop a turn every ``_CHUNK`` URLs."""
        depth = row.depth or 0
        base = outcome.final_url or row.key  # normal forms: resolve links against them as they are
        if parsed.base:
            with contextlib.suppress(InvalidURL):
                base = normalize_url(parsed.base, base)
        if row.kind == "sitemap" and not parsed.is_index:
            # A sitemap index's sitemaps are one level deeper than it (an endless chain
            # of indexes stops at --depth); the pages a sitemap lists count as seeds.
            depth = -1
        d, cut, cap = Discovery(), 0, self.options.max_links_per_page
        for n, f in enumerate(parsed.found, 1):
            if len(d.edges) >= cap:
                cut += 1
            else:
                self._classify(f, base, depth, row.url, d)
            if n % _CHUNK == 0:
                await asyncio.sleep(0)
        if cut:
            why = f"{cut:,} more links than --max-links-per-page {cap:,}: not followed"
            key, below = f"links_cut:{row.key}", (row.depth or 0) + 1
            d.rows.append(_skipped(key, row.key, row.kind, below, "links_cut", why))
        return d

    def _classify(self, f: Found, base: str, depth: int, page_url: str, d: Discovery) -> None:
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
            d.rows.append(_skipped(f"{exc.code}:{text}", text, f.kind, depth + 1, exc.code, exc))
            return
        d.edges.append((key, f.kind, f.alt))
        if len(key) > self.options.max_url_length:
            msg = f"URL longer than max_url_length {self.options.max_url_length}"
            long_key = "url_too_long:" + data_key(key).rsplit(":", 1)[1]
            d.rows.append(_skipped(long_key, key[:300], f.kind, depth + 1, "url_too_long", msg))
            return
        if f.kind == "image":
            if not self.options.pages_only:
                extra = {"page": page_url, "alt": f.alt}
                if (skip := self.scope.image(key)) is not None:  # not fetched: no robots.txt
                    why = (skip.code, skip.message)
                    d.rows.append(_skipped(key, key, "image", depth + 1, *why, extra))
                else:
                    d.rows.append(NewRow(key, key, kind="image", depth=depth + 1, extra=extra))
            return
        host = host_of(key)
        if f.kind == "css":
            self._stylesheet(key, host, depth + 1, page_url, d)
            return
        verdict = self.scope.follow(key, host, max(depth + 1, 0), f.nofollow)
        if verdict is not None:
            d.rows.append(_skipped(key, key, f.kind, depth + 1, verdict.code, verdict.message))
        else:  # pages and sitemaps count against --max-pages and --max-pages-per-host
            d.add_page(NewRow(key, key, kind=f.kind, depth=max(depth + 1, 0)), host)

    def _stylesheet(self, key: str, host: str, depth: int, page_url: str, d: Discovery) -> None:
        """A stylesheet is a resource of its page, like an image (image scope and
        patterns), fetched for the deepest pages too; an ``@import`` is one level
        deeper, so an endless chain stops at --depth, and each counts as a page
        against the caps."""
        extra = {"page": page_url}
        verdict = self.scope.image(key)
        if verdict is None and depth > self.options.max_depth + 1:
            verdict = Verdict(
                "depth_limit", f"@import deeper than --depth {self.options.max_depth}"
            )
        if verdict is not None:
            d.rows.append(_skipped(key, key, "css", depth, verdict.code, verdict.message, extra))
        else:
            d.add_page(NewRow(key, key, kind="css", depth=depth, extra=extra), host)

    def _data_uri(self, f: Found, page_url: str, d: Discovery) -> None:
        key = data_key(f.url)
        shown = f.url[:60] + ("…" if len(f.url) > 60 else "")
        d.edges.append((key, "image", f.alt))
        if self.state.journal.has_key(key):
            return
        extra = {"page": page_url, "alt": f.alt}
        try:
            saved = save_data_uri(f.url, key, self.state.sink, self.fetchers.max_bytes)
        except RequestError as exc:
            d.rows.append(_skipped(key, shown, "image", 0, exc.code, exc, extra))
            return
        d.rows.append(
            NewRow(key, shown, kind="image", depth=0, state="ok", extra=extra, stored=saved)
        )
        self.state.progress.ok += 1
        self.state.progress.bytes += saved.size


def _skipped(
    key: str,
    url: str,
    kind: str,
    depth: int,
    code: str,
    why: object,
    extra: Mapping[str, object] | None = None,
) -> NewRow:
    return NewRow(
        key, url, kind=kind, depth=depth, state="skipped", error=code, message=str(why), extra=extra
    )


def _uncount(progress: Progress, outcome: Outcome) -> None:
    """A document that turned out not to be HTML/CSS/XML is skipped, not failed."""
    progress.failed -= 1
    code = outcome.error_code or "unknown"
    progress.errors[code] -= 1
    if progress.errors[code] <= 0:
        del progress.errors[code]
