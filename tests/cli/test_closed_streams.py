"""The log and the summary are side channels: a reader that leaves (``2>&1 | head``) or
a log file that cannot be written never stops the download, nor changes its exit code."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from aiograb.testing import RunningServer, ServerConfig, ServerProcess
from tests.helpers import manifest


def _get_with_readers_that_leave(tmp_path: Path, urls: list[str], *flags: str) -> int:
    """``aiograb get -v`` whose stdout and stderr readers leave after its first line."""
    (tmp_path / "urls.txt").write_text("".join(f"{url}\n" for url in urls))
    run = subprocess.Popen(
        [sys.executable, "-m", "aiograb", "get", "urls.txt", "-o", "out", "-v", *flags],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert run.stderr is not None
    assert run.stdout is not None
    first = run.stderr.readline()
    run.stderr.close()
    run.stdout.close()
    code = run.wait(timeout=120)
    assert first.startswith(b"aiograb: "), first  # the log had begun
    return code


def test_a_log_reader_that_leaves_stops_nothing(tmp_path: Path) -> None:
    # Every URL fails at once (nothing listens on port 1): each is a -v line to stderr.
    urls = [f"http://127.0.0.1:1/{i}.jpg" for i in range(2000)]
    code = _get_with_readers_that_leave(tmp_path, urls, "--retries", "0")
    rows = manifest(tmp_path / "out")
    errors = Counter(row["error"] for row in rows)
    assert code == 1, (code, errors)  # some URLs failed: the run's own code, no traceback's
    assert len(rows) == 2000, errors
    assert set(errors) == {"connect_refused"}, errors


def test_a_summary_reader_that_leaves_keeps_the_exit_code(
    tmp_path: Path, server: RunningServer
) -> None:
    urls = ["http://127.0.0.1:1/refused.jpg"] + [server.url(f"/img/{i}.png") for i in range(50)]
    code = _get_with_readers_that_leave(
        tmp_path, urls, "--retries", "0", "--log-interval", "0.01", "--summary-json", "-"
    )
    assert code == 1
    rows = manifest(tmp_path / "out")
    assert sorted(str(row["state"]) for row in rows) == ["failed"] + ["ok"] * 50
    for row in rows:
        if row["state"] == "ok":
            assert (tmp_path / "out" / str(row["path"])).stat().st_size == row["bytes"]


def test_a_log_file_that_cannot_be_written_is_said_once(
    tmp_path: Path, server: RunningServer
) -> None:
    (tmp_path / "urls.txt").write_text("".join(server.url(f"/img/{i}.gif\n") for i in range(20)))
    flags = ["-v", "--log-file", "/dev/full", "--log-interval", "0.01"]
    done = subprocess.run(
        [sys.executable, "-m", "aiograb", "get", "urls.txt", "-o", "out", *flags],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "no more log lines" in line]
    assert warnings == [
        "aiograb: warning: no more log lines: /dev/full: [Errno 28] No space left on device"
    ]
    assert "done: 20 ok, 0 failed" in done.stdout
    assert len(manifest(tmp_path / "out")) == 20


def test_a_terminal_that_hangs_up_mid_run_stops_it_gently(tmp_path: Path) -> None:
    # The progress bar's terminal goes away (an ssh session that dropped): writes to it
    # fail (EIO) and the hangup arrives. The run stops as on Ctrl-C: 130, a whole
    # manifest, every row ok or pending.
    with ServerProcess(ServerConfig(latency_ms=30)) as srv:
        urls = [f"{srv.base_url}/img/{i}.jpg" for i in range(2000)]
        (tmp_path / "urls.txt").write_text("".join(f"{url}\n" for url in urls))
        controller, terminal = pty.openpty()
        run = subprocess.Popen(
            [sys.executable, "-m", "aiograb", "get", "urls.txt", "-o", "out", "-c", "20"],
            cwd=tmp_path,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
        )
        os.close(terminal)
        try:
            shown = b""
            deadline = time.monotonic() + 30
            while b"ok" not in shown:  # the bar is up
                assert time.monotonic() < deadline, shown
                shown += os.read(controller, 65536)
            time.sleep(0.5)
        finally:
            os.close(controller)  # the terminal goes away
        time.sleep(0.3)
        run.send_signal(signal.SIGHUP)
        code = run.wait(timeout=60)
    assert code == 130
    rows = manifest(tmp_path / "out")
    assert len(rows) == len(urls)
    assert {row["state"] for row in rows} <= {"ok", "pending"}
    assert any(row["state"] == "ok" for row in rows)
