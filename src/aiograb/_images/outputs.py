"""Where processed images go: files, WebDataset tar shards, Parquet shards.

Bodies are first *staged* (``StagingSink``: in memory up to 1 MiB, else a
temporary file, hashed while they stream), then processed off the loop, then
stored by an output:

- ``FilesOutput``: ``OUT/<k[:2]>/<k>.<ext>``, renamed into place atomically;
  recorded at once.
- ``TarShards`` (WebDataset) and ``ParquetShards``: ``OUT/00000.tar`` ... of
  ``shard_size`` samples. A shard is written as ``00000.tar.part`` and renamed
  only when complete, so no reader ever sees a partial shard.

Resume is per URL, not per shard: the journal rows of a shard's samples are
held back and recorded, in one transaction, only after the shard's rename. A
run killed mid-shard leaves a ``.part`` (deleted on the next start) and its
rows still pending, so they are fetched again. The one gap, a kill between the
rename and the journal commit, is closed by a marker file naming the shard
being committed: on start, a marked shard that no journal row points to is
removed, because its rows are pending again.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiograb._core.content import mime_for
from aiograb._core.errors import WriteError, write_error
from aiograb._core.models import Outcome, Stored
from aiograb._store.journal import PendingRow
from aiograb._store.sinks import FileSink

__all__ = [
    "FilesOutput",
    "Held",
    "Output",
    "ParquetShards",
    "Sample",
    "TarShards",
]

COMMIT_MARKER = ".aiograb-committing"
PARQUET_BATCH = 256


@dataclass(slots=True)
class Held:
    """A row whose outcome waits for its shard (or file) before it is recorded."""

    row: PendingRow
    outcome: Outcome
    key: str


# Records a shard's rows in one transaction; False when the storage refused the commit.
Commit = Callable[[list[Held]], bool]


# -- outputs -------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One processed image to store."""

    key: str  # the URL's key: file name or sample key
    staged: Stored  # the downloaded body (sha256 of the source, body or temp path)
    data: bytes | None  # processed bytes; None keeps the downloaded ones
    ext: str
    content_type: str | None
    meta: dict[str, Any]  # the sample's JSON (shards)
    caption: str | None = None

    def payload(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.staged.body is not None:
            return self.staged.body
        assert self.staged.path is not None
        return Path(self.staged.path).read_bytes()


class Output(Protocol):
    def store(self, held: Held, sample: Sample) -> str:
        """Store a sample, set ``outcome.stored``; return where it went (the manifest path)."""
        ...

    def attach(self, location: str, held: Held) -> None:
        """Record ``held`` (a duplicate) once what is at ``location`` is committed."""
        ...

    def close(self) -> None: ...


class FilesOutput:
    """One file per image, as ``aiograb get`` stores without a pipeline."""

    def __init__(self, root: Path, record: Callable[[Held], None]) -> None:
        self._files = FileSink(root)
        self._record = record

    def store(self, held: Held, sample: Sample) -> str:
        staged = sample.staged
        if sample.data is None and staged.path is not None:  # a big original: rename, no copy
            rel = self._files.relative_path(sample.key, sample.ext)
            final = self._files.root / rel
            try:
                self._files.ensure_dir(str(final.parent))
                os.replace(staged.path, final)
            except OSError as exc:
                raise write_error(f"cannot store {rel}: {exc.strerror or exc}", exc) from exc
            size = staged.size
        else:
            writer = self._files.open(sample.key)
            writer.write(sample.payload())
            mime = mime_for(sample.ext) if sample.data is not None else sample.content_type
            stored = writer.commit(mime or mime_for(sample.ext) or "")
            rel, size = stored.path or "", stored.size
        held.outcome.stored = Stored(size=size, sha256=staged.sha256, path=rel)
        self._record(held)
        return rel

    def attach(self, location: str, held: Held) -> None:
        self._record(held)

    def close(self) -> None:
        pass


_SHARD_RE = re.compile(r"^(\d{5,})\.(tar|parquet)$")


class _Shards:
    """Shards of ``shard_size`` samples, each renamed into place only when complete."""

    suffix = ""

    def __init__(self, root: Path, shard_size: int, commit: Commit, known: set[str]) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        self.root = root
        self._size = shard_size
        self._commit = commit
        self._held: list[Held] = []
        self._count = 0
        self._refused = False  # a shard's commit was refused: the run stops
        # Shards that will not be in place: given up on a write (why), or whose commit
        # was refused (None). Their duplicates must not be recorded as stored in them.
        self._given_up: dict[str, tuple[str, OSError] | None] = {}
        self.name: str | None = None
        self._next = self._reconcile(known)

    def _reconcile(self, known: set[str]) -> int:
        """Remove what a killed run left; return the next shard number."""
        for part in self.root.glob(f"*{self.suffix}.part"):
            part.unlink(missing_ok=True)
        marker = self.root / COMMIT_MARKER
        with contextlib.suppress(FileNotFoundError):
            name = marker.read_text().strip()
            if name and name not in known and _SHARD_RE.match(name):
                (self.root / name).unlink(missing_ok=True)  # renamed, never recorded
            marker.unlink()
        numbers = [int(m.group(1)) for p in self.root.iterdir() if (m := _SHARD_RE.match(p.name))]
        return max(numbers, default=-1) + 1

    def number_from(self, first: int) -> None:
        """Number new shards from ``first`` at least (parts of a run: part-unique names)."""
        self._next = max(self._next, first)

    @property
    def _part(self) -> Path:
        assert self.name is not None
        return self.root / f"{self.name}.part"

    def store(self, held: Held, sample: Sample) -> str:
        """Add a sample to the shard being written (a new one when none is); rename the
        shard into place and record its rows once it is full. A write that fails (a full
        disk, a folder made read-only) abandons the whole shard: its other rows are
        recorded as failed, and the ``WriteError`` raised is this sample's."""
        if self.name is None:
            self.name = f"{self._next:05d}{self.suffix}"
            self._next += 1
            try:
                self._open()
            except OSError as exc:
                raise self._abandon(f"cannot create {self._part}", exc, held) from exc
        data = sample.payload()
        try:
            self._write(sample, data)
        except OSError as exc:
            raise self._abandon(f"cannot write {self._part}", exc, held) from exc
        held.outcome.stored = Stored(size=len(data), sha256=sample.staged.sha256, path=self.name)
        self._held.append(held)
        self._count += 1
        name = self.name
        if self._count >= self._size:
            self._finish(held)
        return name

    def attach(self, location: str, held: Held) -> None:
        if location in self._given_up:  # the first copy is not stored: neither is this
            why = self._given_up[location]
            if why is None:
                return  # not recorded: pending, as the rows of that shard are
            raise write_error(*why)
        if location == self.name:
            self._held.append(held)
        else:
            self._commit([held])

    def close(self) -> None:
        if self.name is not None:
            self._finish(None)

    def _finish(self, current: Held | None) -> None:
        """Rename the shard into place and record its rows; when the file system refuses,
        its rows fail instead (``current``'s by the ``WriteError`` raised)."""
        assert self.name is not None
        name, held = self.name, self._held
        marker = self.root / COMMIT_MARKER
        if self._refused:  # the marker names a shard whose commit was refused: it stays so
            self.name, self._held, self._count = None, [], 0
            self._given_up[name] = None
            with contextlib.suppress(OSError):
                self._drop()
                os.unlink(self.root / f"{name}.part")
            return  # these rows are not recorded: still pending, for the next run
        try:
            self._close()
            marker.write_text(name)
            os.replace(self.root / f"{name}.part", self.root / name)
        except OSError as exc:
            error = self._abandon(f"cannot complete {self.root / name}", exc, current)
            with contextlib.suppress(OSError):
                marker.unlink()  # nothing was renamed: no shard to reconcile
            if current is not None:
                raise error from exc
            return
        self.name, self._held, self._count = None, [], 0
        # One journal transaction for the whole shard. When the storage refuses it (the
        # run stops), the marker stays: the next start removes the shard, whose rows are
        # still pending.
        if self._commit(held):
            marker.unlink()
        else:
            self._refused = True
            self._given_up[name] = None

    def _abandon(self, what: str, exc: OSError, current: Held | None) -> WriteError:
        """Give up the shard being written: its ``.part`` goes, and its rows so far are
        recorded as failed (but ``current``, whose caller fails it with the error
        returned). The next sample starts a new shard."""
        name, held = self.name, self._held
        self.name, self._held, self._count = None, [], 0
        with contextlib.suppress(OSError):
            self._drop()
        with contextlib.suppress(OSError):
            os.unlink(self.root / f"{name}.part")
        message = f"{what}: {exc.strerror or exc}"
        if name is not None:
            self._given_up[name] = (message, exc)
        others = [h for h in held if h is not current]
        for h in others:
            h.outcome.ok, h.outcome.stored = False, None
            h.outcome.error = write_error(message, exc)
            h.outcome.error.url = h.row.url
        if others:
            self._commit(others)
        return write_error(message, exc)

    def _open(self) -> None:
        raise NotImplementedError

    def _write(self, sample: Sample, data: bytes) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _drop(self) -> None:
        """Let go of the shard's writer, if it is open, without completing the shard."""
        raise NotImplementedError


class TarShards(_Shards):
    """WebDataset shards: ``{key}.{ext}``, ``{key}.json`` and ``{key}.txt`` (a caption)."""

    suffix = ".tar"

    def __init__(self, root: Path, shard_size: int, commit: Commit, known: set[str]) -> None:
        super().__init__(root, shard_size, commit, known)
        self._tar: tarfile.TarFile | None = None

    def _open(self) -> None:
        # Closed in _close() when the shard is complete (it outlives this call).
        self._tar = tarfile.open(self._part, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115

    def _add(self, name: str, data: bytes) -> None:
        assert self._tar is not None
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        self._tar.addfile(info, io.BytesIO(data))

    def _write(self, sample: Sample, data: bytes) -> None:
        self._add(f"{sample.key}.{sample.ext}", data)
        meta = json.dumps(sample.meta, ensure_ascii=False, default=str).encode()
        self._add(f"{sample.key}.json", meta)
        if sample.caption is not None:
            self._add(f"{sample.key}.txt", sample.caption.encode())

    def _close(self) -> None:
        assert self._tar is not None
        tar, self._tar = self._tar, None
        tar.close()  # writes the end-of-archive blocks

    def _drop(self) -> None:
        tar, self._tar = self._tar, None
        if tar is not None:
            tar.close()


class ParquetShards(_Shards):
    """Parquet shards: one row per sample, the image bytes in ``image`` (needs pyarrow)."""

    suffix = ".parquet"
    _FIXED: tuple[tuple[str, str], ...] = (
        ("key", "string"),
        ("url", "string"),
        ("caption", "string"),
        ("image", "binary"),
        ("ext", "string"),
        ("width", "int32"),
        ("height", "int32"),
        ("original_width", "int32"),
        ("original_height", "int32"),
        ("sha256", "string"),
        ("phash", "string"),
        ("duplicate_of", "string"),
    )

    def __init__(
        self,
        root: Path,
        shard_size: int,
        commit: Commit,
        known: set[str],
        extra_columns: Sequence[str] = (),
    ) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - the parquet extra is missing
            from aiograb._core.errors import UsageError

            raise UsageError(
                "output='parquet' needs pyarrow: pip install 'aiograb[parquet]'"
            ) from exc
        super().__init__(root, shard_size, commit, known)
        self._pa, self._pq = pa, pq
        fixed = {name for name, _ in self._FIXED}
        self._extra = [c for c in extra_columns if c not in fixed]
        fields = [(n, getattr(pa, t)()) for n, t in self._FIXED]
        fields += [(c, pa.string()) for c in self._extra]
        self._schema = pa.schema(fields)
        self._rows: list[dict[str, Any]] = []
        self._writer: Any = None

    def _open(self) -> None:
        self._writer = self._pq.ParquetWriter(
            self._part, self._schema, compression={"image": "NONE"}, use_dictionary=False
        )

    def _write(self, sample: Sample, data: bytes) -> None:
        meta = sample.meta
        row: dict[str, Any] = {name: meta.get(name) for name, _ in self._FIXED}
        row.update(key=sample.key, image=data, ext=sample.ext, caption=sample.caption)
        for column in self._extra:
            value = meta.get(column)
            row[column] = value if value is None or isinstance(value, str) else json.dumps(value)
        self._rows.append(row)
        if len(self._rows) >= PARQUET_BATCH:
            self._flush_rows()

    def _flush_rows(self) -> None:
        if self._rows:
            table = self._pa.Table.from_pylist(self._rows, schema=self._schema)
            self._rows = []
            self._writer.write_table(table)

    def _close(self) -> None:
        self._flush_rows()
        writer, self._writer = self._writer, None
        writer.close()

    def _drop(self) -> None:
        self._rows = []
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
