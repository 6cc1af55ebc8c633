"""Issue 10, item 9: a full disk ends the run cleanly (exit 74), the journal stays
consistent, and a rerun after freeing space finishes the rest.

A real 2 MB tmpfs mounted for the test (``small_disk`` in conftest.py: needs root).
"""

from __future__ import annotations

import errno
import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from aiograb._store.check import check_journal
from aiograb._store.journal import JOURNAL_NAME, Journal
from aiograb._store.lock import LOCK_NAME, OutputLock
from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli, fill_disk, journal_integrity, manifest


def _with_more_space_again(small_disk: Path, cmd: list[str], out: Path) -> list[dict[str, Any]]:
    """Grow the disk, run ``cmd`` again: it finishes (exit 0, every row ok); the rows."""
    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(small_disk)], check=True)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    assert again.returncode == 0, again.stderr
    rows = manifest(out)
    assert all(r["state"] == "ok" for r in rows), {r["error"] for r in rows}
    return rows


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
    assert journal_integrity(out / JOURNAL_NAME) == "ok"
    if "rebuild it with 'aiograb manifest" not in line:
        rows = manifest(out)
        assert len(rows) == 1500
        assert {r["state"] for r in rows} <= {"ok", "pending", "failed"}
        assert {r["error"] for r in rows if r["state"] == "failed"} <= {"disk_full"}

    rows = _with_more_space_again(small_disk, cmd, out)
    assert len(rows) == 1500
    for r in rows[::50]:
        assert hashlib.sha256((out / r["path"]).read_bytes()).hexdigest() == r["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_a_full_disk_mid_shard_stops_cleanly_and_a_rerun_finishes(
    small_disk: Path, tmp_path: Path, server: RunningServer, fmt: str
) -> None:
    """A shard the disk cannot hold is given up whole (its ``.part`` removed, its rows
    retried by the rerun), never renamed half-written; the run stops with one line."""
    src = tmp_path / "urls.txt"
    src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(600)))
    out = small_disk / "out"
    cmd = [sys.executable, "-m", "aiograb", "get", str(src), "-o", str(out), "-q"]
    cmd += ["--resize", "no", "--format", fmt, "--shard-size", "20", "--dedup", "none"]
    first = subprocess.run([*cmd, "--per-host", "0"], capture_output=True, text=True, timeout=110)
    assert first.returncode == 74, first.stderr
    (line,) = first.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"aiograb: error: {out}: no space left"), line
    assert not list(out.glob("*.part"))
    assert journal_integrity(out / JOURNAL_NAME) == "ok"

    rows = _with_more_space_again(small_disk, cmd, out)
    assert len(rows) == 600
    shards = sorted({str(r["path"]) for r in rows})
    if fmt == "parquet":
        import pyarrow.parquet as pq

        stored = sum(pq.read_table(out / shard).num_rows for shard in shards)
    else:
        import tarfile

        stored = 0
        for shard in shards:
            with tarfile.open(out / shard) as tar:  # whole: it reads to its end
                stored += sum(m.name.endswith(".png") for m in tar.getmembers())
    assert stored == 600  # each image in one shard, once


@pytest.mark.slow
def test_duplicates_of_a_shard_the_disk_refused_are_not_recorded_as_stored(
    small_disk: Path, tmp_path: Path, server: RunningServer
) -> None:
    """With --dedup content, a second copy is recorded as stored where its first copy
    is. When the first copy's shard is given up (the disk filled up), its copies fail
    or stay pending with it, and after the rerun every row names a shard that holds its
    image (never a shard number that a later shard reused)."""
    src = tmp_path / "urls.txt"
    urls = [server.url(f"/img/{i}.png?copy={c}") for i in range(300) for c in "ab"]
    src.write_text("".join(url + "\n" for url in urls))
    out = small_disk / "out"
    cmd = [sys.executable, "-m", "aiograb", "get", str(src), "-o", str(out), "-q"]
    cmd += ["--resize", "no", "--format", "webdataset", "--shard-size", "20"]
    cmd += ["--dedup", "content", "--per-host", "0"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    assert first.returncode == 74, first.stderr
    rows = _with_more_space_again(small_disk, cmd, out)
    assert len(rows) == 600
    members: dict[str, set[str]] = {}
    for shard in {str(r["path"]) for r in rows}:
        with tarfile.open(out / shard) as tar:
            members[shard] = {m.name for m in tar.getmembers()}
    for row in rows:  # a duplicate's key is its first copy's: the image it shares
        assert f"{row['key']}.png" in members[str(row["path"])], row
    firsts = [r for r in rows if r.get("duplicate_of") is None]
    assert len(firsts) == len({r["key"] for r in rows})  # one stored copy per image
    assert len(rows) - len(firsts) >= 300  # every "b" copy at least


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_an_export_to_a_full_disk_leaves_nothing_behind(
    small_disk: Path, tmp_path: Path, server: RunningServer, fmt: str
) -> None:
    src = tmp_path / "urls.txt"
    src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(300)))
    out = tmp_path / "out"  # the run's folder is elsewhere: only the export's disk is full
    assert aiograb_cli("get", src, "-o", out, "-q", "--per-host", "0").returncode == 0
    fill_disk(small_disk, leave_pages=2)
    target = small_disk / f"rows.{fmt}"
    done = aiograb_cli("manifest", out, "--to", target)
    assert done.returncode == 74, done.stderr
    (line,) = done.stderr.strip().splitlines()  # one line, no traceback
    assert "no space left" in line, line
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no .part, no target


def test_a_summary_json_the_disk_cannot_hold_is_said_and_not_left_half_written(
    small_disk: Path, tmp_path: Path, server: RunningServer
) -> None:
    src = tmp_path / "urls.txt"
    src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(50)))
    summary = small_disk / "s.json"
    summary.write_text("{}\n")  # an earlier run's: kept whole rather than truncated
    fill_disk(small_disk)
    done = aiograb_cli("get", src, "-o", tmp_path / "out", "-q", "--summary-json", summary)
    assert done.returncode == 74, done.stderr
    assert done.stderr.strip() == (
        f"aiograb: error: {summary}: no space left on device: free some space, then run the"
        " same command again"
    )
    assert summary.read_text() == "{}\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "s.json"]
    assert len(manifest(tmp_path / "out")) == 50  # the run itself was whole


def test_a_summary_json_to_a_device_is_written_to_it(tmp_path: Path, server: RunningServer) -> None:
    src = tmp_path / "urls.txt"
    src.write_text(server.url("/img/1.png") + "\n")
    done = aiograb_cli("get", src, "-o", tmp_path / "out", "-q", "--summary-json", "/dev/stderr")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr)["ok"] == 1
    assert Path("/dev/stderr").is_symlink() or not Path("/dev/stderr").is_file()


def test_a_summary_json_behind_a_link_is_written_where_it_points(
    tmp_path: Path, server: RunningServer
) -> None:
    src = tmp_path / "urls.txt"
    src.write_text(server.url("/img/1.png") + "\n")
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old\n")
    link.symlink_to(real)
    done = aiograb_cli("get", src, "-o", tmp_path / "out", "-q", "--summary-json", link)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink()
    assert json.loads(real.read_text())["ok"] == 1


@pytest.mark.parametrize("free_pages", [1, 3, 12])
def test_a_journal_a_full_disk_kept_from_being_created_leaves_no_file(
    small_disk: Path, free_pages: int
) -> None:
    # Issue 11: SQLite had created the file, 0 bytes (or a page and its -shm), and the
    # rerun refused it as "not an aiograb journal (an empty file)".
    out = small_disk / "out"
    out.mkdir()
    fill_disk(small_disk, leave_pages=free_pages)
    with pytest.raises(OSError, match="No space left") as refused:
        Journal(out / JOURNAL_NAME)
    assert refused.value.errno == errno.ENOSPC  # a full disk (exit 74), not a damaged journal
    assert refused.value.filename == str(out / JOURNAL_NAME)
    assert list(out.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("free_pages", [0, 2, 8])
def test_a_disk_full_before_the_journal_exists_exits_74_and_a_rerun_starts(
    small_disk: Path, tmp_path: Path, server: RunningServer, free_pages: int
) -> None:
    src = tmp_path / "urls.txt"
    src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(30)))
    out = small_disk / "out"
    out.mkdir()
    filler = fill_disk(small_disk, leave_pages=free_pages)
    first = aiograb_cli("get", src, "-o", out, "-q")
    assert first.returncode == 74, first.stderr  # ExitCode.OS_ERROR
    (line,) = first.stderr.strip().splitlines()
    assert line.startswith(f"aiograb: error: {out}/aiograb"), line
    assert "no space left" in line
    assert "run the same command again" in line
    assert list(out.glob(f"{JOURNAL_NAME}*")) == []  # nothing a rerun would refuse

    filler.unlink()
    second = aiograb_cli("get", src, "-o", out, "-q")
    assert second.returncode == 0, second.stderr
    rows = manifest(out)
    assert len(rows) == 30
    assert all(r["state"] == "ok" for r in rows)
    for r in rows:
        assert hashlib.sha256((out / r["path"]).read_bytes()).hexdigest() == r["sha256"]


def test_a_lock_a_full_disk_refused_is_not_held(small_disk: Path) -> None:
    out = small_disk / "out"
    out.mkdir()
    filler = fill_disk(small_disk)
    with pytest.raises(OSError, match="No space left") as refused:
        OutputLock(out)  # the pid it writes needs a page
    assert refused.value.filename == str(out / LOCK_NAME)  # the CLI's line names the file
    filler.unlink()
    with OutputLock(out):  # the failed attempt kept no descriptor holding the flock
        pass
