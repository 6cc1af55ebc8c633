"""The ``aiograb`` console script's entry point; the CLI lives in ``aiograb._cli``."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``aiograb`` command (``sys.argv[1:]`` by default); return its exit code.
    A run in parts starts its fork server before the CLI is imported (``_cli/early.py``)."""
    from aiograb._cli.early import start_workers

    start_workers(sys.argv[1:] if argv is None else argv)
    from aiograb._cli.main import main as run_command

    return run_command(argv)


def run() -> NoReturn:
    """The console script and ``python -m aiograb``: ``main()``, then the process ends."""
    leave(main())


def leave(code: int) -> NoReturn:
    """End the process with ``code`` as a normal exit would, less the interpreter's
    teardown, which frees every module and object one by one: ~40 ms after a run,
    ~120 ms once Dask is imported (BENCHMARKS.md, "exit without the teardown"). The
    atexit handlers still run (logging's flush, multiprocessing's joins, Dask's), and
    the standard streams are flushed. A normal exit instead while a thread the
    interpreter would wait for still runs, or a profiler or tracer is set (cProfile
    writes its results after the program returns)."""
    main_thread = threading.main_thread()
    waiting = [t for t in threading.enumerate() if t is not main_thread and not t.daemon]
    if waiting or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()  # what Py_Finalize runs first; the rest is teardown
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: the exit code stands
            stream.flush()
    os._exit(code)
