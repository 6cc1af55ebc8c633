"""The journal deleted during a run, its folder kept (a cleanup of ``*.sqlite``, a
careless ``rm``): SQLite goes on writing into the deleted file, so every row recorded
would be gone with the process, and the next run would fetch everything again. The
run writes the journal back from the connection it holds open at its next commit, and
goes on in that copy: nothing recorded is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiograb._store.journal import JOURNAL_NAME, Journal
from aiograb.testing import ServerConfig, ServerProcess
from tests.helpers import wait_for_files


@pytest.mark.slow
@pytest.mark.parametrize(
    "how", [["--engine", "async"], ["--engine", "threads"], ["--procs", "2"]], ids=" ".join
)
def test_a_journal_deleted_mid_run_is_written_back(tmp_path: Path, how: list[str]) -> None:
    n = 800
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    with ServerProcess(ServerConfig(latency_ms=50)) as srv:
        (tmp_path / "u.txt").write_text("".join(f"{srv.base_url}/img/{i}.jpg\n" for i in range(n)))
        argv = [sys.executable, "-m", "aiograb", "get", "u.txt", "-o", str(out), "-c", "16"]
        argv += [*how, "--summary-json", str(summary)]
        run = subprocess.Popen(
            argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        wait_for_files(run, out, (".jpg",), at_least=100)
        time.sleep(0.6)  # past a time-based commit: rows are in the file
        deleted = list(out.rglob(f"{JOURNAL_NAME}*"))
        assert any(p.name == JOURNAL_NAME for p in deleted)
        for p in deleted:  # the journal with its -wal and -shm, as rm journal* does
            p.unlink()
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert "journal: deleted during the run, and written back" in stdout
        data = json.loads(summary.read_text())
        assert data["journals_written_back"] >= 1
        assert data["ok"] == n
        journals = list(out.rglob(JOURNAL_NAME))
        assert journals
        ok = 0
        for path in journals:
            journal = Journal(path, readonly=True)
            ok += journal.counts().get("ok", 0)
            journal.close()
        assert ok == n  # every row, the ones recorded before the deletion too
        assert not list(out.rglob(f"{JOURNAL_NAME}.restore"))
        manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
        assert len(manifest) == n
        assert all(r["state"] == "ok" for r in manifest)
        # The next run knows every URL: it fetches nothing.
        again = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(summary.read_text())["fetched"] == 0
    assert json.loads(summary.read_text())["journals_written_back"] == 0


def test_write_back_keeps_the_rows_and_goes_on_in_the_copy(tmp_path: Path) -> None:
    """The journal's own step, without a run: rows recorded before and after it."""
    from aiograb._core.models import Outcome
    from aiograb._store.journal import NewRow

    path = tmp_path / JOURNAL_NAME
    journal = Journal(path)
    journal.add([NewRow(f"http://127.0.0.1/{i}", f"http://127.0.0.1/{i}", i) for i in range(10)])
    for p in tmp_path.glob(f"{JOURNAL_NAME}*"):
        p.unlink()
    journal.write_back()
    assert path.is_file()
    journal.record(1, Outcome(url="http://127.0.0.1/0", ok=False, attempts=1))
    journal.flush()
    journal.close()
    again = Journal(path, readonly=True)
    assert sum(again.counts().values()) == 10
    assert again.counts()["failed"] == 1
    again.close()
    assert not (tmp_path / f"{JOURNAL_NAME}.restore").exists()
