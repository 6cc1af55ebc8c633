"""Where bodies wait for the image stage: in memory when small, else a temp file."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from aiograb._core.models import Stored
from aiograb._store.sinks import TMP_DIR, BodyWriter, SpoolWriter

__all__ = ["StagingSink", "discard"]


class _StagingWriter(SpoolWriter):
    __slots__ = ()

    def commit(self, mime: str) -> Stored:
        digest = self._hash.hexdigest()
        if not self.spilled:
            return Stored(size=self._size, sha256=digest, body=b"".join(self._chunks))
        return Stored(size=self._size, sha256=digest, path=self._to_tmp_file())


def discard(path: str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class StagingSink:
    """Bodies wait here for processing: a ``Stored`` with ``body`` (small) or a temp ``path``."""

    def __init__(self, root: Path) -> None:
        self._tmp_dir = root / TMP_DIR
        self._seq = 0

    def open(self, key: str) -> BodyWriter:
        return _StagingWriter(self.tmp_path)

    def tmp_path(self) -> str:
        self._seq += 1
        return os.path.join(self._tmp_dir, f"staged.{os.getpid()}.{self._seq}.part")
