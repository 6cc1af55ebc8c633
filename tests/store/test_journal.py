"""The journal, the only owner of SQL: rows in, outcomes recorded, crawl tables, read-only opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aiograb._core.errors import HTTPStatusError
from aiograb._core.models import Outcome, Stored
from aiograb._store.crawl import CrawlTables
from aiograb._store.journal import JOURNAL_NAME, Journal, NewRow, SavedFile


def _journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / JOURNAL_NAME)


def test_get_and_crawl_rows_go_through_one_insert(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    new, bad = j.add(
        [
            NewRow("http://a/1", "http://a/1", 1),
            NewRow("line:2", "nope", 2, "invalid_url", "malformed"),
            NewRow("http://a/1", "http://a/1", 3),  # a duplicate key is ignored
        ]
    )
    assert (new, bad) == (1, 1)
    with j.transaction():
        assert j.insert(NewRow("http://a/p", "http://a/p", kind="page", depth=1, found_on=1))
        assert not j.insert(NewRow("http://a/1", "http://a/1", kind="image"))
        saved = SavedFile("ab/cd.png", 10, "f" * 64, "image/png")
        assert j.insert(NewRow("data:sha256:x", "data:…", kind="image", state="ok", stored=saved))
        skipped = NewRow("http://b/", "http://b/", kind="page", state="skipped", error="nofollow")
        assert j.insert(skipped)
    rows = {r["url"]: r for r in j.rows()}
    assert rows["http://a/1"]["state"] == "pending"
    assert rows["nope"] | {"state": "failed", "error": "invalid_url"} == rows["nope"]
    assert rows["http://a/p"] | {"kind": "page", "depth": 1, "found_on": 1} == rows["http://a/p"]
    assert rows["data:…"]["path"] == "ab/cd.png"
    assert rows["data:…"]["state"] == "ok"
    assert rows["http://b/"]["state"] == "skipped"
    assert j.has_key("http://a/p")
    assert not j.has_key("http://zzz/")
    j.close()


def test_outcomes_are_buffered_until_flush_and_commit_with_their_discoveries(
    tmp_path: Path,
) -> None:
    j = _journal(tmp_path)
    j.add([NewRow("http://a/1", "http://a/1", 1), NewRow("http://a/2", "http://a/2", 2)])
    (first, second) = j.pending(0, 10)
    j.record(first.id, Outcome(url=first.url, ok=True, status=200, attempts=1))
    assert j.buffered == 1
    other = sqlite3.connect(tmp_path / JOURNAL_NAME)
    assert other.execute("SELECT state FROM items WHERE id=?", (first.id,)).fetchone() == (
        "pending",
    )
    j.record(second.id, Outcome(url=second.url, error=HTTPStatusError(500, url=second.url)))
    j.flush(also=lambda: j.insert(NewRow("http://a/3", "http://a/3", kind="image")))
    states = dict(other.execute("SELECT url, state FROM items"))
    assert states == {"http://a/1": "ok", "http://a/2": "failed", "http://a/3": "pending"}
    other.close()
    j.close()


def test_a_failing_discovery_rolls_back_the_outcomes_it_was_committed_with(
    tmp_path: Path,
) -> None:
    j = _journal(tmp_path)
    j.add([NewRow("http://a/1", "http://a/1", 1)])
    (row,) = j.pending(0, 10)
    j.record(row.id, Outcome(url=row.url, ok=True, status=200))

    def broken() -> None:
        j.insert(NewRow("http://a/2", "http://a/2", kind="page"))
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        j.flush(also=broken)
    assert j.counts() == {"pending": 1}  # neither the outcome nor the discovery landed
    j.close()


def test_crawl_tables_keep_links_hosts_and_robots(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    t = CrawlTables(j)
    with j.transaction():
        j.insert(NewRow("http://a/", "http://a/", kind="page", depth=0))
        t.add_edges(1, [("http://a/x.png", "image", "a cat"), ("http://a/b", "page", None)])
        t.count_page("a")
        t.count_page("a")
        t.save_robots("http://a:80", 200, "User-agent: *\nDisallow: /private")
        j.insert(
            NewRow(
                "http://a/deep",
                "http://a/deep",
                kind="page",
                depth=5,
                state="skipped",
                error="depth_limit",
            )
        )
    assert (t.host_pages("a"), t.host_pages("b"), t.pages_admitted()) == (2, 0, 2)
    assert t.robots("http://a:80") == (200, "User-agent: *\nDisallow: /private")
    assert t.robots("http://b:80") is None
    (page, edges), (deep, no_edges) = list(t.pages_with_links())
    assert page["url"] == "http://a/"
    assert edges[0] == ("http://a/x.png", "image", "a cat")
    assert (deep["state"], deep["error"], no_edges) == ("skipped", "depth_limit", [])
    assert t.too_deep(4) == []
    ((deep_id, _deep_key),) = t.too_deep(5)
    with j.transaction():
        t.reopen(deep_id)
    assert t.kind_counts() == {"page": {"pending": 2}}
    j.close()


def test_a_read_only_journal_never_writes(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    j.add([NewRow("http://a/1", "http://a/1", 1)])
    j.close()
    before = (tmp_path / JOURNAL_NAME).stat().st_mtime_ns
    ro = Journal(tmp_path / JOURNAL_NAME, readonly=True)
    assert [r["url"] for r in ro.rows()] == ["http://a/1"]
    with pytest.raises(sqlite3.OperationalError):
        ro.add([NewRow("http://a/2", "http://a/2", 2)])
    ro.close()
    assert (tmp_path / JOURNAL_NAME).stat().st_mtime_ns == before
    with pytest.raises(sqlite3.OperationalError):
        Journal(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_plain_and_other_rows_go_in_in_input_order(tmp_path: Path) -> None:
    """Plain rows and rows with more (carried columns) take two statements: the first of
    two rows with one key still wins, and ids still follow the input's lines."""
    journal = Journal(tmp_path / JOURNAL_NAME)
    k = "http://127.0.0.1/a"
    rows = [
        NewRow("http://127.0.0.1/0", "u0", 1),
        NewRow(k, "first", 2, extra={"c": 1}),
        NewRow("http://127.0.0.1/1", "u1", 3),
        NewRow(k, "second", 4),  # same key, plain: ignored, the first one kept
        NewRow("http://127.0.0.1/2", "u2", 5, extra={"c": 2}),
    ]
    assert journal.add(rows) == (4, 0)
    db = journal.connection
    got = db.execute("SELECT id, key, url, line, extra FROM items ORDER BY id").fetchall()
    assert [(url, line) for _, _, url, line, _ in got] == [
        ("u0", 1), ("first", 2), ("u1", 3), ("u2", 5)
    ]  # fmt: skip
    assert [row_id for row_id, *_ in got] == sorted(row_id for row_id, *_ in got)
    assert [extra is not None for *_, extra in got] == [False, True, False, True]
    journal.close()


def test_a_row_recorded_twice_in_a_batch_ends_as_its_last_outcome(tmp_path: Path) -> None:
    """A stored outcome and a failure take two statements, run in the order recorded."""
    journal = Journal(tmp_path / JOURNAL_NAME)
    journal.add([NewRow("http://127.0.0.1/a", "http://127.0.0.1/a", 1)])
    (row,) = journal.pending(0, 10)
    stored = Stored(size=3, sha256="0" * 64, path="ab/abc.jpg")
    ok = Outcome(url=row.url, ok=True, attempts=1, stored=stored, content_type="image/jpeg")
    failed = Outcome(url=row.url, ok=False, attempts=1, error=HTTPStatusError(500, url=row.url))
    for first, last in [(ok, failed), (failed, ok)]:
        journal.record(row.id, first)
        journal.record(row.id, last)
        journal.flush()
        state, path, error = journal.connection.execute(
            "SELECT state, path, error FROM items WHERE id=?", (row.id,)
        ).fetchone()
        assert state == ("ok" if last is ok else "failed")
        assert (path is not None) == (last is ok)
        assert (error is None) == (last is ok)
    journal.close()
