"""Issue 10, items 1, 3, 12, 15: the output folder is ours, one run at a time, checked first.

The real CLI in subprocesses against the real local server; permissions tried as
a plain user with setpriv.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiograb._core.stats import ExitCode
from aiograb._store.journal import JOURNAL_NAME, Journal, NewRow
from aiograb._store.lock import LOCK_NAME, OutputLock
from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli, manifest


def _one_error_line(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aiograb: error: ")
    return lines[0]


def _unique(server: RunningServer) -> str:
    """A URL no other test asks for: whether it was fetched is then exact."""
    return server.url(f"/img/{uuid.uuid4().int % 10**9}.png")


def _fetched(server: RunningServer, url: str) -> bool:
    path = url.removeprefix(server.base_url)
    return any(r.path_qs == path for r in server.requests)


# -- item 1: never follow a symlink for our own paths --------------------------------


def test_symlinked_tmp_folder_is_refused_and_its_target_kept(
    tmp_path: Path, server: RunningServer
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.pdf").write_text("years of work")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".aiograb-tmp").symlink_to(precious)
    url = _unique(server)
    line = _one_error_line(aiograb_cli("get", url, "-o", out))
    assert "symbolic link" in line
    assert (precious / "thesis.pdf").read_text() == "years of work"
    assert not _fetched(server, url)


def test_symlinked_lock_file_is_refused(tmp_path: Path, server: RunningServer) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(victim)
    line = _one_error_line(aiograb_cli("get", _unique(server), "-o", out))
    assert "symbolic link" in line
    assert victim.read_text() == "keep me"


# -- item 3: one run per output folder ------------------------------------------------


def test_a_second_run_on_a_locked_folder_exits_2_naming_the_pid(
    tmp_path: Path, server: RunningServer
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    url = _unique(server)
    with OutputLock(out):
        line = _one_error_line(aiograb_cli("get", url, "-o", out))
        assert f"{out} is in use by pid {os.getpid()}" in line
    assert not _fetched(server, url)
    result = aiograb_cli("get", url, "-o", out, "-q")  # released: the run goes ahead
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_two_real_runs_on_one_folder(tmp_path: Path, server: RunningServer) -> None:
    out = tmp_path / "out"
    stall = server.url(f"/stall/{uuid.uuid4().int % 10**6}.jpg")
    first = subprocess.Popen(
        [sys.executable, "-m", "aiograb", "get", stall, "-o", out, "-q", "--retries", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (out / LOCK_NAME).exists() or not (out / LOCK_NAME).read_text().strip():
            assert time.monotonic() < deadline, "the first run never took the lock"
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        second = aiograb_cli("get", _unique(server), "-o", out)
        line = _one_error_line(second)
        assert f"is in use by pid {first.pid}" in line
    finally:
        first.terminate()
        first.communicate(timeout=30)
    assert first.returncode == 130  # interrupted cleanly, resumable
    assert manifest(out)[0]["state"] == "pending"


# -- item 15: paths checked before any download ---------------------------------------


def test_out_naming_a_file(tmp_path: Path, server: RunningServer) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    url = _unique(server)
    line = _one_error_line(aiograb_cli("get", url, "-o", target))
    assert "exists and is not a folder" in line
    assert target.read_text() == "mine"
    assert not _fetched(server, url)


def test_summary_json_into_a_missing_folder_is_found_before_the_run(
    tmp_path: Path, server: RunningServer
) -> None:
    url = _unique(server)
    result = aiograb_cli(
        "get", url, "-o", tmp_path / "out", "--summary-json", tmp_path / "x/s.json"
    )
    line = _one_error_line(result)
    assert "--summary-json" in line
    assert "no such folder" in line
    assert not _fetched(server, url)


def test_summary_json_to_stdout(tmp_path: Path, server: RunningServer) -> None:
    result = aiograb_cli("get", _unique(server), "-o", tmp_path / "out", "--summary-json", "-")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is only the JSON
    assert data["counts"] == {"ok": 1}
    assert "aiograb: done" in result.stderr


def test_manifest_export_format_from_the_extension(tmp_path: Path, server: RunningServer) -> None:
    out = tmp_path / "out"
    url = _unique(server)
    assert aiograb_cli("get", url, "-o", out, "-q").returncode == 0
    result = aiograb_cli("manifest", out, "--to", tmp_path / "m.csv")
    assert result.returncode == 0, result.stderr
    with (tmp_path / "m.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["url"], r["state"]) for r in rows] == [(url, "ok")]
    result = aiograb_cli("manifest", out, "--to", tmp_path / "m.jsonl")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "m.jsonl").read_text())["url"] == url
    line = _one_error_line(aiograb_cli("manifest", out, "--to", tmp_path / "m.xlsx"))
    assert "cannot tell the format" in line
    line = _one_error_line(aiograb_cli("manifest", out, "--to", tmp_path / "no/m.csv"))
    assert "no such folder" in line


@pytest.fixture
def plain_user_dir() -> Iterator[Path]:
    """A folder a plain user (nobody) can enter, under a world-readable /tmp folder."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the CLI as a plain user")
    base = Path(tempfile.mkdtemp(prefix="aiograb-perm-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_unwritable_output_folder_as_a_plain_user(
    plain_user_dir: Path, server: RunningServer
) -> None:
    readonly = plain_user_dir / "readonly"
    readonly.mkdir(mode=0o755)  # owned by root: nobody may not write
    url = _unique(server)
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for out in (readonly, readonly / "sub"):
        result = subprocess.run(
            [*cmd, sys.executable, "-m", "aiograb", "get", url, "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=plain_user_dir,
        )
        line = _one_error_line(result, ExitCode.OS_ERROR)  # the file system refused
        assert "permission denied" in line.lower()
    assert not _fetched(server, url)


# -- item 12: a damaged journal -------------------------------------------------------


def _real_journal(path: Path, rows: int = 5000) -> None:
    journal = Journal(path)
    journal.add(NewRow(f"http://h/{i}", f"http://h/{i}", i) for i in range(rows))
    journal.close()


def _truncate(path: Path) -> None:
    _real_journal(path)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)


def _truncate_odd(path: Path) -> None:
    _real_journal(path)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - 100)


def _zero(path: Path) -> None:
    _real_journal(path)
    path.write_bytes(b"\0" * path.stat().st_size)


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


def _foreign(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO photos VALUES (1, 'holiday')")
    db.commit()
    db.close()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _damaged_page(path: Path) -> None:
    _real_journal(path)
    raw = bytearray(path.read_bytes())
    raw[4096 * 2 : 4096 * 4] = os.urandom(8192)  # b-tree pages scribbled over
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (_truncate, "truncated"),
        (_truncate_odd, "truncated"),
        (_zero, "all zero bytes"),
        (_garbage, "not an SQLite file"),
        (_foreign, "another program"),
        (_empty, "an empty file"),
        (_damaged_page, "damaged"),
    ],
)
def test_a_damaged_journal_is_one_line(tmp_path: Path, damage: object, why: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    journal = out / JOURNAL_NAME
    damage(journal)  # type: ignore[operator]
    before = journal.read_bytes()
    line = _one_error_line(aiograb_cli("get", "http://127.0.0.1:9/a.png", "-o", out))
    why_shown = line.split("(", 1)[1].rsplit(")", 1)[0]
    expected = f"aiograb: error: {journal} is not an aiograb journal ({why_shown})"
    assert line == expected + ": move it away to start over"
    assert why in line
    assert journal.read_bytes() == before  # untouched: the user decides
