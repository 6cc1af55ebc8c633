"""The SQLite journal: every input row, what became of it, and resume.

This package (``_store``) is the only place that speaks SQL. ``items`` holds one
row per distinct URL (or per bad input row), for ``get`` and ``crawl`` alike;
the crawl's own tables (links, hosts, robots.txt) are kept by
``aiograb._store.crawl.CrawlTables`` over the same connection. Rows
enter as ``pending`` (or ``failed`` when the input row itself is bad) and are
updated once, to ``ok`` or ``failed``, when their outcome is final. Updates
are buffered and committed in batches (WAL, ``synchronous=NORMAL``) so the
journal never limits throughput; a kill -9 loses at most the last uncommitted
batch, whose rows are simply still ``pending`` and fetched again on resume.
The journal is written from the event-loop thread: a batch commit costs well
under a millisecond, far less than a thread hop would.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from aiograb._core.models import Outcome
from aiograb._store.atomic import replacing
from aiograb._store.check import check_journal, journal_error
from aiograb._store.migrations import SCHEMA, SCHEMA_VERSION, migrate
from aiograb._store.refusals import is_storage_full

__all__ = [
    "JOURNAL_NAME",
    "LOST_FOLDER_HINT",
    "DoneRow",
    "Journal",
    "NewRow",
    "PendingRow",
    "SavedFile",
    "manifest_line",
]

JOURNAL_NAME = "aiograb-journal.sqlite"
# What a run whose output folder was removed under it says (one process, or parts).
LOST_FOLDER_HINT = "Its journal and files went with it: run the command again to start over"
# One encoder for every manifest line: json.dumps with a non-default option builds a
# new JSONEncoder per call (measured: 171 -> 160 ms CPU for a 10k-row manifest).
_MANIFEST_ENCODER = json.JSONEncoder(ensure_ascii=False)


def manifest_line(record: Mapping[str, Any]) -> str:
    """One line of ``manifest.jsonl``: a record of ``Journal.rows()`` as JSON, and a newline."""
    return _MANIFEST_ENCODER.encode(record) + "\n"


# One encoder for every row's extra (json.dumps builds a new one per call with these options).
_encode_extra = json.JSONEncoder(default=str, ensure_ascii=False).encode
_IN_CHUNK = 500  # keys per "IN (...)" query (SQLite allows 32766 parameters; keep it modest)
_INSERT = (
    "INSERT OR IGNORE INTO items (key, url, line, state, error, message, extra, kind, depth,"
    " found_on, path, bytes, sha256, content_type)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The usual rows in statements of their own that name no NULL: sqlite3 binds a None
# through its adapter lookup, two failed attribute lookups each; a plain input row has
# nine of them (benchmarks/bench_journal_binds.py: 5.1-5.4 -> 2.3-3.7 us a row).
_INSERT_PLAIN = "INSERT OR IGNORE INTO items (key, url, line, state, kind) VALUES (?, ?, ?, ?, ?)"
_UPDATE = (
    "UPDATE items SET state=?, path=?, bytes=?, sha256=?, content_type=?, status=?,"
    " error=?, message=?, attempts=attempts+?, started=?, elapsed=?, final_url=?,"
    " info=? WHERE id=?"
)
_UPDATE_STORED = (  # ok, stored, nothing learnt: 10 values
    "UPDATE items SET state='ok', path=?, bytes=?, sha256=?, content_type=?, status=?,"
    " error=NULL, message=NULL, attempts=attempts+?, started=?, elapsed=?, final_url=?,"
    " info=NULL WHERE id=?"
)
_UPDATES = {sql.count("?"): sql for sql in (_UPDATE, _UPDATE_STORED)}  # by values a row


def _is_plain(row: NewRow) -> bool:
    """A pending input row and nothing more: inserted by ``_INSERT_PLAIN``."""
    return not (row.state or row.error or row.extra or row.message or row.stored) and (
        row.depth is None and row.found_on is None
    )


MANIFEST_FIELDS = (
    "url",
    "line",
    "state",
    "path",
    "bytes",
    "sha256",
    "content_type",
    "status",
    "error",
    "message",
    "attempts",
    "started",
    "elapsed",
    "final_url",
    "extra",
)


@dataclass(frozen=True, slots=True)
class NewRow:
    """A row to add, from the input (``get``) or found on a page (``crawl``).

    ``state`` defaults to ``pending``, or ``failed`` when ``error`` is set; the
    crawl also adds ``skipped`` rows (links not followed, with their class) and
    ``ok`` rows already saved (``stored``: data: URIs).
    """

    key: str
    url: str
    line: int | None = None
    error: str | None = None
    message: str | None = None
    extra: Mapping[str, Any] | None = None
    kind: str = "file"
    depth: int | None = None
    found_on: int | None = None
    state: str | None = None
    stored: SavedFile | None = None

    @property
    def final_state(self) -> str:
        return self.state or ("failed" if self.error else "pending")

    def values(self, found_on: int | None = None) -> tuple[Any, ...]:
        """The values of ``_INSERT`` (``found_on``, when given, replaces the row's)."""
        extra = _encode_extra(self.extra) if self.extra else None
        s = self.stored
        return (
            self.key,
            self.url,
            self.line,
            self.final_state,
            self.error,
            self.message,
            extra,
            self.kind,
            self.depth,
            self.found_on if found_on is None else found_on,
            *((s.path, s.size, s.sha256, s.content_type) if s else (None, None, None, None)),
        )


@dataclass(frozen=True, slots=True)
class SavedFile:
    """A file already stored when its row is added (a crawled data: URI)."""

    path: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True, slots=True)
class PendingRow:
    id: int
    key: str
    url: str
    kind: str = "file"  # file | page | image | ... (crawl)
    depth: int | None = None


@dataclass(frozen=True, slots=True)
class DoneRow:
    id: int
    key: str
    sha256: str | None
    path: str | None
    bytes: int
    info: dict[str, Any]


class Journal:
    """Open with ``Journal(path)``; close with ``close()``. Not thread-safe by design."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        check_journal(self.path)  # a damaged or foreign file: one line, exit 2
        new = not self.path.exists()
        if readonly:  # exports and the coordinator of parts: never write, never create
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=5000")
        else:
            self._db = self._create_or_open(new)
        self._updates: list[tuple[Any, ...]] = []
        self.last_commit = time.monotonic()

    def _create_or_open(self, new: bool) -> sqlite3.Connection:
        """Open for writing: WAL, the schema, the meta rows, migrations. A journal this
        call created and could not initialise is removed with its ``-wal``/``-shm``, so
        a full disk never leaves an empty journal a rerun would refuse; a full disk is an
        ``OSError`` (ENOSPC: the CLI's exit 74), not a damaged journal."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            if new:  # when the first run started: "resumed a run of ..."
                db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (str(time.time()),))
            migrate(db)  # an older journal is brought up to SCHEMA_VERSION
        except (sqlite3.Error, OSError) as exc:
            db.close()
            if new:
                for suffix in ("", "-wal", "-shm"):
                    with suppress(FileNotFoundError):
                        os.unlink(f"{self.path}{suffix}")
            if is_storage_full(exc):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path)) from None
            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            raise journal_error(self.path, f"damaged: {exc}") from None
        return db

    def write_back(self) -> None:
        """Write the journal to its path again from the open connection, and go on in
        that copy: its file was deleted under the run (the folder kept), and what it
        recorded lives on only in this connection. Call between transactions; a
        refusal raises as a commit's does (``sqlite3.Error``, ``OSError``), the
        connection kept."""
        ghost = self._db
        try:
            with replacing(self.path, ".restore") as copy:
                with suppress(FileNotFoundError):
                    copy.unlink()  # a copy an earlier try left (VACUUM INTO wants none)
                ghost.execute("VACUUM INTO ?", (str(copy),))
                # Out of WAL, and no journal file from now on: the deleted journal's -wal
                # and -shm go (by name) before the copy has its own, and it makes no more.
                ghost.execute("PRAGMA journal_mode=OFF")
        except BaseException:
            with suppress(sqlite3.Error):
                ghost.execute("PRAGMA journal_mode=WAL")
            raise
        self._db = self._create_or_open(False)  # raises: the deleted one is kept in use
        ghost.close()

    # -- input -------------------------------------------------------------

    def add(self, rows: Iterable[NewRow]) -> tuple[int, int]:
        """Insert input rows, ignoring keys already known. Returns (new pending, new failed)."""
        good: list[NewRow] = []
        bad: list[tuple[Any, ...]] = []
        for r in rows:
            if r.error:
                bad.append(r.values())
            else:
                good.append(r)
        with self.transaction():
            before = self._db.total_changes
            # In input order (the first of two rows with one key is kept, ids follow lines).
            for plain, run in groupby(good, key=_is_plain):
                if plain:
                    values = [(r.key, r.url, r.line, "pending", r.kind) for r in run]
                    self._db.executemany(_INSERT_PLAIN, values)
                else:
                    self._db.executemany(_INSERT, [r.values() for r in run])
            middle = self._db.total_changes
            self._db.executemany(_INSERT, bad)
            after = self._db.total_changes
        return middle - before, after - middle

    def insert(self, row: NewRow) -> bool:
        """Insert one row unless its key is known; True when it was new. Call inside a
        transaction (``flush(also=...)`` or ``transaction()``)."""
        return self._db.execute(_INSERT, row.values()).rowcount > 0

    def insert_many(self, rows: Iterable[NewRow], found_on: int | None = None) -> None:
        """Insert rows whose keys are not known (``known``); inside a transaction."""
        self._db.executemany(_INSERT, (row.values(found_on) for row in rows))

    def known(self, keys: Iterable[str]) -> dict[str, tuple[str, str | None, int | None]]:
        """The state, error and depth of each of ``keys`` already in the journal."""
        found: dict[str, tuple[str, str | None, int | None]] = {}
        todo = list(dict.fromkeys(keys))
        for i in range(0, len(todo), _IN_CHUNK):
            chunk = todo[i : i + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, state, error, depth in self._db.execute(
                f"SELECT key, state, error, depth FROM items WHERE key IN ({marks})", chunk
            ):
                found[key] = (state, error, depth)
        return found

    def has_key(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM items WHERE key=?", (key,)).fetchone() is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: committed on success, rolled back on any exception."""
        self._db.execute("BEGIN")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # A COMMIT that failed (a full disk) may leave the transaction open.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def pending(self, after_id: int, limit: int, *, retry_failed: bool = False) -> list[PendingRow]:
        """Rows still to do with ``id > after_id``, in input order."""
        states = "('pending', 'failed')" if retry_failed else "('pending')"
        # A failed row whose URL was itself bad has nothing to retry.
        cur = self._db.execute(
            f"SELECT id, key, url, kind, depth FROM items WHERE state IN {states} AND id > ?"
            " AND (state = 'pending' OR key NOT LIKE 'line:%') ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [PendingRow(*row) for row in cur]

    # -- outcomes ----------------------------------------------------------

    def record(self, row_id: int, outcome: Outcome) -> None:
        """Buffer an outcome; it is written at the next ``flush``."""
        stored = outcome.stored
        err = outcome.error
        if stored is not None and outcome.ok and err is None and not outcome.info:
            self._updates.append(
                (
                    stored.path,
                    stored.size,
                    stored.sha256,
                    outcome.content_type,
                    outcome.status,
                    outcome.attempts,
                    outcome.started,
                    round(outcome.elapsed, 6),
                    outcome.final_url,
                    row_id,
                )
            )
            return
        self._updates.append(
            (
                "ok" if outcome.ok else "failed",
                stored.path if stored else None,
                stored.size if stored else None,
                stored.sha256 if stored else None,
                outcome.content_type,
                outcome.status,
                err.code if err else None,
                str(err) if err else None,
                outcome.attempts,
                outcome.started,
                round(outcome.elapsed, 6),
                outcome.final_url,
                json.dumps(outcome.info) if outcome.info else None,
                row_id,
            )
        )

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for the other tables of this package (``CrawlTables``) only."""
        return self._db

    @property
    def buffered(self) -> int:
        return len(self._updates)

    def flush(self, also: Callable[[], None] | None = None) -> None:
        """Commit buffered outcomes in one transaction, with ``also``'s writes when given
        (the crawl commits a page's outcome and what it found on it together)."""
        self.last_commit = time.monotonic()
        if not self._updates and also is None:
            return
        updates, self._updates = self._updates, []
        with self.transaction():
            # In order (a row recorded twice in a batch ends as its last outcome).
            for size, run in groupby(updates, key=len):
                self._db.executemany(_UPDATES[size], run)
            if also is not None:
                also()

    # -- reading -----------------------------------------------------------

    def reopen_failed(self, error: str) -> int:
        """Make failed rows of one error class pending again (``disk_full``: the disk
        was full, nothing was wrong with the URL). Returns how many."""
        with self.transaction():
            cur = self._db.execute(
                "UPDATE items SET state='pending', error=NULL, message=NULL"
                " WHERE state='failed' AND error=?",
                (error,),
            )
        return cur.rowcount

    def created(self) -> float | None:
        """When this journal's first run started (None for journals older than the field)."""
        found = self._db.execute("SELECT value FROM meta WHERE name='created'").fetchone()
        return float(found[0]) if found else None

    def last_id(self) -> int:
        """The highest row id so far (0 when empty): rows above it are new to this run."""
        return int(self._db.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0])

    def counts(self) -> dict[str, int]:
        cur = self._db.execute("SELECT state, count(*) FROM items GROUP BY state")
        return {state: n for state, n in cur}

    def error_counts(self) -> dict[str, int]:
        cur = self._db.execute(
            "SELECT error, count(*) FROM items WHERE state='failed' GROUP BY error"
            " ORDER BY count(*) DESC"
        )
        return {error: n for error, n in cur}

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row in input order, as manifest records.

        The crawl fields (kind, depth, found_on) appear only when set beyond the
        defaults; what processing learnt (``info``: width, height, ...) is merged in.
        """
        columns = ", ".join(MANIFEST_FIELDS)
        cur = self._db.execute(
            f"SELECT {columns}, kind, depth, found_on, info FROM items"
            " ORDER BY line IS NULL, line, id"
        )
        n = len(MANIFEST_FIELDS)
        for values in cur:
            record = dict(zip(MANIFEST_FIELDS, values[:n], strict=True))
            if record["extra"] is not None:
                record["extra"] = json.loads(record["extra"])
            kind, depth, found_on, info = values[n:]
            if kind != "file":
                record.update(kind=kind, depth=depth, found_on=found_on)
            if info is not None:
                record.update(json.loads(info))
            yield record

    def manifest_lines(self) -> Iterator[str]:
        """``rows()`` as the lines of ``manifest.jsonl`` (one JSON object and a newline each)."""
        for record in self.rows():
            yield manifest_line(record)

    def lookup(self, row_id: int) -> tuple[str, str, dict[str, Any] | None]:
        """``(key, url, extra)`` of one row: its normal form, its URL as given, and the
        input columns carried along (``--save-columns``)."""
        found = self._db.execute("SELECT key, url, extra FROM items WHERE id=?", (row_id,))
        key, url, extra = found.fetchone()
        return key, url, json.loads(extra) if extra else None

    def done(self) -> Iterator[DoneRow]:
        """Every committed ok row, in id order: for the image pipeline's resume indexes."""
        cur = self._db.execute(
            "SELECT id, key, sha256, path, bytes, info FROM items WHERE state='ok' ORDER BY id"
        )
        for row_id, key, sha256, path, size, info in cur:
            yield DoneRow(row_id, key, sha256, path, size or 0, json.loads(info) if info else {})

    def write_manifest(self, path: str | os.PathLike[str]) -> int:
        """Rewrite ``manifest.jsonl`` from the journal, atomically. Returns the row count."""
        n = 0
        with replacing(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
            for line in self.manifest_lines():
                fh.write(line)
                n += 1
        return n

    def abandon(self) -> None:
        """Close without committing what is buffered (the disk is full): those rows
        stay pending in the file, which stays consistent, and are done again later."""
        self._updates.clear()
        self._db.close()

    def close(self) -> None:
        if not self.readonly:
            self.flush()
        self._db.close()
