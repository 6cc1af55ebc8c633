"""Issue 11: a disk full at the moment the parts of ``--procs`` start ends the run
with exit 74 and one line, leaves no journal a rerun would refuse, and the rerun
after freeing space runs every part to its end.

A real 2 MB tmpfs (``small_disk`` in conftest.py: needs root, skipped otherwise).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from aiograb._core.stats import Progress
from aiograb._get.sources import open_source
from aiograb._scale.part import _ProgressFile, read_progress
from aiograb._scale.plan import make_plan
from aiograb._store.journal import JOURNAL_NAME
from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli, fill_disk, journal_integrity, manifest

URLS = 30


@pytest.mark.slow
@pytest.mark.parametrize("free_pages", [0, 2, 8])
def test_a_disk_full_when_the_parts_start_exits_74_and_a_rerun_resumes(
    small_disk: Path, tmp_path: Path, server: RunningServer, free_pages: int
) -> None:
    src = tmp_path / "urls.txt"
    src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(URLS)))
    out = small_disk / "out"
    # The plan is written (as the coordinator writes it), then the disk fills up:
    # 0 pages left refuses a part's lock file, 2 its journal's first page, 8 its WAL.
    plan = make_plan(open_source(src), out, 2)
    assert [p.rows for p in plan.parts] != [URLS, 0]  # one host, split over both parts
    filler = fill_disk(small_disk, leave_pages=free_pages)
    cmd = ("get", src, "-o", out, "-q", "--procs", "2")
    first = aiograb_cli(*cmd)
    assert first.returncode == 74, first.stdout + first.stderr  # ExitCode.OS_ERROR
    (line,) = first.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("aiograb: error: part 0000"), line
    assert "no space left" in line
    assert "run the same command again" in line
    assert list(out.glob(f"parts/*/{JOURNAL_NAME}*")) == []  # nothing a rerun would refuse

    filler.unlink()
    second = aiograb_cli(*cmd)
    assert second.returncode == 0, second.stdout + second.stderr
    rows = manifest(out)
    assert len(rows) == URLS
    assert all(r["state"] == "ok" for r in rows)
    for r in rows:
        assert r["path"].startswith("parts/0000")
        assert hashlib.sha256((out / r["path"]).read_bytes()).hexdigest() == r["sha256"]


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_keeps_the_summary_and_a_rerun_finishes(
    small_disk: Path, tmp_path: Path, server: RunningServer
) -> None:
    n = 1500  # about 6 MB of images: the 2 MB disk fills up in the middle of the parts
    src = tmp_path / "urls.txt"
    src.write_text("".join(server.url(f"/img/{i}.png") + "\n" for i in range(n)))
    out = small_disk / "out"
    cmd = ("get", src, "-o", out, "-q", "--procs", "2")
    for _ in range(2):  # the second run finds the disk still full
        first = aiograb_cli(*cmd, "--per-host", "0", timeout=110)
        assert first.returncode == 74, first.stdout + first.stderr
        (line,) = first.stderr.strip().splitlines()  # one line, no traceback
        assert line.startswith("aiograb: error: part 0000"), line
        assert "run the same command again" in line
        # The merged manifest needs space too: the summary still comes, and says how
        # to rebuild the manifest (the parts' journals hold every row).
        assert "stopped: no space left" in first.stdout
        if "merged manifest" in line:
            assert f"aiograb manifest {out} --to {out / 'manifest.jsonl'}" in line
    for journal in out.glob(f"parts/*/{JOURNAL_NAME}"):
        assert journal_integrity(journal) == "ok"

    subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(small_disk)], check=True)
    second = aiograb_cli(*cmd, timeout=110)
    assert second.returncode == 0, second.stdout + second.stderr
    rows = manifest(out)
    assert len(rows) == n
    assert all(r["state"] == "ok" for r in rows)
    for r in rows[::50]:
        assert hashlib.sha256((out / r["path"]).read_bytes()).hexdigest() == r["sha256"]


def test_progress_a_full_disk_refuses_is_skipped(small_disk: Path) -> None:
    # progress.json is only the bar's count: a full disk must not end the part through
    # it (a rerun on a disk still full died of it, with a message naming no file).
    fill_disk(small_disk)
    write = _ProgressFile(str(small_disk))
    write(Progress(ok=3, total=10), force=True)
    assert read_progress(small_disk) is None
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
