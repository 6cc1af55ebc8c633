"""Measuring a client process from outside: wall time, CPU time of the process tree,
peak RSS and peak OS threads; and the CPU a server process spent meanwhile.

CPU comes from ``os.wait4``'s rusage, which covers the child and the children it
waited for (a process pool's workers), and nothing of this process or of the
server. Peak RSS is the child's ``VmHWM`` (its own address space since exec),
polled from ``/proc``: ``ru_maxrss`` would not do, because Linux carries the
peak over from the forked copy of this (bigger) process into the exec'd child.
Threads are counted by polling ``/proc/<pid>/task``.

Before a child runs, the aiograb sources it will import are byte-compiled
(``compile_bytecode``), as installing a wheel does: a process that finds no ``.pyc``
compiles aiograb's modules from source at start (~60 ms of CPU for what ``aiograb get``
imports), which no installed aiograb pays.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcessStats",
    "cpu_seconds",
    "measure_process",
    "peak_rss_mb",
    "peak_vm_mb",
]

POLL_S = 0.02
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """One child process, spawn to exit."""

    exit_code: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    peak_vm_mb: float
    peak_threads: int
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _status_mb(pid: int, field: str) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (``VmHWM``) of a running process in MB (0.0 when unknown)."""
    return _status_mb(pid, "VmHWM:")


def peak_vm_mb(pid: int) -> float:
    """Peak virtual memory (``VmPeak``: address space reserved, e.g. thread stacks) in MB."""
    return _status_mb(pid, "VmPeak:")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (Linux; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def compile_bytecode(env: Mapping[str, str] | None = None, cmd: Sequence[str] = ()) -> None:
    """Byte-compile every aiograb source tree a child may import: this one, and each
    ``PYTHONPATH`` entry holding an ``aiograb`` package (from ``env``, or an
    ``env PYTHONPATH=...`` prefix of ``cmd``). Files already compiled are only checked.

    Why: with ``PYTHONDONTWRITEBYTECODE=1`` (this project's sandbox sets it) or a tree it
    cannot write to, Python never keeps the ``.pyc`` it makes, and every process compiles
    aiograb's ~130 modules again: importing what ``aiograb get`` imports took 0.378 s
    of CPU against 0.317 s compiled (``benchmarks/bench_bytecode.py``).
    """
    import aiograb

    paths = [(env if env is not None else os.environ).get("PYTHONPATH", "")]
    paths += [arg.partition("=")[2] for arg in cmd if arg.startswith("PYTHONPATH=")]
    roots = {Path(aiograb.__file__).resolve().parent}
    for entry in os.pathsep.join(paths).split(os.pathsep):
        if entry and (Path(entry) / "aiograb" / "__init__.py").is_file():
            roots.add((Path(entry) / "aiograb").resolve())
    for root in sorted(roots):
        compileall.compile_dir(root, quiet=2)  # a tree it cannot write: measured as it is


def measure_process(
    cmd: list[str], *, timeout: float, cwd: str | None = None, env: dict[str, str] | None = None
) -> ProcessStats:
    """Run ``cmd`` to its end and measure it (its aiograb sources byte-compiled first:
    ``compile_bytecode``). On timeout it is killed (exit code -9)."""
    compile_bytecode(env, cmd)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd, env=env
        )
        peak_threads, peak_rss, peak_vm = 0, 0.0, 0.0
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_threads = max(peak_threads, _threads(proc.pid))
            peak_rss = max(peak_rss, peak_rss_mb(proc.pid))
            peak_vm = max(peak_vm, peak_vm_mb(proc.pid))
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(POLL_S)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        stderr = err.read()[-4000:]
    if not peak_rss:  # not Linux, or too short to be seen: the best we have
        peak_rss = usage.ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)
    return ProcessStats(
        exit_code=proc.returncode,
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        peak_rss_mb=peak_rss,
        peak_vm_mb=peak_vm,
        peak_threads=peak_threads,
        stderr=stderr,
    )
