"""The fork server the parts' processes come from (``--procs N``, ``--dask local:N``).

A fresh single-threaded interpreter (``multiprocessing``'s fork server) imports
what a part runs once, then forks each pool process or LocalCluster worker from
itself: no import per process, and no inherited loop or threads. Its imports
(~0.2 s for ``--procs``, ~0.8 s with Dask) are on the way to the first part, so
the CLI starts it before it imports itself (``_cli/early.py``), and they run on
another core beside the coordinator's own. The standard library only, so that
starting it early costs nothing.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["PART_MODULES", "Kind", "available", "preload", "start"]

# What a part runs (the transport's module is added by name; a missing module is skipped).
PART_MODULES = ("aiograb._scale.part", "aiograb._get.download", "uvloop")

Kind = Literal["procs", "dask"]


def available() -> bool:
    """Whether this platform has a fork server (Linux, macOS); ``spawn`` elsewhere."""
    import multiprocessing  # here: a one-process run never needs it (~8 ms)

    return "forkserver" in multiprocessing.get_all_start_methods()


def preload(kind: Kind, transport: str) -> list[str]:
    """The modules the server imports before it forks: a pool process's (``procs``)
    or a Dask worker's (``dask``), and a part's with ``transport``."""
    first = "aiograb._scale.procs" if kind == "procs" else "distributed"
    return [first, *PART_MODULES, f"aiograb._http.{transport}_transport"]


def start(kind: Kind, transport: str) -> None:
    """Start the server now, with ``kind``'s modules to import. Nothing where there is
    no fork server, or when one runs already: a process has one server, and the
    first preload stands (a later pool's processes import what it lacks themselves).

    The server and ``multiprocessing``'s resource tracker (started with it) ignore
    SIGHUP, and so does every process forked from the server: when the terminal goes
    away, the hangup reaches the whole process group, and only the coordinator acts
    on it (it stops the parts gently, as on Ctrl-C). Killed by it, the server would
    take the pool's view of its processes with it (``BrokenProcessPool``)."""
    if not available():
        return
    import multiprocessing
    import signal
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(preload(kind, transport))
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited by what starts now
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, before)
