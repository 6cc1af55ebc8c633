"""The output folder removed during a run (a cleanup job, a careless ``rm -rf``): the
run stops at once with one line and exit 74, instead of fetching every remaining URL
only to throw each body away, and writes no manifest naming files that are gone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiograb.testing import ServerConfig, ServerProcess


@pytest.mark.slow
@pytest.mark.parametrize(
    "how", [["--engine", "async"], ["--engine", "threads"], ["--procs", "2"]], ids=" ".join
)
def test_a_run_whose_folder_is_removed_stops_with_one_line(tmp_path: Path, how: list[str]) -> None:
    n = 3000
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    with ServerProcess(ServerConfig(latency_ms=50)) as srv:
        (tmp_path / "u.txt").write_text("".join(f"{srv.base_url}/img/{i}.jpg\n" for i in range(n)))
        flags = ["-o", str(out), "-c", "8", *how, "--summary-json", str(summary)]
        run = subprocess.Popen(
            [sys.executable, "-m", "aiograb", "get", "u.txt", *flags],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while len(list(out.rglob("*.jpg"))) < 20:  # some files are in place
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        out.rename(tmp_path / "gone")  # at once, as rm -rf would be if it were atomic
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 74, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("aiograb: error:")]
    assert len(errors) == 1, stderr
    assert "the output folder was removed or replaced during the run" in errors[0]
    assert "stopped: the output folder was removed during the run" in stdout
    assert "manifest: none (its folder is gone)" in stdout
    data = json.loads(summary.read_text())
    assert data["folder_lost"] is True
    assert data["exit_code"] == 74
    assert data["fetched"] < n // 2  # stopped at the first file it could not store, not at the end
    assert not out.exists()  # nothing of it was made again: no manifest, no shard folder
    shutil.rmtree(tmp_path / "gone")
