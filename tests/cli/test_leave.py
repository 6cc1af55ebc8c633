"""The command ends without the interpreter's teardown, and loses nothing by it (cli.leave)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import aiograb_cli


def _leave(
    tmp_path: Path, before: str, code: int = 3, *flags: str
) -> subprocess.CompletedProcess[str]:
    script = (
        "import atexit, sys, threading, time\n"
        "from aiograb.cli import leave\n"
        f"{before}\n"
        "print('unflushed', end='')\n"  # to a pipe: block-buffered
        f"leave({code})\n"
    )
    return subprocess.run(
        [sys.executable, *flags, "-c", script],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_exit_code_the_output_and_the_atexit_handlers_stand(tmp_path: Path) -> None:
    done = _leave(tmp_path, "atexit.register(lambda: open('ran', 'w').write('yes'))")
    assert (done.returncode, done.stdout, done.stderr) == (3, "unflushed", "")
    assert (tmp_path / "ran").read_text() == "yes"


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    # A normal exit waits for a thread that is not a daemon: so does leave.
    before = (
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    open('late', 'w').write('done')\n"
        "threading.Thread(target=late).start()"
    )
    done = _leave(tmp_path, before)
    assert (done.returncode, done.stdout) == (3, "unflushed")
    assert (tmp_path / "late").read_text() == "done"


def test_a_profiler_still_writes_its_results(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("from aiograb.cli import leave\nleave(0)\n")
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", "out.prof", str(script)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.prof").stat().st_size > 0


def test_a_command_run_to_its_end_keeps_its_output(tmp_path: Path) -> None:
    # The manifest and the summary are written and closed before the process leaves.
    (tmp_path / "urls.txt").write_text("http://127.0.0.1:1/a.jpg\nnot a url\n")
    done = aiograb_cli(
        "get", "urls.txt", "-o", "out", "-q", "--retries", "0", "--summary-json", "s.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    ]
    assert sorted(row["error"] for row in rows) == ["connect_refused", "invalid_url"]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["errors"] == {"invalid_url": 1, "connect_refused": 1}


def test_the_teardown_is_skipped(tmp_path: Path) -> None:
    # What only the interpreter's teardown would do: free a module's last object.
    before = (
        "import os\n"
        "fd = os.open('freed', os.O_WRONLY | os.O_CREAT)\n"
        "class Freed:\n"
        "    def __del__(self, write=os.write, fd=fd):\n"  # module globals may be gone
        "        write(fd, b'yes')\n"
        "kept = Freed()"
    )
    done = _leave(tmp_path, before, 0)
    assert (done.returncode, done.stdout) == (0, "unflushed")
    assert (tmp_path / "freed").read_text() == ""
    # The same program with a normal exit frees it: the check above can fail.
    normal = _leave(tmp_path, before.replace("kept = Freed()", "kept = Freed()\nleave = sys.exit"))
    assert normal.returncode == 3
    assert (tmp_path / "freed").read_text() == "yes"
