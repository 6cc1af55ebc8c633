"""The crawl frontier's policy: caps, depth, what a document's discoveries become.

Pages, images, stylesheets and sitemaps are all rows of the journal (``kind``,
``depth``, ``found_on``), so the frontier is the set of pending rows and dedup
is the journal's unique key: memory does not grow with the site. A page's
outcome, the rows it discovered and its edges are committed in one
transaction, so a kill at any moment loses no part of the frontier and no
committed page is fetched again. This module decides; the SQL is
``aiograb._store`` (``Journal`` and ``CrawlTables``).

A link that is not followed still becomes a row, ``skipped`` with its class
(``out_of_scope``, ``nofollow``, ``depth_limit``, ``robots_disallowed`` ...),
so a crawl can be audited; a bad URL becomes a ``failed`` row
(``invalid_url``, ``unsupported_scheme``, ``url_too_long``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from aiograb._core.urls import host_of
from aiograb._store.crawl import CrawlTables, Edge
from aiograb._store.journal import NewRow

__all__ = ["Discovery", "Frontier", "data_key"]


@dataclass(slots=True)
class Discovery:
    """What one fetched document adds: rows (``NewRow``), and its edges (target, kind, alt).

    A page row to follow carries its host in ``hosts`` (counted against the caps).
    """

    rows: list[NewRow] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    page_hosts: dict[str, str] = field(default_factory=dict)  # key -> host, for pages
    skip: tuple[str, str] | None = None  # the document itself ends skipped (e.g. not_html)

    def add_page(self, row: NewRow, host: str) -> None:
        self.rows.append(row)
        self.page_hosts[row.key] = host


class Frontier:
    """Caps and depth over the crawl's tables. Single-threaded, like the journal."""

    def __init__(self, tables: CrawlTables, *, max_pages: int = 0, max_pages_per_host: int = 0):
        self._tables = tables
        self._journal = tables.journal
        self._max_pages = max_pages
        self._max_per_host = max_pages_per_host
        self._host_pages: dict[str, int] = {}
        self.pages = tables.pages_admitted()  # pages admitted over the whole crawl

    def host_pages(self, host: str) -> int:
        n = self._host_pages.get(host)
        if n is None:
            n = self._host_pages[host] = self._tables.host_pages(host)
        return n

    # -- writing -----------------------------------------------------------------------

    def writer(self, page_id: int, discovery: Discovery) -> _Writer:
        """A callable for ``RunState.record(commit_with=...)``: the page's discoveries,
        written in the transaction that commits the page's outcome; ``writer.added``
        is the number of pending rows it added once it has run."""
        return _Writer(self, page_id, discovery)

    def _write(self, page_id: int, d: Discovery) -> int:
        """Write a document's discoveries as if row by row (INSERT OR IGNORE in order, a
        URL met shallower than before let in again, the caps counted as pages are
        admitted), but with one query for the keys already known and one statement
        per kind of change: a page with 100k links must not hold the loop for seconds."""
        known = self._journal.known(r.key for r in d.rows)
        batch: dict[str, NewRow] = {}  # key -> row to insert, in order
        readmit: list[tuple[str, int]] = []
        counts: dict[str, int] = {}
        for r in d.rows:
            host = d.page_hosts.get(r.key)
            pending = r.final_state == "pending"
            if host is not None and pending and (over := self._over_cap(host)):
                r, host, pending = (
                    replace(r, state="skipped", error="page_limit", message=over),
                    None,
                    False,
                )
            if pending and r.kind == "page" and _too_deep_before(r, known, batch):
                # A URL first met too deep may now be met shallower: let it in again.
                if batch.pop(r.key, None) is None:
                    readmit.append((r.key, r.depth or 0))
                known.pop(r.key, None)
            if r.key in known or r.key in batch:
                continue
            batch[r.key] = r
            if pending and host is not None:
                self._host_pages[host] = self.host_pages(host) + 1
                self.pages += 1
                counts[host] = counts.get(host, 0) + 1
        self._tables.readmit_many(readmit)
        self._journal.insert_many(batch.values(), found_on=page_id or None)
        self._tables.count_pages(counts)
        self._tables.add_edges(page_id, d.edges)
        if d.skip is not None:
            self._tables.skip(page_id, *d.skip)
        return sum(r.final_state == "pending" for r in batch.values())

    def _over_cap(self, host: str) -> str | None:
        if self._max_pages and self.pages >= self._max_pages:
            return f"max_pages {self._max_pages} reached"
        if self._max_per_host and self.host_pages(host) >= self._max_per_host:
            return f"max_pages_per_host {self._max_per_host} reached for {host}"
        return None

    def _count_page(self, host: str) -> None:
        self._host_pages[host] = self.host_pages(host) + 1
        self.pages += 1
        self._tables.count_page(host)

    def add_seeds(self, rows: Iterable[tuple[NewRow, str | None]], chunk: int = 2000) -> int:
        """Insert seed rows (depth 0, with their host) in chunked transactions; returns
        how many were new."""
        added = 0
        batch = Discovery()
        for row, host in rows:
            if host is None:
                batch.rows.append(row)
            else:
                batch.add_page(row, host)
            if len(batch.rows) >= chunk:
                added += self._commit(batch)
                batch = Discovery()
        return added + self._commit(batch)

    def _commit(self, discovery: Discovery) -> int:
        with self._journal.transaction():
            return self._write(0, discovery)

    def reopen_depth(self, max_depth: int) -> int:
        """Let in again the links an earlier run left as too deep, now that the depth
        allows them (a crawl resumed with a larger ``max_depth``). Returns how many."""
        rows = self._tables.too_deep(max_depth)
        if rows:
            with self._journal.transaction():
                for row_id, key in rows:
                    self._tables.reopen(row_id)
                    self._count_page(host_of(key))
        return len(rows)

    def skip(self, row_id: int, code: str, message: str) -> None:
        """Mark a row skipped now (e.g. disallowed by robots.txt when its turn came)."""
        self._tables.skip(row_id, code, message)


class _Writer:
    __slots__ = ("_d", "_frontier", "_page", "added")

    def __init__(self, frontier: Frontier, page_id: int, discovery: Discovery) -> None:
        self._frontier, self._page, self._d = frontier, page_id, discovery
        self.added = 0

    def __call__(self) -> None:
        self.added = self._frontier._write(self._page, self._d)


def _too_deep_before(
    row: NewRow, known: dict[str, tuple[str, str | None, int | None]], batch: dict[str, NewRow]
) -> bool:
    """Whether ``row``'s key was last left ``skipped`` as ``depth_limit`` deeper than it."""
    if (earlier := batch.get(row.key)) is not None:
        state, error, depth = earlier.final_state, earlier.error, earlier.depth
    elif (seen := known.get(row.key)) is not None:
        state, error, depth = seen
    else:
        return False
    return state == "skipped" and error == "depth_limit" and (depth or 0) > (row.depth or 0)


def data_key(uri: str) -> str:
    """The journal key of a data: URI (the URI itself can be megabytes long)."""
    return "data:sha256:" + hashlib.sha256(uri.encode("utf-8", "surrogatepass")).hexdigest()
