"""Where bodies go: to memory, or to files committed atomically.

A file body is kept in memory up to ``SPILL_BYTES`` and written once at the
end (one ``open``/``write``/``rename`` for a typical image), or spilled to a
temporary file in the output folder's ``.aiograb-tmp/`` when it grows large.
It is hashed (sha256) while it streams. Only a complete, accepted body is
renamed into place, atomically, under a name derived from the URL; nothing the
server says (Content-Disposition, URL path) takes part in the path, so no
response can write outside the output folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from aiograb._core.content import STORED_EXTENSIONS, extension_for
from aiograb._core.errors import UsageError, WriteError, write_error
from aiograb._core.models import Stored

__all__ = ["BodyWriter", "FileSink", "MemorySink", "SpoolWriter", "Stored"]

SPILL_BYTES = 1 << 20
TMP_DIR = ".aiograb-tmp"


class BodyWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def commit(self, mime: str) -> Stored: ...

    def abort(self) -> None: ...


class _MemoryWriter:
    __slots__ = ("_chunks", "_hash", "_size")

    def __init__(self, hash_body: bool) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._hash = hashlib.sha256() if hash_body else None

    def write(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._hash is not None:
            self._hash.update(chunk)

    def commit(self, mime: str) -> Stored:
        body = b"".join(self._chunks)
        digest = self._hash.hexdigest() if self._hash is not None else ""
        return Stored(size=self._size, sha256=digest, body=body)

    def abort(self) -> None:
        self._chunks.clear()


class MemorySink:
    """Keep bodies in memory (the client API)."""

    def __init__(self, *, hash_body: bool = False) -> None:
        self._hash_body = hash_body

    def open(self, key: str) -> BodyWriter:
        return _MemoryWriter(self._hash_body)


class SpoolWriter:
    """Hashes a body as it streams; holds it in memory up to ``SPILL_BYTES``, then
    spills it to a temporary file from ``make_tmp``. Subclasses decide what commit means."""

    __slots__ = ("_chunks", "_fd", "_hash", "_make_tmp", "_size", "_tmp")

    def __init__(self, make_tmp: Callable[[], str]) -> None:
        self._make_tmp = make_tmp
        self._chunks: list[bytes] = []
        self._size = 0
        self._hash = hashlib.sha256()
        self._fd = -1
        self._tmp = ""

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)
        if self._fd < 0:
            self._chunks.append(chunk)
            if self._size <= SPILL_BYTES:
                return
            self._open_tmp()
            chunk, self._chunks = b"".join(self._chunks), []
        self._write_fd(chunk)

    @property
    def spilled(self) -> bool:
        return self._fd >= 0

    def _open_tmp(self) -> None:
        self._tmp = self._make_tmp()
        try:
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise write_error(f"cannot create {self._tmp}: {exc.strerror}", exc) from exc

    def _write_fd(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise write_error(f"cannot write {self._tmp}: {exc.strerror}", exc) from exc

    def _to_tmp_file(self) -> str:
        """Close the whole body into its temporary file (writing it there if still in memory)."""
        if self._fd < 0:
            self._open_tmp()
            chunks, self._chunks = self._chunks, []
            self._write_fd(b"".join(chunks))
        os.close(self._fd)
        self._fd = -1
        return self._tmp

    def abort(self) -> None:
        self._chunks = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = ""


class _FileWriter(SpoolWriter):
    __slots__ = ("_key", "_sink")

    def __init__(self, sink: FileSink, key: str) -> None:
        super().__init__(lambda: sink.tmp_path(key))
        self._sink = sink
        self._key = key

    def commit(self, mime: str) -> Stored:
        rel = self._sink.relative_path(self._key, extension_for(mime))
        try:
            self._sink.ensure_dir(f"{self._sink.root_str}/{self._key[:2]}")
            os.replace(self._to_tmp_file(), f"{self._sink.root_str}/{rel}")
        except WriteError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise write_error(f"cannot store {rel}: {exc.strerror or exc}", exc) from exc
        return Stored(size=self._size, sha256=self._hash.hexdigest(), path=rel)


class FileSink:
    """Store bodies as ``<out>/<k[:2]>/<k>.<ext>`` where ``k`` is the URL's key."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root_str = str(self.root)  # str paths on the hot path: pathlib costs per file
        self._tmp_dir = self.root / TMP_DIR
        self._tmp_prefix = f"{self._tmp_dir}/"
        self._pid = os.getpid()
        self._dirs: set[str] = set()
        self._seq = 0

    def prepare(self) -> int:
        """Create the folders; remove temporaries a killed run left. Returns how many.

        The temporary folder is ours: a symbolic link planted there (to a folder
        whose files start-up would delete) is refused, never followed.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_dir
        if tmp.is_symlink() or (tmp.exists() and not tmp.is_dir()):
            what = "a symbolic link" if tmp.is_symlink() else "not a folder"
            raise UsageError(
                f"{tmp} is {what}; aiograb never follows links for its own "
                "working folders: remove it"
            )
        tmp.mkdir(exist_ok=True)
        removed = 0
        with os.scandir(tmp) as entries:
            for leftover in entries:
                if not leftover.is_dir(follow_symlinks=False):  # unlink never follows
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(leftover.path)
                    removed += 1
        return removed

    def open(self, key: str) -> BodyWriter:
        return _FileWriter(self, key)

    def tmp_path(self, key: str) -> str:
        self._seq += 1
        return f"{self._tmp_prefix}{key}.{self._pid}.{self._seq}.part"

    @staticmethod
    def relative_path(key: str, ext: str) -> str:
        return f"{key[:2]}/{key}.{ext}"

    def ensure_dir(self, path: str) -> None:
        if path not in self._dirs:
            os.makedirs(path, exist_ok=True)
            self._dirs.add(path)

    def find_stored(self, key: str) -> str | None:
        """The relative path of a file stored for ``key``, if one is in place.

        Files are renamed into place only when complete, so one found here is whole
        even if its row was never committed (a kill -9 between the two). A fixed
        number of ``stat`` calls, like ``remove_stale``.
        """
        base = f"{key[:2]}/{key}."
        for ext in STORED_EXTENSIONS:
            try:
                st = os.lstat(f"{self.root_str}/{base}{ext}")
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISREG(st.st_mode):
                return base + ext
        return None

    def remove_stale(self, key: str) -> None:
        """Remove a file a crashed earlier attempt stored for a URL that has now failed.

        A fixed number of unlinks (one per extension a stored file can have), never
        a listing of the folder: a failure costs O(1) file-system work however many
        files the folder holds, and needs no file descriptor.
        """
        base = f"{self.root_str}/{key[:2]}/{key}."
        for ext in STORED_EXTENSIONS:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                os.unlink(base + ext)
