"""The image pipeline: the CPU stage between "body complete" and "recorded".

::

    engine worker ── admit() ── fetch into StagingSink ── process() ── queue ──>
    2 x workers consumers: content dedup (sha256 of the body) ── WorkerPool
        (verify, filter, resize, encode, phash: work.py in child processes)
        ── perceptual dedup ── output (files | WebDataset | Parquet) ── journal

The event loop never decodes an image: it only moves bytes (or, for bodies
over 1 MiB, a temp-file path) to a worker process and back. An engine worker
hands its body over and fetches on, so processing never holds a download
slot. Backpressure: once ``backlog`` bodies wait for or sit in the pool,
``admit()`` holds new fetches back (one new fetch per finished item), so
downloading slows down instead of memory growing.

Dedup. ``content``: a body whose sha256 was seen before is not processed or
stored again; its row points at the first one's file or shard
(``duplicate_of``). ``perceptual`` adds a 64-bit difference hash (``phash``)
and marks images within ``phash_distance`` bits of an earlier one with
``duplicate_of`` (they are still stored). Both indexes are rebuilt from the
journal on resume; they cost about 400 bytes per stored image in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiograb._core.content import extension_for
from aiograb._core.errors import ImageError, RequestError, UsageError
from aiograb._core.models import Outcome, Stored
from aiograb._core.urls import url_key
from aiograb._fetch.fetcher import SinkFactory
from aiograb._get.engine import Stage
from aiograb._get.runstate import RunState
from aiograb._images.defaults import (
    DEDUP_MODES,
    DEFAULT_PHASH_DISTANCE,
    DEFAULT_SHARD_SIZE,
    OUTPUT_FORMATS,
)
from aiograb._images.outputs import (
    FilesOutput,
    Held,
    Output,
    ParquetShards,
    Sample,
    TarShards,
)
from aiograb._images.staging import StagingSink, discard
from aiograb._images.work import ImageOptions
from aiograb._images.workers import PoolStatistics, WorkerPool
from aiograb._store.journal import PendingRow

__all__ = ["DEDUP_MODES", "OUTPUT_FORMATS", "ImagePipeline"]

SHARDS_PER_PART = 1_000_000  # part k of a planned run writes shards k000000.tar, ...
# Info keys that belong to one row, not to the image its bytes are.
_OWN_INFO = frozenset({"key", "duplicate_of", "adopted"})
# Failures that the same bytes always give again: a duplicate of such a body fails alike.
_DETERMINISTIC = frozenset(
    {"corrupt_image", "too_many_pixels", "too_small", "bad_aspect_ratio", "not_raster"}
    | {"unsupported_image"}
)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class _Entry:
    """A stored body, for content dedup."""

    row_id: int
    location: str
    size: int
    info: str  # what the stored image is (JSON): a duplicate's row says the same
    key: str


@dataclass(frozen=True, slots=True)
class _Failed:
    code: str
    message: str
    url: str


class _PhashIndex:
    """Near-duplicate lookup: split the 64 bits into ``distance + 1`` bands; by the
    pigeonhole principle two hashes within ``distance`` bits agree on one band."""

    def __init__(self, distance: int) -> None:
        self._distance = distance
        n = distance + 1
        width = 64 // n
        self._bands = [(i * width, 64 if i == n - 1 else (i + 1) * width) for i in range(n)]
        self._tables: list[dict[int, list[tuple[int, int]]]] = [{} for _ in self._bands]

    def _keys(self, value: int) -> list[int]:
        return [(value >> lo) & ((1 << (hi - lo)) - 1) for lo, hi in self._bands]

    def find(self, value: int) -> int | None:
        for table, band in zip(self._tables, self._keys(value), strict=True):
            for other, row_id in table.get(band, ()):
                if (value ^ other).bit_count() <= self._distance:
                    return row_id
        return None

    def add(self, value: int, row_id: int) -> None:
        entry = (value, row_id)
        for table, band in zip(self._tables, self._keys(value), strict=True):
            table.setdefault(band, []).append(entry)


def _described(info: dict[str, Any]) -> str:
    """The description of a stored image that its duplicates share, compact (JSON)."""
    own = {k: v for k, v in info.items() if k not in _OWN_INFO}
    return json.dumps(own, separators=(",", ":"))


def _stored_identity(staged: Stored, data: bytes | None) -> dict[str, Any]:
    """sha256 and bytes of what is stored; of the download too (original_*) when the
    stored bytes are re-encoded ones."""
    if data is None:
        return {"sha256": staged.sha256, "bytes": staged.size}
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "original_sha256": staged.sha256,
        "original_bytes": staged.size,
    }


class ImagePipeline:
    """Verify, filter, resize and dedup images in a process pool; store files or shards.

    >>> pipeline = ImagePipeline(
    ...     ImageOptions(resize="keep-ratio", image_size=256, encode="jpg", quality=90),
    ...     output="webdataset", shard_size=10_000, workers=2, caption_column="caption")
    >>> await aiograb.download_async(rows, "ds/", pipeline=pipeline)

    ``workers`` defaults to the number of cores. ``handler`` (a ``.py`` file with
    ``handle(request) -> dict``) replaces the image worker; tests use it.
    """

    def __init__(
        self,
        options: ImageOptions | None = None,
        *,
        workers: int | None = None,
        output: str = "files",
        shard_size: int = DEFAULT_SHARD_SIZE,
        dedup: str = "content",
        phash_distance: int = DEFAULT_PHASH_DISTANCE,
        caption_column: str | None = None,
        extra_columns: Sequence[str] = (),
        backlog: int | None = None,
        worker_timeout: float = 120.0,
        handler: str | os.PathLike[str] | None = None,
    ) -> None:
        if output not in OUTPUT_FORMATS:
            raise UsageError(f"output must be one of {', '.join(OUTPUT_FORMATS)}")
        if dedup not in DEDUP_MODES:
            raise UsageError(f"dedup must be one of {', '.join(DEDUP_MODES)}")
        if shard_size < 1:
            raise UsageError("shard_size must be >= 1")
        if not 0 <= phash_distance <= 15:
            raise UsageError("phash_distance must be between 0 and 15")
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise UsageError("workers must be >= 1")
        options = options or ImageOptions()
        self.options = replace(options, phash=options.phash or dedup == "perceptual")
        self.output = output
        self.shard_size = shard_size
        self.dedup = dedup
        self.phash_distance = phash_distance
        self.caption_column = caption_column
        self.extra_columns = tuple(extra_columns)
        self.backlog = backlog or 4 * self.workers
        self.worker_timeout = worker_timeout
        self.handler = os.fspath(handler or Path(__file__).with_name("work.py"))
        self.statistics: PoolStatistics | None = None  # set when a run ends
        self.first_shard = 0  # a part of a planned run numbers its shards from here

    def shared(self, ways: int, part: int = 0) -> ImagePipeline:
        """A copy for part ``part`` of a run with ``ways`` parts at once (``--procs``): the
        worker processes (and the backlog) are shared out between them, at least one each,
        and its shards are numbered from ``part * SHARDS_PER_PART`` (names unique in the run)."""
        copied = copy.copy(self)
        copied.first_shard = part * SHARDS_PER_PART
        copied.workers = max(1, self.workers // ways)
        copied.backlog = max(1, self.backlog * copied.workers // self.workers)
        copied.statistics = None
        return copied

    @property
    def needs_pool(self) -> bool:
        o = self.options
        return o.transforms or o.verify or o.phash or bool(o.min_size or o.max_aspect_ratio)

    @contextlib.asynccontextmanager
    async def open(self, state: RunState) -> AsyncIterator[Stage]:
        stage = _ImageStage(self, state)
        pool = WorkerPool(self.handler, workers=self.workers, timeout=self.worker_timeout)
        consumers = 2 * self.workers  # enough to keep every worker fed while results return
        try:
            if self.needs_pool:
                await pool.__aenter__()
                stage.pool = pool
            async with asyncio.TaskGroup() as tg:
                for _ in range(consumers):
                    tg.create_task(stage.consume())
                yield stage
                # Normal end: finish what is queued. (On an exception the group cancels
                # the consumers; their rows stay pending and are fetched again.)
                stage.drain(consumers)
        finally:
            try:
                stage.close()
            finally:
                pool.close()
                self.statistics = pool.statistics()


class _ImageStage:
    def __init__(self, pipeline: ImagePipeline, state: RunState) -> None:
        self._p = pipeline
        self._state = state
        self._journal = state.journal
        self._sink = StagingSink(state.out)
        self.pool: WorkerPool | None = None
        self._request_options = pipeline.options.to_dict()
        self._backlog = 0  # bodies downloaded and not yet processed
        self._room = asyncio.Condition()
        # Bounded by admit(): at most ``backlog`` plus the fetches already in flight.
        self._queue: asyncio.Queue[tuple[PendingRow, Outcome, str, Stored] | None]
        self._queue = asyncio.Queue()
        self._content: dict[str, _Entry | _Failed | asyncio.Future[_Entry | _Failed | None]] = {}
        self._phash = _PhashIndex(pipeline.phash_distance)
        self._shards = pipeline.output != "files"
        known = self._load_indexes()
        self._output = self._make_output(known)

    @property
    def sink(self) -> SinkFactory:
        return self._sink

    def _load_indexes(self) -> set[str]:
        known: set[str] = set()
        content, perceptual = self._p.dedup != "none", self._p.dedup == "perceptual"
        if not (content or self._shards):
            return known
        for done in self._journal.done():
            info, path = done.info, done.path
            if path:
                known.add(path)
            if info.get("duplicate_of") or not path or not done.sha256:
                continue
            if content:
                sample = info.get("key") or url_key(done.key)
                entry = _Entry(done.id, path, done.bytes, _described(info), sample)
                self._content[done.sha256] = entry
            if perceptual and "phash" in info:
                self._phash.add(int(info["phash"], 16), done.id)
        return known

    def _make_output(self, known: set[str]) -> Output:
        root, p = self._state.out, self._p
        if p.output == "files":
            return FilesOutput(root, lambda h: self._state.record(h.row, h.outcome, h.key))
        extra = [c for c in p.extra_columns if c != p.caption_column]
        shards = (
            TarShards(root, p.shard_size, self._commit, known)
            if p.output == "webdataset"
            else ParquetShards(root, p.shard_size, self._commit, known, extra)
        )
        shards.number_from(p.first_shard)
        return shards

    def _commit(self, items: list[Held]) -> bool:
        for held in items:
            self._state.record(held.row, held.outcome, held.key, flush=False)
        return self._state.commit_now()

    def close(self) -> None:
        self._output.close()

    async def admit(self) -> None:
        limit = self._p.backlog
        if self._backlog >= limit:
            async with self._room:
                await self._room.wait_for(lambda: self._backlog < limit)

    async def process(self, row: PendingRow, outcome: Outcome, key: str) -> None:
        """Queue a body for the CPU stage and return: the engine worker fetches on."""
        if not outcome.ok or outcome.stored is None:
            self._state.record(row, outcome, key)
            return
        self._backlog += 1
        self._queue.put_nowait((row, outcome, key, outcome.stored))

    def drain(self, consumers: int) -> None:
        for _ in range(consumers):
            self._queue.put_nowait(None)

    async def consume(self) -> None:
        while (item := await self._queue.get()) is not None:
            row, outcome, key, staged = item
            try:
                await self._process(row, outcome, key, staged)
            except RequestError as exc:  # e.g. write_error storing the result
                self._fail(row, outcome, key, exc)
            finally:
                discard(staged.path)
                await self._release()

    async def _release(self) -> None:
        self._backlog -= 1
        async with self._room:
            # One finished item lets one new fetch start, not every waiting worker at once.
            self._room.notify(1)

    def _fail(self, row: PendingRow, outcome: Outcome, key: str, exc: RequestError) -> None:
        exc.url = exc.url or row.url
        outcome.ok, outcome.error, outcome.stored = False, exc, None
        self._state.record(row, outcome, key)

    async def _process(self, row: PendingRow, outcome: Outcome, key: str, staged: Stored) -> None:
        waiter: asyncio.Future[_Entry | _Failed | None] | None = None
        if self._p.dedup != "none":
            seen = self._content.get(staged.sha256)
            if isinstance(seen, asyncio.Future):
                seen = await asyncio.shield(seen)
            if seen is not None:
                self._duplicate(row, outcome, key, staged, seen)
                return
            waiter = asyncio.get_running_loop().create_future()
            self._content[staged.sha256] = waiter
        entry: _Entry | _Failed | None = None
        try:
            entry = await self._process_new(row, outcome, key, staged)
        finally:
            if waiter is not None:
                if entry is None:
                    self._content.pop(staged.sha256, None)
                else:
                    self._content[staged.sha256] = entry
                waiter.set_result(entry)

    async def _process_new(
        self, row: PendingRow, outcome: Outcome, key: str, staged: Stored
    ) -> _Entry | _Failed | None:
        result = await self._compute(staged, outcome.content_type)
        if not result["ok"]:
            code, message = result["code"], result["message"]
            self._fail(row, outcome, key, ImageError(message, url=row.url, code=code))
            return _Failed(code, message, row.url) if code in _DETERMINISTIC else None
        info: dict[str, Any] = dict(result["info"])
        if "phash" in info:
            near = self._phash.find(int(info["phash"], 16))
            if near is None:
                self._phash.add(int(info["phash"], 16), row.id)
            else:
                info["duplicate_of"] = self._journal.lookup(near)[1]
        sample = Sample(key, staged, result["data"], result["ext"], outcome.content_type, info)
        if self._shards:
            info["key"] = key
            _, url, extra = self._journal.lookup(row.id)
            sample.meta = {
                "key": key,
                "url": url,
                **_stored_identity(staged, result["data"]),
                **info,
            }
            for column in self._p.extra_columns:
                if extra and column in extra:
                    sample.meta.setdefault(column, extra[column])
            caption = (extra or {}).get(self._p.caption_column or "")
            sample.caption = None if caption is None else str(caption)
        outcome.info = info
        location = self._output.store(Held(row, outcome, key), sample)
        size = outcome.stored.size if outcome.stored else 0
        return _Entry(row.id, location, size, _described(info), key)

    async def _compute(self, staged: Stored, content_type: str | None) -> dict[str, Any]:
        if self.pool is None:  # nothing to compute: store as downloaded
            return {"ok": True, "data": None, "ext": extension_for(content_type), "info": {}}
        request: dict[str, Any] = {"options": self._request_options}
        if staged.body is not None:
            request["data"] = staged.body
        else:
            request["path"] = staged.path
        return await self.pool.call(request)

    def _duplicate(
        self, row: PendingRow, outcome: Outcome, key: str, staged: Stored, seen: _Entry | _Failed
    ) -> None:
        if isinstance(seen, _Failed):
            message = f"{seen.message} (same bytes as {seen.url})"
            self._fail(row, outcome, key, ImageError(message, url=row.url, code=seen.code))
            return
        first_url = self._journal.lookup(seen.row_id)[1]
        outcome.stored = Stored(size=seen.size, sha256=staged.sha256, path=seen.location)
        # Same bytes, same image: its row describes what is stored (format, size, the
        # original's under original_*) as the first's does; its own input columns
        # (caption, alt, --save-columns) are its row's, kept by the journal.
        info: dict[str, Any] = {**json.loads(seen.info), "duplicate_of": first_url}
        if self._shards:
            info["key"] = seen.key
        outcome.info = info
        self._output.attach(seen.location, Held(row, outcome, key))
