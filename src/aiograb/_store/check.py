"""Checks at open that the journal file is one of ours, before SQLite touches it.

A damaged journal (truncated, zeroed, garbage, another program's SQLite file,
a 0-byte file) must stop the run with one line, never a traceback and never a
silent fresh start over a folder of files the journal no longer describes::

    check_journal(out / JOURNAL_NAME)  # raises InputError "... is not an aiograb journal (...)"

The checks are cheap: the 100-byte header, the file size, the schema, and one
walk of the table and its state index (a sequential read of the file, about what
the run's first counts cost anyway).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

from aiograb._core.errors import InputError, UsageError

__all__ = ["check_journal", "check_writable_file", "ensure_output_folder", "journal_error"]

_MAGIC = b"SQLite format 3\x00"
_HEADER = 100
_TABLES = {"items", "meta"}


def journal_error(path: str | os.PathLike[str], why: str) -> InputError:
    """The one-line error for a journal that is not usable."""
    return InputError(f"{path} is not an aiograb journal ({why}): move it away to start over")


def check_journal(path: str | os.PathLike[str]) -> None:
    """Raise InputError unless ``path`` is absent or an intact aiograb journal."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise journal_error(path, "a symbolic link; aiograb never follows links for its own files")
    if not stat.S_ISREG(st.st_mode):
        raise journal_error(path, "not a regular file")
    if st.st_size == 0:
        raise journal_error(path, "an empty file")
    with open(path, "rb") as fh:
        header = fh.read(_HEADER)
    # With a write-ahead log beside it, the pages the header counts may still be in
    # the log (a checkpoint the disk filled up in the middle of): SQLite recovers them.
    try:  # one stat: the process that writes it may remove it as it closes (--procs)
        has_wal = os.stat(f"{os.fspath(path)}-wal").st_size > 0
    except FileNotFoundError:
        has_wal = False
    _check_header(path, header, st.st_size, check_size=not has_wal)
    _check_schema(Path(path))


def _check_header(
    path: str | os.PathLike[str], header: bytes, size: int, *, check_size: bool = True
) -> None:
    if not header.startswith(_MAGIC):
        what = "all zero bytes" if not header.strip(b"\x00") else "not an SQLite file"
        raise journal_error(path, what)
    if len(header) < _HEADER:
        raise journal_error(path, f"truncated to {size} bytes")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    change_counter = header[24:28]
    valid_for = header[92:96]
    if page_size < 512 or page_size & (page_size - 1):
        raise journal_error(path, "a damaged SQLite header")
    # The header's page count is trustworthy when "version-valid-for" matches the
    # change counter (SQLite >= 3.7.0 writes both).
    if not check_size:
        return
    if valid_for == change_counter and size < pages * page_size:
        raise journal_error(path, f"truncated: {size:,} of {pages * page_size:,} bytes")
    if size % page_size:
        raise journal_error(path, f"truncated: {size:,} bytes is not a whole number of pages")


def _check_schema(path: Path) -> None:
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise journal_error(path, f"cannot be opened: {exc}") from None
    try:
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not names >= _TABLES:
            raise journal_error(path, "an SQLite file of another program: no items table")
        db.execute("SELECT count(*) FROM meta").fetchone()
        # One walk of the table's b-tree (what the run's first counts cost anyway):
        # a scribbled-over page is found here, not as a crash in the middle of a run.
        db.execute("SELECT count(*) FROM items NOT INDEXED").fetchone()
        db.execute("SELECT count(*) FROM items WHERE state >= ''").fetchone()  # the state index
    except sqlite3.DatabaseError as exc:
        raise journal_error(path, f"damaged: {exc}") from None
    finally:
        db.close()


def ensure_output_folder(out: str | os.PathLike[str]) -> None:
    """Create the output folder ``out``, before anything is fetched, so a wrong ``-o``
    costs nothing. A file named as the folder is a UsageError; a folder the file
    system will not create or let us write is an OSError naming it (the CLI's
    one-line "file system refused" exit)."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder: name a folder as the output")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))


def check_writable_file(path: str | os.PathLike[str], what: str) -> None:
    """Raise UsageError unless a file can be created at ``path`` (its folder exists and
    is writable): checked before a run, not found out after it."""
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        raise UsageError(f"{what} {target} is a folder, not a file")
    if not parent.is_dir():
        raise UsageError(f"{what} {target}: no such folder {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {target}: cannot write to {parent}: permission denied")
