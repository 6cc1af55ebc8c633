"""The run lock of an output folder: one run at a time per ``OUT``.

Two runs on one folder would fetch the same rows twice, delete each other's
temporary files and count wrong. A run holds an OS lock (``flock``) on
``OUT/aiograb.lock`` for its whole life; the lock goes away with the process,
so a killed run never leaves a stale lock behind. The file holds the holder's
pid, for the message a second run prints::

    with OutputLock(out):  # raises UsageError "OUT is in use by pid 1234 ..."
        ...
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from aiograb._core.errors import UsageError

__all__ = ["LOCK_NAME", "OutputLock"]

LOCK_NAME = "aiograb.lock"


class OutputLock:
    """An exclusive, non-blocking lock on ``out_dir``; ``release()`` or leave the ``with``."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fd = -1
        self.acquire()

    def acquire(self) -> None:
        try:
            # O_NOFOLLOW: a symlink planted as the lock file is refused, not followed.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UsageError(
                    f"{self.path} is a symbolic link; aiograb never follows links for "
                    "its own files: remove it"
                ) from None
            raise UsageError(f"cannot create {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise UsageError(
                f"{self.path.parent} is in use by pid {holder} (another aiograb run); "
                "wait for it to finish or pick another output folder"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full disk: never keep the descriptor (and the lock)
            os.close(fd)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self._fd = fd

    def release(self) -> None:
        """Unlock (the file stays: removing it would race with a run starting now)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = -1

    def __del__(self) -> None:  # a run that failed before its close: never hold OUT forever
        self.release()

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
