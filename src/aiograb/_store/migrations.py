"""Journal schema versions, and the steps that bring an older journal up to date.

``meta.schema_version`` says which layout and which rules a journal was written
with. ``migrate`` runs each step from that version to ``SCHEMA_VERSION`` in its
own transaction, so an output folder written by an older release resumes with
this one; a journal newer than this code refuses to open (``InputError``).

- **1 → 2**: keys become the WHATWG URL Standard's normal form
  (``aiograb._core.urls.normalize``), recomputed from each row's URL as given.
  Rows that version 1 kept apart but that are one URL now (``http://h`` and
  ``http://h/``, ``a\\b`` and ``a/b``) collapse into the best of them — ``ok``,
  then ``failed``, then ``skipped``, then ``pending``; among equals the lowest id —
  and the others are deleted (rows and crawl links that pointed at them point at
  the one kept). A row whose URL the new rules refuse keeps its old key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from aiograb._core.errors import InputError, InvalidURL
from aiograb._core.urls import normalize

__all__ = ["SCHEMA", "SCHEMA_VERSION", "migrate"]

SCHEMA_VERSION = 2
# The tables of a journal of this version (each one IF NOT EXISTS: run at every open).
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,        -- normalised URL, or line:N for a bad input row
    url TEXT NOT NULL,               -- as given in the input
    line INTEGER,
    state TEXT NOT NULL,             -- pending | ok | failed | skipped
    path TEXT,
    bytes INTEGER,
    sha256 TEXT,
    content_type TEXT,
    status INTEGER,
    error TEXT,
    message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    elapsed REAL,
    final_url TEXT,
    extra TEXT,                      -- input columns carried along (JSON)
    kind TEXT NOT NULL DEFAULT 'file', -- file | page | image (crawl)
    depth INTEGER,                   -- crawl depth
    found_on INTEGER,                -- id of the page row this URL was found on
    info TEXT                        -- what processing learnt (JSON: width, height, ...)
);
CREATE INDEX IF NOT EXISTS items_state ON items(state, id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
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
_CHUNK = 5000
_RANK = {"ok": 0, "failed": 1, "skipped": 2, "pending": 3}


def migrate(db: sqlite3.Connection) -> None:
    """Upgrade the journal open on ``db`` (autocommit mode) to ``SCHEMA_VERSION``."""
    version = _version(db)
    if version > SCHEMA_VERSION:
        raise InputError(
            f"the journal has schema version {version}, newer than this aiograb knows"
            f" ({SCHEMA_VERSION}): upgrade aiograb to resume this output folder"
        )
    while version < SCHEMA_VERSION:
        db.execute("BEGIN IMMEDIATE")
        try:
            _STEPS[version](db)
            version += 1
            db.execute("UPDATE meta SET value=? WHERE name='schema_version'", (str(version),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _version(db: sqlite3.Connection) -> int:
    found = db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
    try:
        return int(found[0]) if found else 1
    except ValueError:
        raise InputError(f"the journal has an unreadable schema version {found[0]!r}") from None


# -- 1 → 2: the WHATWG normal form -------------------------------------------------------


def _v1_to_v2(db: sqlite3.Connection) -> None:
    db.execute("CREATE TEMP TABLE remap (id INTEGER PRIMARY KEY, key TEXT NOT NULL, rank INT)")
    db.executemany("INSERT INTO remap VALUES (?, ?, ?)", _new_keys(db))
    # The best row of each new key wins; the others are losers, pointing at their winner.
    db.execute(
        "CREATE TEMP TABLE losers AS SELECT id, winner FROM ("
        " SELECT id, ROW_NUMBER() OVER w AS n, FIRST_VALUE(id) OVER w AS winner FROM remap"
        " WINDOW w AS (PARTITION BY key ORDER BY rank, id)) WHERE n > 1"
    )
    db.execute("CREATE UNIQUE INDEX temp.losers_id ON losers(id)")
    has_links = _has_table(db, "crawl_links")
    repoint = [("items", "found_on")] + ([("crawl_links", "page")] if has_links else [])
    for table, column in repoint:
        db.execute(
            f"UPDATE {table} SET {column} = (SELECT winner FROM losers WHERE id = {column})"
            f" WHERE {column} IN (SELECT id FROM losers)"
        )
    db.execute("DELETE FROM items WHERE id IN (SELECT id FROM losers)")
    db.execute("DELETE FROM remap WHERE id IN (SELECT id FROM losers)")
    # Two passes, so no row takes a key another row still holds (key is UNIQUE).
    db.execute(
        "UPDATE items SET key = '~migrating:' || id"
        " WHERE id IN (SELECT remap.id FROM remap JOIN items USING (id)"
        " WHERE items.key != remap.key)"
    )
    db.execute(
        "UPDATE items SET key = (SELECT key FROM remap WHERE remap.id = items.id)"
        " WHERE key LIKE '~migrating:%'"
    )
    if has_links:
        _rewrite(db, "crawl_links", "target")
    db.execute("DROP TABLE temp.losers")
    db.execute("DROP TABLE temp.remap")


def _new_keys(db: sqlite3.Connection) -> Iterator[tuple[int, str, int]]:
    """``(id, new key, rank)`` of every row keyed by a URL, read in chunks by id."""
    for row_id, key, url, state in _chunks(db, "SELECT id, key, url, state FROM items"):
        if not key.startswith(("http://", "https://")):
            continue  # line:N, data:, invalid_url:... keys name no URL
        yield row_id, _renormal(url, key), _RANK.get(state, len(_RANK))


def _rewrite(db: sqlite3.Connection, table: str, column: str) -> None:
    """Put the URLs of ``table.column`` in the new normal form."""
    changed = [
        (new, rowid)
        for rowid, old in _chunks(db, f"SELECT rowid, {column} FROM {table}")
        if old.startswith(("http://", "https://")) and (new := _renormal(old, old)) != old
    ]
    db.executemany(f"UPDATE {table} SET {column}=? WHERE rowid=?", changed)


def _renormal(url: str, old_key: str) -> str:
    try:
        return normalize(url)
    except InvalidURL:
        return old_key


def _chunks(db: sqlite3.Connection, select: str) -> Iterator[tuple[Any, ...]]:
    """Rows of ``select`` (whose first column is an integer id) by keyset pagination."""
    after, id_column = -1, select.split()[1].rstrip(",")
    while True:
        batch = db.execute(
            f"{select} WHERE {id_column} > ? ORDER BY {id_column} LIMIT ?", (after, _CHUNK)
        ).fetchall()
        if not batch:
            return
        yield from batch
        after = batch[-1][0]


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return found.fetchone() is not None


_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}
