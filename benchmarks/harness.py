"""What the get benchmarks share: one child process measured from spawn to exit (wall, CPU
from ``os.wait4`` and its process tree, the child's own peak RSS, peak threads), the files
it left, and the machine a result was measured on. Split out of ``bench_get.py``."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from proctree import ProcessTree

from aiograb.bench._measure import compile_bytecode

HERE = Path(__file__).resolve().parent
JOURNAL = "aiograb-journal.sqlite"
POLL_SECONDS = 0.02
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measurement:
    """One child process, start to exit."""

    name: str
    exit_code: int
    wall: float  # seconds from spawn to exit
    user: float
    sys: float
    peak_rss_mb: float  # the child's own VmHWM (not ru_maxrss: see proctree.py)
    peak_threads: int  # max len(/proc/<pid>/task) over the polls
    server_cpu: float = 0.0  # CPU seconds the server spent during this run
    files: int = 0  # files found in the output folder afterwards
    bytes: int = 0
    ok: int = 0  # what the client says it stored
    interrupted_at: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    series: list[dict[str, float]] = field(default_factory=list)  # sampled over time
    peak_tree_rss_mb: float = 0.0  # the sum of every process of its tree's VmHWM
    tree_cpu: float = 0.0  # user + sys of the whole tree (ProcessTree.cpu_seconds)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall if self.wall else 0.0

    @property
    def cpu_ms_per_file(self) -> float:
        return 1000 * self.cpu / self.files if self.files else float("inf")

    def row(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("series", "summary")}
        d |= {
            "cpu": self.cpu,
            "files_per_s": self.files_per_s,
            "cpu_ms_per_file": self.cpu_ms_per_file,
        }
        return d


# -- measuring one child ---------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    """user + sys CPU seconds of a live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _journal_rows(path: Path) -> tuple[int, int]:
    """(rows ingested, rows done) in an aiograb journal another process is writing."""
    if not path.exists():
        return 0, 0
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        ) as db:
            total = db.execute("SELECT max(id) FROM items").fetchone()[0] or 0
            done = db.execute("SELECT count(*) FROM items WHERE state != 'pending'").fetchone()[0]
            return int(total), int(done)
    except sqlite3.Error:
        return -1, -1


def measure(
    name: str,
    cmd: list[str],
    log: Path,
    *,
    timeout: float,
    server_pid: int,
    interrupt_after: float | None = None,
    journal: Path | None = None,
    series_every: float = 1.0,
    env: dict[str, str] | None = None,
) -> Measurement:
    """Run ``cmd`` to its end; poll threads and RSS every 20 ms; SIGINT it after
    ``interrupt_after`` seconds, SIGKILL it after ``timeout`` seconds. The aiograb
    sources it imports are byte-compiled first, as an installed aiograb's are."""
    compile_bytecode(env, cmd)
    server0 = _proc_cpu(server_pid)
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    tree = ProcessTree(proc.pid)
    peak_threads, series, next_sample = 0, [], 0.0
    interrupted_at: float | None = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        now = time.perf_counter() - t0
        if pid:
            break
        peak_threads = max(peak_threads, _threads(proc.pid))
        tree.poll(now)
        if now >= next_sample:
            sample = {"t": round(now, 2), "rss_mb": round(_rss_mb(proc.pid), 1)}
            if journal is not None:
                sample["rows_ingested"], sample["rows_done"] = _journal_rows(journal)
            series.append(sample)
            next_sample = now + series_every
        if interrupt_after is not None and interrupted_at is None and now >= interrupt_after:
            proc.send_signal(signal.SIGINT)
            interrupted_at = now
        if now >= timeout:
            proc.kill()
        time.sleep(POLL_SECONDS)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Measurement(
        name=name,
        exit_code=proc.returncode,
        wall=now,
        user=usage.ru_utime,
        sys=usage.ru_stime,
        peak_rss_mb=tree.own_mb,
        peak_tree_rss_mb=tree.tree_mb,
        tree_cpu=tree.cpu_seconds(usage.ru_utime + usage.ru_stime),
        peak_threads=peak_threads,
        server_cpu=_proc_cpu(server_pid) - server0,
        interrupted_at=interrupted_at,
        series=series,
    )


_BOOKKEEPING = frozenset(
    {"aiograb.lock", "manifest.jsonl", "plan.json", "input.jsonl", "progress.json"}
)


def count_files(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``, not counting aiograb's own files: the journal,
    manifest and lock, and with ``--procs``/``--dask`` the plan and each part's
    (``parts/NNNNN/``) journal, manifest, lock, input and progress."""
    n = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(root).parts
        ours = rel == () or (len(rel) == 2 and rel[0] == "parts" and rel[1].isdigit())
        for f in filenames:
            if ours and (f.startswith(JOURNAL) or f in _BOOKKEEPING):
                continue
            n += 1
            size += os.stat(os.path.join(dirpath, f)).st_size
    return n, size


def machine() -> dict[str, Any]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("aiohttp", "uvloop", "aiograb")},
        "aiograb_commit": _git("rev-parse", "--short", "HEAD"),
        "src_modified": bool(_git("status", "--porcelain", "src")),
    }


def _git(*args: str) -> str:
    """Read-only git queries, so that a result names the code it measured."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=HERE.parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()
