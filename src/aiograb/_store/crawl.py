"""The crawl's tables, beside ``items`` in the journal's SQLite file.

``crawl_links`` holds every edge a document showed (page → target, kind, alt),
``crawl_hosts`` the pages admitted per host (for the per-host cap, resumes
included) and ``crawl_robots`` each origin's robots.txt as fetched once per
crawl. The tables are created with the journal's schema; this class is their
only reader and writer. Writes made inside ``Journal.flush(also=...)`` land in
the transaction that commits the page's outcome.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiograb._store.journal import Journal

__all__ = ["CrawlTables", "Edge"]

Edge = tuple[str, str, str | None]  # target, kind, alt


class CrawlTables:
    """The crawl's SQL, over an open ``Journal``. Single-threaded, like the journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    @property
    def _db(self) -> sqlite3.Connection:
        # Asked each time: a journal written back (``Journal.write_back``) has a new one.
        return self.journal.connection

    # -- rows of items the crawl changes ------------------------------------------------

    def readmit_many(self, rows: Iterable[tuple[str, int]]) -> None:
        """Forget each link (key, depth) first met too deep, now met at ``depth``: it may
        be added again."""
        self._db.executemany(
            "DELETE FROM items WHERE key=? AND state='skipped' AND error='depth_limit' AND depth>?",
            rows,
        )

    def skip(self, row_id: int, code: str, message: str) -> None:
        """Mark a row skipped (not fetched, or fetched and not what it claimed to be)."""
        self._db.execute(
            "UPDATE items SET state='skipped', error=?, message=? WHERE id=?",
            (code, message, row_id),
        )

    def too_deep(self, max_depth: int) -> list[tuple[int, str]]:
        """``(id, key)`` of links left as too deep that ``max_depth`` now allows."""
        rows = self._db.execute(
            "SELECT id, key FROM items WHERE state='skipped' AND error='depth_limit' AND depth<=?",
            (max_depth,),
        )
        return [(int(i), str(k)) for i, k in rows]

    def reopen(self, row_id: int) -> None:
        self._db.execute(
            "UPDATE items SET state='pending', error=NULL, message=NULL WHERE id=?", (row_id,)
        )

    def add_edges(self, page_id: int, edges: Iterable[Edge]) -> None:
        self._db.executemany(
            "INSERT INTO crawl_links (page, target, kind, alt) VALUES (?, ?, ?, ?)",
            [(page_id, t, k, a) for t, k, a in edges],
        )

    # -- pages per host -----------------------------------------------------------------

    def pages_admitted(self) -> int:
        row = self._db.execute("SELECT coalesce(sum(pages), 0) FROM crawl_hosts").fetchone()
        return int(row[0])

    def host_pages(self, host: str) -> int:
        row = self._db.execute("SELECT pages FROM crawl_hosts WHERE host=?", (host,)).fetchone()
        return int(row[0]) if row else 0

    def count_page(self, host: str, n: int = 1) -> None:
        self.count_pages({host: n})

    def count_pages(self, counts: Mapping[str, int]) -> None:
        """Add ``counts[host]`` pages admitted to each host."""
        self._db.executemany(
            "INSERT INTO crawl_hosts (host, pages) VALUES (?, ?)"
            " ON CONFLICT(host) DO UPDATE SET pages = pages + excluded.pages",
            counts.items(),
        )

    # -- robots.txt ---------------------------------------------------------------------

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

    # -- reading ------------------------------------------------------------------------

    def kind_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for kind, state, n in self._db.execute(
            "SELECT kind, state, count(*) FROM items GROUP BY kind, state"
        ):
            out.setdefault(kind, {})[state] = n
        return out

    def pages_with_links(self) -> Iterator[tuple[dict[str, Any], list[Edge]]]:
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
            page = {
                "url": url,
                "state": state,
                "status": status,
                "depth": depth,
                "error": error,
                "found_on": found_on,
            }
            yield page, edges
