"""What the file system refused for a whole output folder: a full disk (or quota), or a
folder that cannot be written (permissions, a read-only mount). Either stops a run at
once, its rows left pending (``RunState``), instead of failing every remaining URL one
by one; the same refusal from SQLite (the journal's writes) counts the same.
"""

from __future__ import annotations

import errno
import sqlite3

from aiograb._core.errors import READ_ONLY, DiskFull, NotWritable

__all__ = ["REFUSALS", "is_storage_full", "storage_refusal"]


def is_storage_full(exc: BaseException) -> bool:
    """Whether a write (a file's, or SQLite's) failed because the disk or quota is full."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(exc, "sqlite_errorcode", None)
    full = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)
    return (code is not None and (code & 0xFF) in full) or "disk is full" in str(exc)


# What a run stopped by each class of storage_refusal says: the problem, and the fix.
REFUSALS = {
    DiskFull.code: ("no space left", "free some space"),
    NotWritable.code: ("the file system refused to store a file", "make the folder writable"),
}


def storage_refusal(exc: BaseException) -> str | None:
    """The class of a write the file system refused for the whole folder, which stops
    the run (the rows stay pending): ``disk_full`` (no space, or quota), ``not_writable``
    (permissions, a read-only mount); None for any other failure."""
    if is_storage_full(exc):
        return DiskFull.code
    if isinstance(exc, OSError):
        return NotWritable.code if exc.errno in READ_ONLY else None
    code = getattr(exc, "sqlite_errorcode", None)
    refused = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM)
    return NotWritable.code if code is not None and (code & 0xFF) in refused else None
