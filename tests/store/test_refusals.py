"""Which failed writes stop a run (``storage_refusal``): the file system refusing the
whole folder, said by the OS or by SQLite, and nothing else."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from aiograb import WriteError
from aiograb._core.errors import DiskFull, NotWritable, write_error
from aiograb._store.refusals import storage_refusal


@pytest.mark.parametrize(
    ("os_errno", "kind", "code"),
    [
        (errno.EACCES, NotWritable, "not_writable"),
        (errno.EPERM, NotWritable, "not_writable"),
        (errno.EROFS, NotWritable, "not_writable"),
        (errno.ENOSPC, DiskFull, "disk_full"),
        (errno.EDQUOT, DiskFull, "disk_full"),
        (errno.EIO, WriteError, None),
        (errno.ENOENT, WriteError, None),  # a removed folder: the lost-folder check says so
    ],
)
def test_an_os_error_as_a_row_and_as_a_stop(os_errno: int, kind: type, code: str | None) -> None:
    exc = OSError(os_errno, "refused", "/out/x.jpg")
    error = write_error("cannot store x.jpg", exc)
    assert type(error) is kind
    assert storage_refusal(exc) == code


def test_a_journal_sqlite_cannot_write_is_not_writable(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            read_only.execute("INSERT INTO t VALUES (1)")
    finally:
        read_only.close()
    assert storage_refusal(caught.value) == "not_writable"
    assert storage_refusal(sqlite3.IntegrityError("UNIQUE constraint failed")) is None
