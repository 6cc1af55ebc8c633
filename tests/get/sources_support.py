"""What the URL-list reader tests share: small writers, a lazy stream, parquet files
(the ``pq`` fixture is in conftest.py)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from aiograb._get.sources import open_source

__all__ = ["ChunkStream", "endless", "rows_of", "stdin_of", "write", "write_parquet"]


def rows_of(source: str | Path, **kwargs: Any) -> list[tuple[int, str, str | None]]:
    return [(r.line, r.url, r.error) for r in open_source(source, **kwargs)]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def stdin_of(data: bytes) -> BinaryIO:
    return io.BytesIO(data)


class ChunkStream(io.RawIOBase):
    """A raw stream fed by an iterator of chunks that fails if read beyond ``limit`` bytes."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self.consumed = 0
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.consumed += size
        if self.consumed > self._limit:
            raise AssertionError(f"read {self.consumed} bytes: the reader is not lazy")
        return size


def endless(head: bytes, line: str) -> Iterator[bytes]:
    yield head
    n = 0
    while True:
        yield "".join(line.format(n + i) for i in range(100)).encode()
        n += 100


def write_parquet(path: Path, columns: dict[str, Any], **kwargs: Any) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, **kwargs)
    return path
