"""Issue 10, item 9: a full disk ends the run cleanly (exit 74), the journal stays
consistent, and a rerun after freeing space finishes the rest.

A real 2 MB tmpfs mounted for the test (needs root; skipped otherwise).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiograb._store.check import check_journal
from aiograb._store.journal import JOURNAL_NAME
from aiograb.testing import RunningServer
from tests.helpers import manifest


@pytest.fixture
def small_disk() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="aiograb-full-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)
        where.rmdir()


def _integrity(journal: Path) -> str:
    db = sqlite3.connect(f"{journal.as_uri()}?mode=ro", uri=True)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
def test_a_full_disk_stops_cleanly_and_a_rerun_finishes(
    small_disk: Path, tmp_path: Path, server: RunningServer
) -> None:
    src = tmp_path / "urls.txt"
    src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(1500)))
    out = small_disk / "out"
    cmd = [sys.executable, "-m", "aiograb", "get", str(src), "-o", str(out), "-q"]
    first = subprocess.run([*cmd, "--per-host", "0"], capture_output=True, text=True, timeout=110)
    assert first.returncode == 74, first.stderr  # ExitCode.OS_ERROR
    (line,) = first.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"aiograb: error: {out}: no space left")
    assert "run the same command again" in line
    assert "stopped: no space left" in first.stdout
    # Nothing partial: no temporaries, no half-written manifest; the journal is sound.
    assert list((out / ".aiograb-tmp").iterdir()) == []
    assert not (out / "manifest.jsonl.tmp").exists()
    check_journal(out / JOURNAL_NAME)
    assert _integrity(out / JOURNAL_NAME) == "ok"
    if "rebuild it with 'aiograb manifest" not in line:
        rows = manifest(out)
        assert len(rows) == 1500
        assert {r["state"] for r in rows} <= {"ok", "pending", "failed"}
        assert {r["error"] for r in rows if r["state"] == "failed"} <= {"disk_full"}

    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(small_disk)], check=True)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    assert second.returncode == 0, second.stderr
    rows = manifest(out)
    assert len(rows) == 1500
    assert all(r["state"] == "ok" for r in rows)
    for r in rows[::50]:
        assert hashlib.sha256((out / r["path"]).read_bytes()).hexdigest() == r["sha256"]
