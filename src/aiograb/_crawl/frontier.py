"""The crawl frontier, kept in the journal's SQLite file next to ``items``.

Pages, images, stylesheets and sitemaps are all rows of ``items`` (``kind``,
``depth``, ``found_on``), so the frontier is the set of pending rows and dedup
is the ``UNIQUE`` key: memory does not grow with the site. A page's outcome,
the rows it discovered and its edges (``crawl_links``) are committed in one
transaction, so a kill at any moment loses no part of the frontier and no
committed page is fetched again. Two small tables sit beside them:
``crawl_hosts`` (pages admitted per host, for the per-host cap) and
``crawl_robots`` (each origin's robots.txt, fetched once per crawl, resumes
included).

A link that is not followed still becomes a row, ``skipped`` with its class
(``out_of_scope``, ``nofollow``, ``depth_limit``, ``robots_disallowed`` ...),
so a crawl can be audited; a bad URL becomes a ``failed`` row
(``invalid_url``, ``unsupported_scheme``, ``url_too_long``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from aiograb._store.journal import Journal

__all__ = ["Discovery", "Frontier", "LinkRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crawl_links (
    page INTEGER NOT NULL,           -- items.id of the page (or stylesheet, sitemap)
    target TEXT NOT NULL,            -- the URL in normal form (items.key when it is a row)
    kind TEXT NOT NULL,              -- page | image | css | sitemap | data
    alt TEXT
);
CREATE INDEX IF NOT EXISTS crawl_links_page ON crawl_links(page);
CREATE TABLE IF NOT EXISTS crawl_hosts (host TEXT PRIMARY KEY, pages INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS crawl_robots (
    origin TEXT PRIMARY KEY,         -- scheme://host:port
    status INTEGER NOT NULL,         -- HTTP status, 0 when unreachable
    body TEXT
);
"""

_INSERT = (
    "INSERT OR IGNORE INTO items (key, url, state, error, message, extra, kind, depth, found_on)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A row to add: ``state`` pending (to fetch), skipped or failed (with its class)."""

    key: str
    url: str
    kind: str
    depth: int
    state: str = "pending"
    error: str | None = None
    message: str | None = None
    extra: dict[str, Any] | None = None
    host: str | None = None  # pages only: counted against the per-host cap
    stored: tuple[str, int, str, str] | None = None  # data: URIs saved at once


@dataclass(slots=True)
class Discovery:
    """What one fetched document adds: rows, and its edges (target, kind, alt)."""

    rows: list[LinkRow] = field(default_factory=list)
    edges: list[tuple[str, str, str | None]] = field(default_factory=list)
    skip: tuple[str, str] | None = None  # the document itself ends skipped (e.g. not_html)


class Frontier:
    """Crawl tables over an open ``Journal``. Single-threaded, like the journal."""

    def __init__(
        self, journal: Journal, *, max_pages: int = 0, max_pages_per_host: int = 0
    ) -> None:
        self._journal = journal
        self._max_pages = max_pages
        self._max_per_host = max_pages_per_host
        self._db = journal.db
        self._db.executescript(_SCHEMA)
        self._host_pages: dict[str, int] = {}
        row = self._db.execute("SELECT coalesce(sum(pages), 0) FROM crawl_hosts").fetchone()
        self.pages = int(row[0])  # pages admitted over the whole crawl (resumes included)

    # -- caps --------------------------------------------------------------------------

    def host_pages(self, host: str) -> int:
        n = self._host_pages.get(host)
        if n is None:
            row = self._db.execute("SELECT pages FROM crawl_hosts WHERE host=?", (host,)).fetchone()
            n = self._host_pages[host] = int(row[0]) if row else 0
        return n

    # -- writing -----------------------------------------------------------------------

    def writer(self, page_id: int, discovery: Discovery) -> Any:
        """A callable for ``RunState.record(commit_with=...)``: the page's discoveries,
        written in the transaction that commits the page's outcome. Returns it;
        ``writer.added`` is set to the pending rows added once it has run."""
        return _Writer(self, page_id, discovery)

    def _write(self, db: sqlite3.Connection, page_id: int, d: Discovery) -> int:
        added = 0
        for r in d.rows:
            if r.host is not None and r.state == "pending" and (over := self._over_cap(r.host)):
                r = replace(r, state="skipped", error="page_limit", message=over, host=None)
            if r.state == "pending" and r.kind == "page":
                # A URL first met too deep may now be met shallower: let it in again.
                db.execute(
                    "DELETE FROM items WHERE key=? AND state='skipped' AND error='depth_limit'"
                    " AND depth>?",
                    (r.key, r.depth),
                )
            extra = json.dumps(r.extra, ensure_ascii=False) if r.extra else None
            cur = db.execute(
                _INSERT,
                (
                    r.key,
                    r.url,
                    r.state,
                    r.error,
                    r.message,
                    extra,
                    r.kind,
                    r.depth,
                    page_id or None,
                ),
            )
            if cur.rowcount and r.stored is not None:
                path, size, digest, mime = r.stored
                db.execute(
                    "UPDATE items SET state='ok', path=?, bytes=?, sha256=?, content_type=?"
                    " WHERE key=?",
                    (path, size, digest, mime, r.key),
                )
            if cur.rowcount and r.state == "pending":
                added += 1
                if r.host is not None:
                    self._count_page(db, r.host)
        db.executemany(
            "INSERT INTO crawl_links (page, target, kind, alt) VALUES (?, ?, ?, ?)",
            [(page_id, t, k, a) for t, k, a in d.edges],
        )
        if d.skip is not None:
            db.execute(
                "UPDATE items SET state='skipped', error=?, message=? WHERE id=?",
                (*d.skip, page_id),
            )
        return added

    def _over_cap(self, host: str) -> str | None:
        if self._max_pages and self.pages >= self._max_pages:
            return f"--max-pages {self._max_pages} reached"
        if self._max_per_host and self.host_pages(host) >= self._max_per_host:
            return f"--max-pages-per-host {self._max_per_host} reached for {host}"
        return None

    def _count_page(self, db: sqlite3.Connection, host: str) -> None:
        n = self.host_pages(host) + 1
        self._host_pages[host] = n
        self.pages += 1
        db.execute(
            "INSERT INTO crawl_hosts (host, pages) VALUES (?, 1)"
            " ON CONFLICT(host) DO UPDATE SET pages = pages + 1",
            (host,),
        )

    def add_seeds(self, rows: Iterable[LinkRow], chunk: int = 2000) -> int:
        """Insert seed rows (depth 0) in chunked transactions; returns how many were new."""
        added = 0
        batch = Discovery()
        for row in rows:
            batch.rows.append(row)
            if len(batch.rows) >= chunk:
                added += self._commit(batch)
                batch = Discovery()
        return added + self._commit(batch)

    def _commit(self, discovery: Discovery) -> int:
        self._db.execute("BEGIN")
        try:
            added = self._write(self._db, 0, discovery)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return added

    def reopen_depth(self, max_depth: int) -> int:
        """Let in again the links an earlier run left as too deep, now that ``--depth``
        allows them (a crawl resumed with a larger depth). Returns how many."""
        from yarl import URL

        rows = self._db.execute(
            "SELECT id, key FROM items WHERE state='skipped' AND error='depth_limit' AND depth<=?",
            (max_depth,),
        ).fetchall()
        if not rows:
            return 0
        self._db.execute("BEGIN")
        for row_id, key in rows:
            self._db.execute(
                "UPDATE items SET state='pending', error=NULL, message=NULL WHERE id=?", (row_id,)
            )
            self._count_page(self._db, URL(key, encoded=True).host or "")
        self._db.execute("COMMIT")
        return len(rows)

    def skip(self, row_id: int, code: str, message: str) -> None:
        """Mark a row skipped now (e.g. disallowed by robots.txt when its turn came)."""
        self._db.execute(
            "UPDATE items SET state='skipped', error=?, message=? WHERE id=?",
            (code, message, row_id),
        )

    # -- robots.txt --------------------------------------------------------------------

    def robots(self, origin: str) -> tuple[int, str | None] | None:
        row = self._db.execute(
            "SELECT status, body FROM crawl_robots WHERE origin=?", (origin,)
        ).fetchone()
        return (int(row[0]), row[1]) if row else None

    def save_robots(self, origin: str, status: int, body: str | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO crawl_robots (origin, status, body) VALUES (?, ?, ?)",
            (origin, status, body),
        )

    # -- reading -----------------------------------------------------------------------

    def kind_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for kind, state, n in self._db.execute(
            "SELECT kind, state, count(*) FROM items GROUP BY kind, state"
        ):
            out.setdefault(kind, {})[state] = n
        return out

    def pages_with_links(self) -> Iterator[tuple[dict[str, Any], list[tuple[str, str, Any]]]]:
        """Every page row in id order with its edges (target, kind, alt) in document order."""
        pages = self._db.execute(
            "SELECT id, url, state, status, depth, error, found_on FROM items"
            " WHERE kind='page' ORDER BY id"
        )
        for page_id, url, state, status, depth, error, found_on in pages:
            edges = self._db.execute(
                "SELECT target, kind, alt FROM crawl_links WHERE page=? ORDER BY rowid",
                (page_id,),
            ).fetchall()
            yield (
                {
                    "url": url,
                    "state": state,
                    "status": status,
                    "depth": depth,
                    "error": error,
                    "found_on": found_on,
                },
                edges,
            )


class _Writer:
    __slots__ = ("_d", "_frontier", "_page", "added")

    def __init__(self, frontier: Frontier, page_id: int, discovery: Discovery) -> None:
        self._frontier, self._page, self._d = frontier, page_id, discovery
        self.added = 0

    def __call__(self, db: sqlite3.Connection) -> None:
        self.added = self._frontier._write(db, self._page, self._d)


def data_key(uri: str) -> str:
    """The journal key of a data: URI (the URI itself can be megabytes long)."""
    return "data:sha256:" + hashlib.sha256(uri.encode("utf-8", "surrogatepass")).hexdigest()
