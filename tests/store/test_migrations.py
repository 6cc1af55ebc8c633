"""Journal schema migrations: an output folder written by the previous release resumes exactly.

``data/journal-v1.sql`` is the ``sqlite3 .dump`` of a real journal written by
aiograb before the WHATWG normal form (commit 5ff356e): ``aiograb get
data/list-v1.txt -c 1 --per-host 1 --retries 0`` against ``python -m
aiograb.testing --latency-ms 400``, killed with SIGKILL after 11 rows were
final, the origin's port then replaced by ``@PORT@``. Its v1 keys are yarl's
(``?sig=a/b`` for ``?sig=a%2Fb``, ``q=a+b`` for ``q=a b``, ``http://h`` beside
``http://h/``, ``img%5C8.jpg`` for ``img\\8.jpg``).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiograb._core.urls import normalize
from aiograb._store.journal import JOURNAL_NAME, Journal
from aiograb._store.migrations import SCHEMA_VERSION, migrate
from aiograb.testing import RunningServer, image_bytes, serve_in_thread
from tests.helpers import aiograb_cli, manifest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def site() -> Iterator[RunningServer]:
    with serve_in_thread() as server:
        yield server


def _v1_folder(out: Path, port: int) -> Path:
    """The half-done output folder: the v1 journal, its ok files, and the input list."""
    out.mkdir()
    dump = (DATA / "journal-v1.sql").read_text(encoding="utf-8").replace("@PORT@", str(port))
    db = sqlite3.connect(out / JOURNAL_NAME)
    db.executescript(dump)
    for path, url, digest in db.execute("SELECT path, url, sha256 FROM items WHERE state='ok'"):
        n = int(re.search(r"/img/(\d+)\.jpg", url).group(1))  # type: ignore[union-attr]
        body = image_bytes(n, "jpg")
        assert hashlib.sha256(body).hexdigest() == digest  # the server's bytes, as in v1
        (out / path).parent.mkdir(exist_ok=True)
        (out / path).write_bytes(body)
    db.close()
    listing = out.parent / "list.txt"
    text = (DATA / "list-v1.txt").read_text(encoding="utf-8").replace("PORT", str(port))
    listing.write_text(text, encoding="utf-8")
    return listing


def test_a_v1_folder_half_done_resumes_exactly(site: RunningServer, tmp_path: Path) -> None:
    port = int(site.base_url.rsplit(":", 1)[1])
    out = tmp_path / "out"
    listing = _v1_folder(out, port)
    with sqlite3.connect(out / JOURNAL_NAME) as db:
        before = {
            key: (state, path)
            for key, state, path in db.execute("SELECT key, state, path FROM items")
        }
    assert len(before) == 18
    assert sum(s == "pending" for s, _ in before.values()) == 7
    site.clear_requests()

    done = aiograb_cli("get", listing, "-o", out, "--retries", "0", "-q")
    assert done.returncode == 1, done.stderr  # some rows failed (in v1), none crashed

    # Only what was pending is fetched, each once, with the bytes a browser sends.
    fetched = sorted(r.path_qs for r in site.requests)
    assert fetched == sorted(
        [
            "/img/10.jpg?sig=x%2Fy",
            "/img/11.jpg",
            "/img/12.jpg",
            "/img/13.jpg?q=a%20b&r=%2B",
            "/img/14.jpg",
        ]
    )
    rows = manifest(out)
    origin = f"http://127.0.0.1:{port}"
    keys = [normalize(r["url"]) for r in rows]
    assert len(keys) == len(set(keys))  # every URL exactly once
    given = listing.read_text(encoding="utf-8").splitlines()
    assert set(keys) == {normalize(u) for u in given}  # ... and none is missing
    by_key = dict(zip(keys, rows, strict=True))
    # The ok rows of v1 stay as they were: same files, not fetched again.
    for url, n in [("/img/1.jpg", 1), ("/img/2.jpg?sig=a%2Fb%3D", 2), ("/img/8.jpg", 8)]:
        row = by_key[origin + url]
        assert row["state"] == "ok"
        assert (out / row["path"]).read_bytes() == image_bytes(n, "jpg")
    assert by_key[origin + "/img/3.jpg?q=a%20b"]["path"] == before[origin + "/img/3.jpg?q=a+b"][1]
    # Collapsed pairs kept the best row: ok over failed, failed over pending.
    assert by_key[origin + "/img/8.jpg"]["line"] == 7  # line 6 (img\8.jpg) failed in v1
    assert by_key[origin + "/img/1.jpg"]["line"] == 1  # line 10 (0x7f.0.0.1) failed in v1
    assert by_key[origin + "/"]["line"] == 4  # both failed: the lowest id
    assert by_key[origin + "/img/15.jpg"]["state"] == "failed"  # line 9 failed; line 20 pending
    # What was pending is done now.
    for url in ["/img/10.jpg?sig=x%2Fy", "/img/11.jpg", "/img/12.jpg", "/img/14.jpg"]:
        assert by_key[origin + url]["state"] == "ok", url
    assert sum(r["state"] == "pending" for r in rows) == 0
    with sqlite3.connect(out / JOURNAL_NAME) as db:
        version = db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
    assert version == (str(SCHEMA_VERSION),)

    # Resuming again fetches nothing: the migrated keys match the new ingest.
    site.clear_requests()
    again = aiograb_cli("get", listing, "-o", out, "--retries", "0", "-q")
    assert again.returncode == 1, again.stderr
    assert site.requests == []
    assert manifest(out) == rows


def test_a_journal_newer_than_we_know_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    Journal(out / JOURNAL_NAME).close()
    with sqlite3.connect(out / JOURNAL_NAME) as db:
        db.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    listing = tmp_path / "list.txt"
    listing.write_text("http://127.0.0.1:9/a.jpg\n", encoding="utf-8")
    done = aiograb_cli("get", listing, "-o", out)
    assert done.returncode == 2
    assert "schema version 99" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_v1_to_v2_ranks_rows_and_repoints_crawl_links(tmp_path: Path) -> None:
    """A crawl journal: losers' children and links point at the row kept."""
    path = tmp_path / JOURNAL_NAME
    Journal(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value='1'")
    rows = [
        (1, "http://a.org", "http://a.org", "pending", None),  # page, pending
        (2, "http://a.org/", "http://a.org/", "skipped", None),  # same page, skipped: wins
        (3, "http://a.org/x.jpg?s=a/b", "http://a.org/x.jpg?s=a%2Fb", "pending", 1),
        (4, "line:7", "not a url", "failed", None),
        (5, "invalid_url:http://exa mple", "http://exa mple", "skipped", 1),
    ]
    db.executemany("INSERT INTO items (id, key, url, state, found_on) VALUES (?, ?, ?, ?, ?)", rows)
    db.executemany(
        "INSERT INTO crawl_links VALUES (?, ?, 'image', NULL)",
        [(1, "http://a.org/x.jpg?s=a/b"), (1, "http://a.org")],
    )
    migrate(db)
    assert db.execute("SELECT id, key, state, found_on FROM items ORDER BY id").fetchall() == [
        (2, "http://a.org/", "skipped", None),
        (3, "http://a.org/x.jpg?s=a%2Fb", "pending", 2),
        (4, "line:7", "failed", None),
        (5, "invalid_url:http://exa mple", "skipped", 2),
    ]
    # A link's target is re-normalised from itself (v1 crawl keys are all there is).
    assert db.execute("SELECT page, target FROM crawl_links ORDER BY rowid").fetchall() == [
        (2, "http://a.org/x.jpg?s=a/b"),
        (2, "http://a.org/"),
    ]
    migrate(db)  # a v2 journal is left alone
    assert db.execute("SELECT count(*) FROM items").fetchone() == (4,)
