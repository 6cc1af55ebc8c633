"""Where bodies go: to memory, or to files committed atomically.

A file body is kept in memory up to ``SPILL_BYTES`` and written once at the
end (one ``open``/``write``/``rename`` for a typical image), or spilled to a
temporary file in the output folder's ``.aiograb-tmp/`` when it grows large.
It is hashed (sha256) while it streams. Only a complete, accepted body is
renamed into place, atomically, under a name derived from the URL; nothing the
server says (Content-Disposition, URL path) takes part in the path, so no
response can write outside the output folder.

The IO pool. With ``io_threads`` > 0, a ``FileSink`` hands committed bodies
to a fixed ``ThreadPoolExecutor`` (``aiograb-io-N`` threads): the file's
creation, write and atomic rename run there, and the writer's ``settle()`` is
the future the engine awaits before it records the row, so the journal still
says ``ok`` only for a file that is in place. The hand-off is by batch: the
bodies committed in one turn of the event loop go to one thread as one task
(``_Batches``), so the loop pays one submit and one wake-up per batch, not per
file — per file, the thread hand-off and the GIL going back and forth cost the
loop more than the file system call it saves on tmpfs (BENCHMARKS.md). Back-pressure is the engine's
own: a worker awaits its body's ``settle()`` before it takes the next URL, so
at most ``concurrency`` bodies wait for the pool. A body that spilled to disk
while streaming (over ``SPILL_BYTES``) is written on the loop as it arrives
(large, so the per-byte cost dominates, not the file creation); its close and
rename go to the pool. ``io_threads=0`` does everything inline, as before.

Where a file is stored is measured, not fixed (``Placement``). A store that costs
the loop less than the hand-off does (tmpfs, an ordinary journaled ext4: 25–100 µs)
runs on the loop: the pool's threads then contend for the GIL for work that is
cheaper than the contention (BENCHMARKS.md, "#13 the IO pool only where the disk is
slow"). Each store on the loop is timed; when most of them take longer than
``INLINE_MAX_S`` (a disk that has become slow, a network file system), files go to
the pool, and one in ``PROBE_EVERY`` is then stored on the loop, timed, to find out
whether the medium has become cheap again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import os
import resource
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from aiograb._core.content import STORED_EXTENSIONS, extension_for
from aiograb._core.errors import UsageError, WriteError, write_error
from aiograb._core.models import Stored

__all__ = ["BodyWriter", "FileSink", "MemorySink", "Placement", "SpoolWriter", "Stored"]

SPILL_BYTES = 1 << 20
MAX_IO_THREADS = 64
BATCH_FILES = 32  # files per hand-off to an IO thread, at most
INLINE_MAX_S = 250e-6  # most stores on the loop slower than this: files go to the IO pool
PROBE_EVERY = 256  # with the pool in use, one store in this many runs on the loop, timed
TMP_DIR = ".aiograb-tmp"


class BodyWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def commit(self, mime: str) -> Stored: ...

    async def settle(self) -> None:
        """Wait until what ``commit`` returned is durable where it says (the IO pool)."""
        ...

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

    async def settle(self) -> None:
        return None

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

    async def settle(self) -> None:
        return None

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


def _store_all(stores: list[Callable[[], None]]) -> list[Exception | None]:
    """In an IO thread: store a batch of files, each one's error kept for its writer."""
    errors: list[Exception | None] = []
    for store in stores:
        try:
            store()
        except Exception as exc:  # a WriteError, as a rule: that file's row fails
            errors.append(exc)
        else:
            errors.append(None)
    return errors


def _settle_all(waiters: list[asyncio.Future[None]], done: asyncio.Future[Any]) -> None:
    """On the loop: a batch is stored; wake each writer with its own outcome."""
    if done.cancelled():  # the pool was shut down under it
        for waiter in waiters:
            waiter.cancel()
        return
    exc = done.exception()
    errors: list[BaseException | None] = [exc] * len(waiters) if exc else done.result()
    for waiter, error in zip(waiters, errors, strict=True):
        if waiter.done():  # its task was cancelled meanwhile
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


class _Batches:
    """The loop's hand-off to the IO pool: the files committed in one turn of the
    event loop go to one IO thread together (one task, one wake-up of the loop when
    they are in place), not one hand-off per file; at most ``BATCH_FILES`` a task,
    so a burst still spreads over the threads."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._stores: list[Callable[[], None]] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put(self, store: Callable[[], None]) -> asyncio.Future[None] | None:
        """Queue ``store``; the future is done when it ran (None: it ran here, no loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            store()
            return None
        if not self._stores:
            loop.call_soon(self._flush)
        waiter = loop.create_future()
        self._stores.append(store)
        self._waiters.append(waiter)
        if len(self._stores) >= BATCH_FILES:
            self._flush()
        return waiter

    def _flush(self) -> None:
        if not self._stores:
            return  # flushed early, when full
        stores, waiters = self._stores, self._waiters
        self._stores, self._waiters = [], []
        done = asyncio.wrap_future(self._pool.submit(_store_all, stores))
        done.add_done_callback(functools.partial(_settle_all, waiters))


def involuntary_switches() -> int:
    """How often the OS has preempted this thread (0 where it does not say)."""
    return resource.getrusage(_RUSAGE_THREAD).ru_nivcsw if _RUSAGE_THREAD is not None else 0


_RUSAGE_THREAD: int | None = getattr(resource, "RUSAGE_THREAD", None)


class Placement:
    """Whether the next file is stored on the loop (while that is measured to be cheap)
    or by the IO pool.

    ``on_loop()`` is asked at each commit; a store on the loop reports its wall time
    to ``observe``. Files start on the loop. A majority vote, so that one slow store (a
    page allocation, a collection) decides nothing: when most of a window of ``WINDOW``
    stores took longer than ``limit``, files go to the pool; there, one in
    ``PROBE_EVERY`` is stored on the loop as a probe, and two fast probes in a row
    bring the files back. A slow store during which the OS preempted the loop's thread
    (a busy machine, not a slow disk: the pool would only add work) does not vote;
    ``preempted`` counts those preemptions (``involuntary_switches``), asked only
    after a slow store.
    """

    WINDOW = 32

    __slots__ = (
        "_fast_probes",
        "_preempted",
        "_since_probe",
        "_slow",
        "_stores",
        "_switches",
        "inline",
        "limit",
        "pooled_files",
    )

    def __init__(
        self,
        limit: float = INLINE_MAX_S,
        *,
        inline: bool = True,
        preempted: Callable[[], int] = involuntary_switches,
    ) -> None:
        self.limit = limit  # seconds; below 0: every store counts as slow
        self.inline = inline  # where files go now (the start: the loop)
        self._preempted = preempted
        self._switches = preempted()
        self._stores = self._slow = 0  # in the current window (on the loop)
        self._since_probe = self._fast_probes = 0  # with the pool in use
        self.pooled_files = 0

    def on_loop(self) -> bool:
        if self.inline:
            return True
        self._since_probe += 1
        if self._since_probe >= PROBE_EVERY:
            self._since_probe = 0
            return True
        self.pooled_files += 1
        return False

    def observe(self, seconds: float) -> None:
        slow = seconds > self.limit
        if slow:  # preempted since the last look? (A fast store was not held up: no look.)
            switches = self._preempted()
            before, self._switches = self._switches, switches
            if switches != before:
                return  # no vote
        if not self.inline:  # a probe
            self._fast_probes = 0 if slow else self._fast_probes + 1
            if self._fast_probes >= 2:
                self.inline, self._fast_probes = True, 0
            return
        self._stores += 1
        self._slow += slow
        if self._stores >= self.WINDOW:
            if 2 * self._slow > self._stores:
                self.inline = False
            self._stores = self._slow = 0


class _FileWriter(SpoolWriter):
    __slots__ = ("_key", "_pending", "_sink")

    def __init__(self, sink: FileSink, key: str) -> None:
        super().__init__(lambda: sink.tmp_path(key))
        self._sink = sink
        self._key = key
        self._pending: asyncio.Future[None] | None = None

    def commit(self, mime: str) -> Stored:
        rel = self._sink.relative_path(self._key, extension_for(mime))
        stored = Stored(size=self._size, sha256=self._hash.hexdigest(), path=rel)
        sink = self._sink
        batches = sink.batches
        if batches is None:
            self._store(rel)
        elif sink.placement.on_loop():
            t0 = time.perf_counter()
            try:
                self._store(rel)
            finally:
                sink.placement.observe(time.perf_counter() - t0)
        else:  # the loop goes on; settle() waits for the file to be in place
            self._pending = batches.put(functools.partial(self._store, rel))
        return stored

    async def settle(self) -> None:
        if (pending := self._pending) is not None:
            self._pending = None
            await pending

    def _store(self, rel: str) -> None:
        """Temp file, then atomic rename into place (on the loop, or in an IO thread)."""
        try:
            self._sink.ensure_dir(f"{self._sink.root_str}/{self._key[:2]}")
            os.replace(self._to_tmp_file(), f"{self._sink.root_str}/{rel}")
        except WriteError:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise write_error(f"cannot store {rel}: {exc.strerror or exc}", exc) from exc


class FileSink:
    """Store bodies as ``<out>/<k[:2]>/<k>.<ext>`` where ``k`` is the URL's key.

    ``io_threads`` > 0 stores them from that many IO threads where storing them on
    the loop is measured to cost more (``placement``; see the module docstring);
    ``close()`` waits for those threads and ends them.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        io_threads: int = 0,
        placement: Placement | None = None,
    ) -> None:
        if not 0 <= io_threads <= MAX_IO_THREADS:
            raise UsageError(f"io_threads must be between 0 and {MAX_IO_THREADS}")
        self.pool = (
            ThreadPoolExecutor(io_threads, thread_name_prefix="aiograb-io") if io_threads else None
        )
        self.batches = _Batches(self.pool) if self.pool is not None else None
        self.placement = placement or Placement()
        self.io_threads = io_threads
        self.root = Path(root)
        self.root_str = str(self.root)  # str paths on the hot path: pathlib costs per file
        self._tmp_dir = self.root / TMP_DIR
        self._tmp_prefix = f"{self._tmp_dir}/"
        self._pid = os.getpid()
        self._dirs: set[str] = set()
        self._seq = itertools.count(1)  # next() is atomic: IO threads name temp files too

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
        return f"{self._tmp_prefix}{key}.{self._pid}.{next(self._seq)}.part"

    def close(self) -> None:
        """Wait for the IO threads' last files and end the threads."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    @staticmethod
    def relative_path(key: str, ext: str) -> str:
        return f"{key[:2]}/{key}.{ext}"

    def ensure_dir(self, path: str) -> None:
        """Create ``path``, a folder right under the root (``ab/``). Not the root: an
        output folder removed during the run stays gone (the run stops, RunState)."""
        if path not in self._dirs:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
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
