"""Live counters of a run, the final ``Summary``, and process resource peaks."""

from __future__ import annotations

import os
import resource
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

__all__ = [
    "ExitCode",
    "InputCounts",
    "Progress",
    "ResourcePeaks",
    "Resumed",
    "Summary",
    "os_threads",
]


class ExitCode(IntEnum):
    """The exit codes of the ``aiograb`` command, defined once.

    ``Summary.exit_code`` gives the first three for a run; the CLI (``_cli/main.py``)
    maps exceptions to the others. Only ``INTERNAL`` means a bug in aiograb.
    """

    OK = 0  # every URL ok
    FAILED = 1  # finished, some URLs failed (see the manifest)
    USAGE = 2  # usage or input error
    INTERNAL = 70  # a bug in aiograb (EX_SOFTWARE)
    OS_ERROR = 74  # the file system refused (EX_IOERR): output folder, disk full, ...
    INTERRUPTED = 130  # Ctrl-C or SIGTERM: run again to resume


def os_threads() -> int:
    """OS threads of this process right now (Linux: /proc; elsewhere Python's count)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB. On Linux its own image's (VmHWM):
    ``ru_maxrss`` keeps the high-water mark of the process it was forked from across
    ``exec``, so a run started by a big parent (a notebook, a test runner) would report
    the parent's memory as its own (measured: 513 MB for a 13.5 MB child)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / (1024 if os.uname().sysname == "Darwin" else 1)


@dataclass(slots=True)
class ResourcePeaks:
    threads: int = 0

    def sample(self) -> None:
        self.threads = max(self.threads, os_threads())


@dataclass(slots=True)
class Progress:
    """Counters the engine updates as outcomes arrive (this run only)."""

    total: int = 0  # rows known so far (grows while the input is read)
    already_done: int = 0  # rows finished by earlier runs
    ok: int = 0
    failed: int = 0
    bytes: int = 0
    input_done: bool = False
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def done(self) -> int:
        return self.ok + self.failed


@dataclass(frozen=True, slots=True)
class InputCounts:
    """Every input record of a run accounted for.

    ``records`` were read (lines of a txt or jsonl file, CSV records, parquet rows);
    ``skipped`` were blank or comments; the rest became rows: ``known`` of them
    repeat a URL already in the journal (a duplicate, or done by an earlier run)
    and ``new`` were added. So ``records == skipped + known + new``, and ``None``
    for counts a source cannot tell (an iterable of URLs has no blank lines).
    """

    records: int
    skipped: int
    known: int
    new: int


@dataclass(frozen=True, slots=True)
class Resumed:
    """What the output folder held when the run started: ``rows`` from a run begun
    at ``started`` (Unix time; None when the journal predates the field)."""

    started: float | None
    rows: int
    ok: int
    failed: int


@dataclass(frozen=True, slots=True)
class Summary:
    """The result of a ``download`` run. ``exit_code`` is what the CLI returns."""

    out_dir: Path
    manifest: Path
    journal: Path
    counts: dict[str, int]  # by state, over the whole journal
    errors: dict[str, int]  # failed rows by error class, over the whole journal
    fetched: int  # outcomes recorded in this run
    ok: int  # of which ok
    failed: int  # of which failed
    bytes: int  # body bytes stored in this run
    elapsed: float
    retries: int
    peak_threads: int
    peak_rss_mb: float
    interrupted: bool = False
    input: InputCounts | None = None  # what was read of the input in this run
    input_error: str | None = None  # the input broke mid-stream (rows before it kept)
    input_read: bool = True  # False: stopped before the input's end (counts are a floor)
    storage_error: str | None = None  # the disk filled up: stopped cleanly (exit 74)
    # What stopped it: disk_full, not_writable (OUT was made read-only), or folder_lost
    # (OUT was removed or replaced under the run)
    storage_stop: str | None = None
    manifest_written: bool = True  # False: storage_error says how to rebuild it
    journals_written_back: int = 0  # the journal was deleted under the run: written back
    resumed: Resumed | None = None  # the folder held an earlier run
    # (per-host limit, share of the run it held requests back), when it was sampled
    per_host_held: tuple[int, float] | None = None
    io_threads: int = 0  # the fixed IO pool's size (counted in peak_threads)
    files_by_io_pool: int = 0  # files the IO pool stored in this run (the rest: the loop)
    processes: int = 1  # event-loop processes (--procs, --dask): peak_threads is
    # the largest of theirs, peak_rss_mb their sum
    part_errors: tuple[str, ...] = ()  # parts whose task failed for good (rerun resumes them)

    @property
    def folder_lost(self) -> bool:
        """Whether OUT was removed or replaced under the run (no manifest was written)."""
        return self.storage_stop == "folder_lost"

    @property
    def files_per_second(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.storage_error is not None:
            return int(ExitCode.OS_ERROR)  # the disk filled up: free space and run again
        if self.interrupted:
            return int(ExitCode.INTERRUPTED)
        if self.input_error is not None:
            return int(ExitCode.USAGE)
        remaining = self.counts.get("pending", 0) + self.counts.get("failed", 0)
        return int(ExitCode.FAILED if remaining else ExitCode.OK)
