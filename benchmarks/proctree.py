"""The process tree of a measured child: each process's peak RSS and CPU, from /proc.

Used by ``bench_get.measure`` (and so by every benchmark built on it).
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["ProcessTree"]

TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """user + sys CPU seconds of a live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (this kernel has no /proc/<pid>/task/*/children)."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    out[int(entry.name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


class ProcessTree:
    """Peak RSS of a child and of its process tree (pool workers, a shell's jobs).

    ``ru_maxrss`` would not do: Linux carries the peak of the process that forked
    over into the exec'd child (``Popen`` forks this harness: a sleeping child then
    "peaks" at the harness's size). ``VmHWM`` is each process's own peak since exec;
    the tree's figure is their sum, over every process seen in it (descendants are
    looked for every ``SCAN_SECONDS``; one that lives shorter may be missed).
    """

    SCAN_SECONDS = 0.2

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kb: dict[int, int] = {root: 0}
        self.cpu: dict[int, float] = {}  # the last CPU seconds seen of each process
        self._next_scan = 0.0

    def poll(self, now: float) -> None:
        if now >= self._next_scan:
            self._next_scan = now + self.SCAN_SECONDS
            parents = _parents()
            for pid, ppid in parents.items():
                if pid not in self.peak_kb and self._descends(pid, ppid, parents):
                    self.peak_kb[pid] = 0
        for pid, kb in self.peak_kb.items():
            self.peak_kb[pid] = max(kb, _vm_hwm_kb(pid))
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.cpu[pid] = _proc_cpu(pid)

    def _descends(self, pid: int, ppid: int, parents: dict[int, int]) -> bool:
        for _ in range(64):  # a chain, never a cycle; bounded anyway
            if ppid == self.root or ppid in self.peak_kb:
                return True
            if ppid <= 1:
                return False
            ppid = parents.get(ppid, 0)
        return False

    @property
    def own_mb(self) -> float:
        return self.peak_kb[self.root] / 1024

    @property
    def tree_mb(self) -> float:
        return sum(self.peak_kb.values()) / 1024

    def cpu_seconds(self, waited: float) -> float:
        """The tree's CPU: ``wait4``'s (the child and the descendants it waited for),
        or, when larger, the sum of the last seen of each of its processes: a fork
        server's workers are never waited for by the child, so ``wait4`` misses them."""
        return max(waited, sum(self.cpu.values()))
