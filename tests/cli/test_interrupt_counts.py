"""An interrupted ``aiograb get`` says in its summary what its bar said last (issue #10 item 18).

The real command runs on a pseudo-terminal (so rich draws its bar), is stopped with
SIGINT mid-run while the input is still being read, and the bar's last frame, the
``--log-file`` line and the summary must count the same: done = ok + failed, the same
ok/failed for this run, and the same "of ≥N" total (the input was not read to its end).
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aiograb.testing import RunningServer

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = re.compile(r"([\d,]+)(/~?| of ≥)([\d,]+)\s.*?([\d,]+) ok ([\d,]+) failed")
LOG = re.compile(r"aiograb: ([\d,]+)(/~?| of ≥)([\d,]+) done \(([\d,]+) ok, ([\d,]+) failed\)")
HEAD = re.compile(
    r"interrupted .*?: ([\d,]+) ok, ([\d,]+) failed, [\d,]+ pending of (≥?)([\d,]+) URLs"
)
THIS_RUN = re.compile(r"this run: ([\d,]+) fetched \(([\d,]+) ok, ([\d,]+) failed\)")


def _ints(*texts: str) -> list[int]:
    return [int(t.replace(",", "")) for t in texts]


def _read_all(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the other end closed
            return
        if not data:
            return
        into.append(data)


def _frames(chunks: list[bytes]) -> list[re.Match[str]]:
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return list(BAR.finditer(text))


@pytest.mark.parametrize("engine", ["async", "threads", "sync"])
def test_interrupted_summary_counts_what_the_bar_showed(
    server: RunningServer, tmp_path: Path, engine: str
) -> None:
    # More lines than one read of the input (2,000), slow enough to stop mid-run.
    urls = [
        server.url(f"/status/404?i={i}" if i % 5 == 0 else f"/img/{i}.png?latency_ms=30")
        for i in range(3000)
    ]
    (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
    log = tmp_path / "log.txt"
    cmd = [sys.executable, "-m", "aiograb", "get", str(tmp_path / "urls.txt")]
    cmd += ["-o", str(tmp_path / "out"), "--engine", engine, "-c", "4", "--retries", "0"]
    cmd += ["--log-file", str(log)]
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "300", "TERM": "xterm"}
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env, text=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(master, chunks), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any(_ints(m[1])[0] >= 20 for m in _frames(chunks)):
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "no progress on the bar"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    os.close(master)
    assert proc.returncode == 130, stdout

    bar = _frames(chunks)[-1]
    head, this_run = HEAD.search(stdout), THIS_RUN.search(stdout)
    assert head is not None, stdout
    assert this_run is not None, stdout
    done, estimate, ok, failed = _ints(bar[1], bar[3], bar[4], bar[5])
    # The bar's total is the file's line count, marked as an estimate; stopped before
    # the second read of 2,000 rows, the summary's is a floor, never a false total.
    assert (bar[2], estimate) == ("/~", len(urls))
    assert (head[3], head[4]) == ("≥", "2,000"), stdout
    assert _ints(head[1], head[2]) == [ok, failed]
    assert _ints(this_run[1], this_run[2], this_run[3]) == [done, ok, failed]
    assert 20 <= done < len(urls)
    last_line = LOG.findall(log.read_text(encoding="utf-8"))[-1]
    assert last_line == (bar[1], bar[2], bar[3], bar[4], bar[5])
