"""Issue 10, item 5: after kill -9, a file renamed into place whose row was not yet
committed is adopted (size and sha256 from the file), not fetched again.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from aiograb import Limits, download
from aiograb._store.journal import JOURNAL_NAME
from aiograb.testing import RunningServer, ServerConfig, serve_in_thread
from tests.helpers import by_url, manifest


def _requests(server: RunningServer, tag: str) -> Counter[str]:
    return Counter(r.path_qs for r in server.requests if tag in r.path_qs)


def test_uncommitted_rows_with_their_file_in_place_are_adopted(
    tmp_path: Path, server: RunningServer
) -> None:
    tag = uuid.uuid4().hex[:8]
    urls = [server.url(f"/img/{i}.png?t={tag}") for i in range(40)]
    out = tmp_path / "out"
    download(urls, out, limits=Limits(concurrency=4, per_host=0))
    first = by_url(out)
    # As after kill -9: rows 10..19 were stored (renamed into place), not committed.
    db = sqlite3.connect(out / JOURNAL_NAME)
    db.execute(
        "UPDATE items SET state='pending', path=NULL, bytes=NULL, sha256=NULL"
        " WHERE line BETWEEN 11 AND 20"
    )
    db.commit()
    db.close()
    (out / first[urls[12]]["path"]).unlink()  # this one was still in flight: no file
    before = _requests(server, tag)
    summary = download(urls, out, limits=Limits(concurrency=4, per_host=0))
    again = _requests(server, tag) - before
    assert list(again) == [urls[12].removeprefix(server.base_url)]  # only the one in flight
    assert summary.counts == {"ok": 40}
    rows = by_url(out)
    for url in urls[10:20]:
        row, old = rows[url], first[url]
        assert (row["state"], row["path"], row["bytes"], row["sha256"]) == (
            "ok",
            old["path"],
            old["bytes"],
            old["sha256"],
        )
        body = (out / row["path"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == row["sha256"]
        assert row.get("adopted") is (None if url == urls[12] else True)


@pytest.mark.slow
@pytest.mark.one_transport  # the journal's adoption after kill -9, whatever fetched
def test_refetch_after_kill_9_is_at_most_what_was_in_flight(tmp_path: Path) -> None:
    concurrency = 16
    with serve_in_thread(ServerConfig(latency_ms=30)) as server:
        src = tmp_path / "urls.txt"
        src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(1500)))
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "aiograb", "get", str(src), "-o", str(out), "-q"]
        cmd += ["-c", str(concurrency), "--per-host", "0"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.requests) < 400:  # well under way, mid-batch
            assert time.monotonic() < deadline
            assert proc.poll() is None
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        first = Counter(r.path_qs for r in server.requests)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
        assert done.returncode == 0, done.stderr
        total = Counter(r.path_qs for r in server.requests)
    refetched = [path for path, n in total.items() if n > 1 and path.startswith("/img/")]
    assert len(refetched) <= concurrency, (len(refetched), sum(first.values()))
    rows = manifest(out)
    assert len(rows) == 1500
    assert all(r["state"] == "ok" for r in rows)
