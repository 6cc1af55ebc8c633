"""What the ``aiograb`` command does before it imports itself: start the parts' fork
server for ``get --procs N`` or ``get --dask local:N``.

The server's imports (the engine, and Dask for ``--dask``) are on the way to the
first part. Started here, they run on another core while this process imports
the CLI, reads the options and writes the plan, rather than after them (measured
in BENCHMARKS.md, "the fork server before the CLI"). This is a guess from the raw
arguments; argparse reads them properly later. When it guesses wrong, the cost is
a server started for nothing, which exits with this process, or no early start.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiograb._core.config import DEFAULT_TRANSPORT, TRANSPORTS
from aiograb._http.default import ENV_VAR

if TYPE_CHECKING:
    from aiograb._scale.forkserver import Kind

__all__ = ["start_workers"]


def start_workers(argv: Sequence[str]) -> None:
    """Start the fork server when ``argv`` (without the program) asks for parts in
    processes of this machine: ``get … --procs N`` with N other than 1 (or ``auto``),
    or ``get … --dask local:N``."""
    if not argv or argv[0] != "get":
        return
    procs, dask = _value(argv, "--procs"), _value(argv, "--dask")
    if dask is not None and dask.startswith("local:"):
        kind: Kind = "dask"
    elif procs is not None and procs != "1":
        kind = "procs"
    else:
        return
    transport = (
        _value(argv, "--transport") or os.environ.get(ENV_VAR, "").strip() or DEFAULT_TRANSPORT
    )
    if transport in TRANSPORTS:
        from aiograb._scale import forkserver  # only now: one process needs none of it

        forkserver.start(kind, transport)


def _value(argv: Sequence[str], flag: str) -> str | None:
    """The last value given to ``flag`` (``--flag V`` or ``--flag=V``) before ``--``."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == flag and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith(flag + "="):
            found = arg[len(flag) + 1 :]
    return found
