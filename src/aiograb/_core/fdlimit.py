"""Concurrency that fits the process's file-descriptor limit (``ulimit -n``).

Each request in flight holds a socket, and may hold a spilled temporary file;
the run itself needs a few more (the journal and its WAL, the lock, stdio,
the event loop, the image workers' pipes). ``-c 2000`` under ``ulimit -n 256``
would run out of descriptors half-way and fail on whatever opens a file next
(the manifest). The run is capped at start instead, with one warning line::

    limits, warning = fit_to_fd_limit(Limits(concurrency=2000))
    # warning: "-c 2000 needs about 4,064 file descriptors but ulimit -n is 256: ..."
"""

from __future__ import annotations

import dataclasses
import logging
import resource

from aiograb._core.config import Limits

__all__ = ["FDS_PER_REQUEST", "RESERVED_FDS", "fd_limit", "fit_limits", "fit_to_fd_limit"]

FDS_PER_REQUEST = 2  # the socket, and a spilled body's temporary file
RESERVED_FDS = 64  # journal, WAL, shm, lock, stdio, loop, resolver, workers' pipes


def fd_limit() -> int | None:
    """The soft limit on open files of this process, None when unlimited or unknown."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


def fit_to_fd_limit(limits: Limits, soft_limit: int | None = None) -> tuple[Limits, str | None]:
    """``limits`` with ``concurrency`` lowered to what the descriptor limit allows,
    and a one-line warning when it was lowered (else None)."""
    soft = fd_limit() if soft_limit is None else soft_limit
    if soft is None:
        return limits, None
    fits = max(1, (soft - RESERVED_FDS) // FDS_PER_REQUEST)
    if limits.concurrency <= fits:
        return limits, None
    needed = limits.concurrency * FDS_PER_REQUEST + RESERVED_FDS
    warning = (
        f"concurrency {limits.concurrency} needs about {needed:,} file descriptors but "
        f"'ulimit -n' is {soft:,}: running with concurrency {fits} "
        f"(raise the limit, e.g. 'ulimit -n {needed}', for more)"
    )
    return dataclasses.replace(limits, concurrency=fits), warning


def fit_limits(limits: Limits) -> Limits:
    """``fit_to_fd_limit`` for the library: the warning goes to the ``aiograb`` logger."""
    fitted, warning = fit_to_fd_limit(limits)
    if warning is not None:
        logging.getLogger("aiograb").warning("%s", warning)
    return fitted
