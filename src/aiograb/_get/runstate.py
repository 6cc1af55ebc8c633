"""What every engine of ``aiograb get`` shares: the output folder, the journal,
the lazy row source, recording outcomes, progress, and the final summary.

The engines (async, threads, sync) differ only in how they wait for the
network; everything here is plain synchronous code called from one thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path

from aiograb._core.content import mime_for
from aiograb._core.errors import (
    DiskFull,
    HashMismatch,
    InputError,
    InvalidURL,
    NotWritable,
    WriteError,
)
from aiograb._core.models import InputRow, Outcome
from aiograb._core.stats import (
    InputCounts,
    Progress,
    ResourcePeaks,
    Resumed,
    Summary,
    peak_rss_mb,
)
from aiograb._core.urls import normalize
from aiograb._get.sources import RowSource, SourceStats
from aiograb._store.check import ensure_output_folder
from aiograb._store.journal import JOURNAL_NAME, LOST_FOLDER_HINT, Journal, NewRow, PendingRow
from aiograb._store.lock import OutputLock
from aiograb._store.refusals import REFUSALS, storage_refusal
from aiograb._store.sinks import FileSink, Stored

__all__ = ["MANIFEST_NAME", "OutcomeHook", "RunState"]

MANIFEST_NAME = "manifest.jsonl"
INGEST_CHUNK = 2000
PENDING_CHUNK = 500
FLUSH_ROWS = 1000
FLUSH_SECONDS = 0.5
ADOPT_MISS_STREAK = 2048  # earlier pending rows without a file before adopting stops

OutcomeHook = Callable[[PendingRow, Outcome], None]

# The classes of a store the file system refused for the whole folder: the run stops
# (its rows stay pending), and the next run does the rows they failed again.
_STOPPING = frozenset({DiskFull.code, NotWritable.code})

_ROW_ERRORS = {
    "invalid_encoding": "input row is not valid UTF-8",
    "invalid_row": "input row is not valid (bad JSON, or no URL field)",
    "missing_url": "input row has no URL",
}


def to_journal(rows: Iterable[InputRow]) -> Iterator[NewRow]:
    """Input rows as journal rows: a valid URL is keyed by its normal form (dedup),
    a bad row by its line, with its error class."""
    for row in rows:
        if row.error is not None:
            message = row.message or _ROW_ERRORS.get(row.error, row.error)
            yield NewRow(f"line:{row.line}", row.url, row.line, row.error, message, row.extra)
            continue
        if (" " in row.url or not row.url.isprintable()) and (why := not_one_url(row.url)):
            shown = row.url.encode("unicode_escape").decode("ascii")
            yield NewRow(f"line:{row.line}", shown, row.line, "invalid_row", why, row.extra)
            continue
        try:
            key = normalize(row.url)
        except InvalidURL as exc:
            yield NewRow(f"line:{row.line}", row.url, row.line, exc.code, str(exc), row.extra)
            continue
        yield NewRow(key, row.url, row.line, extra=row.extra)


def not_one_url(text: str) -> str | None:
    """Why ``text`` (a stripped input cell) is not a single URL, or None.

    URL parsers silently drop TAB, CR and LF from inside a URL (WHATWG), which would
    turn ``http://a/1<CR>http://a/2`` into one wrong URL: a row with control
    characters or several whitespace-separated URLs is an input error instead.
    """
    for ch in text:
        if ch < " " or ch == "\x7f":
            return f"input row holds a control character ({ch!r}): not a single URL"
    if sum("://" in part for part in text.split()) > 1:
        return "input row holds several URLs separated by white space"
    return None


def _file_md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class RunState:
    """One run over one output folder. Use from a single thread; ``close`` returns the summary."""

    def __init__(
        self,
        rows: Iterable[InputRow],
        out_dir: str | Path,
        *,
        retry_failed: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        on_outcome: OutcomeHook | None = None,
        verify_hash: tuple[str, str] | None = None,
        io_threads: int = 0,
    ) -> None:
        self.out = Path(out_dir)
        self._verify_hash = verify_hash  # (input column, "sha256" | "md5")
        self._source_stats: SourceStats | None = None
        self._source: RowSource | None = None
        if isinstance(rows, RowSource):  # iterate the inner generator: one call less per row
            self._source, self._source_stats, rows = rows, rows.stats, rows.generator
        self.input_error: str | None = None
        self.storage_error: str | None = None  # the disk filled up (or OUT went): stopped
        self.on_storage_error: Callable[[], None] | None = None  # the engine's stop
        # What stopped it: disk_full, not_writable, or folder_lost (OUT was removed or
        # replaced under the run).
        self.storage_stop: str | None = None
        self._manifest_written = False
        self.journals_written_back = 0  # the journal deleted under the run, written back
        self._read = self._known = 0
        ensure_output_folder(self.out)
        # Locked before anything in OUT is touched: a second run exits with one line.
        self.lock = OutputLock(self.out)
        try:
            self.sink = FileSink(self.out, io_threads=io_threads)
            self.sink.prepare()
            self.journal = Journal(self.out / JOURNAL_NAME)
            self._journal_file = _file_id(self.out / JOURNAL_NAME)
            self._out_file = _file_id(self.out)
        except BaseException:
            if (sink := getattr(self, "sink", None)) is not None:
                sink.close()  # its IO threads, when it has any
            self.lock.release()
            raise
        self._rows = to_journal(rows)
        self._retry_failed = retry_failed
        self._on_progress = on_progress
        self._on_outcome = on_outcome
        self.progress = Progress()
        self.peaks = ResourcePeaks()
        # Rows a full disk or a read-only folder failed were fine: this run does them again.
        for code in sorted(_STOPPING):
            self.journal.reopen_failed(code)
        counts = self.journal.counts()
        self._resumed = (
            Resumed(
                started=self.journal.created(),
                rows=sum(counts.values()),
                ok=counts.get("ok", 0),
                failed=counts.get("failed", 0),
            )
            if counts
            else None
        )
        # Only rows an earlier run left can have a file stored without its row committed.
        self._earlier_rows = self.journal.last_id()
        self._adopt_misses = 0  # earlier rows in a row without a file in place
        self._host_samples = self._host_held = self._per_host = 0
        self.adopted = 0
        self.progress.total = sum(counts.values())
        self.progress.already_done = counts.get("ok", 0) + (
            0 if retry_failed else counts.get("failed", 0)
        )
        self._t0 = time.monotonic()

    def pending(self, after: int = 0) -> Iterator[PendingRow]:
        """Rows to fetch, lazily: first what the journal holds, then new input in chunks.

        The next chunk of input is read only when no pending row is left, so memory
        does not grow with the input and a resumed run first finishes old rows.
        ``after`` skips rows with ids up to it (a crawl resumes its scan there).
        """
        cursor = after
        journal, progress = self.journal, self.progress
        while True:
            batch = journal.pending(cursor, PENDING_CHUNK, retry_failed=self._retry_failed)
            if batch:
                cursor = batch[-1].id
                yield from batch
                continue
            if progress.input_done:
                return
            chunk = self._read_chunk()
            if self.storage_error is not None:
                return
            try:
                new_pending, new_failed = journal.add(chunk)
            except (sqlite3.Error, OSError) as exc:
                self._storage_failed(exc)
                return
            progress.total += new_pending + new_failed
            progress.failed += new_failed
            self._read += len(chunk)
            self._known += len(chunk) - new_pending - new_failed

    def _read_chunk(self) -> list[NewRow]:
        """The next chunk of input. An input that breaks mid-stream (a truncated gzip)
        ends the input: the rows read before it are kept and done, and the run ends
        with ``input_error`` set (exit code 2)."""
        chunk: list[NewRow] = []
        try:
            chunk.extend(islice(self._rows, INGEST_CHUNK))
        except InputError as exc:
            self.input_error = str(exc)
            self.progress.input_done = True
            return chunk
        if len(chunk) < INGEST_CHUNK:
            self.progress.input_done = True
        return chunk

    def _input_counts(self) -> InputCounts | None:
        stats = self._source_stats
        if stats is None or self._source is None:
            return None
        self._source.close()  # a run stopped early: its counts are final up to here
        new = self._read - self._known
        return InputCounts(records=stats.records, skipped=stats.skipped, known=self._known, new=new)

    def record(
        self,
        row: PendingRow,
        outcome: Outcome,
        key: str,
        *,
        commit_with: Callable[[], None] | None = None,
        flush: bool = True,
    ) -> None:
        """Count and journal an outcome; ``commit_with`` commits it at once, together
        with that callable's writes (a crawled page and the rows found on it).
        ``flush=False`` leaves the commit to the caller, who records a batch (a
        shard's rows) and commits it in one transaction."""
        progress = self.progress
        if self._verify_hash is not None and outcome.ok:
            self._check_hash(row, outcome, *self._verify_hash)
        if outcome.ok:
            progress.ok += 1
            progress.bytes += outcome.stored.size if outcome.stored else 0
        else:
            progress.failed += 1
            progress.errors[outcome.error_code or "unknown"] += 1
            if row.id <= self._earlier_rows:
                self.sink.remove_stale(key)
        self.journal.record(row.id, outcome)
        if outcome.error_code in _STOPPING:
            self._stop_for_storage(str(outcome.error), outcome.error_code)
        elif outcome.error_code == WriteError.code and self._folder_lost():
            self._stop_for_lost_folder(str(outcome.error))
        if commit_with is not None or (flush and self.journal.buffered >= FLUSH_ROWS):
            self._flush(commit_with)
        if self._on_outcome is not None:
            self._on_outcome(row, outcome)

    def _check_hash(self, row: PendingRow, outcome: Outcome, column: str, algo: str) -> None:
        """Fail an ok outcome whose stored file's hash is not the input's ``column``."""
        stored = outcome.stored
        extra = self.journal.lookup(row.id)[2] or {}
        expected = str(extra.get(column) or "").strip().lower()
        if stored is None or stored.path is None or not expected:
            return  # nothing to check against
        path = f"{self.sink.root_str}/{stored.path}"
        actual = stored.sha256 if algo == "sha256" else _file_md5(path)
        if actual == expected:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        outcome.ok, outcome.stored = False, None
        outcome.error = HashMismatch(
            f"{algo} of the body is {actual}, the input's {column} says {expected}", url=row.url
        )

    def adopt(self, row: PendingRow, key: str) -> bool:
        """Record a pending row of an earlier run as ok when its file is already in
        place (renamed, then killed before the row was committed): its size and sha256
        come from the file, so nothing is fetched again. False when there is none."""
        if row.id > self._earlier_rows or self._adopt_misses >= ADOPT_MISS_STREAK:
            return False
        if (rel := self.sink.find_stored(key)) is None:
            # Pending rows are fetched in id order: past the killed run's last stored
            # files none are in place, so stop looking (a bounded number of stats).
            self._adopt_misses += 1
            return False
        self._adopt_misses = 0
        digest, size = hashlib.sha256(), 0
        with open(f"{self.sink.root_str}/{rel}", "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        stored = Stored(size=size, sha256=digest.hexdigest(), path=rel)
        mime = mime_for(rel.rsplit(".", 1)[1])
        outcome = Outcome(url=row.url, ok=True, content_type=mime, stored=stored)
        outcome.info = {"adopted": True}  # stored by an earlier run, not fetched now
        self.adopted += 1
        self.record(row, outcome, key)
        return True

    def sample_hosts(self, held_back: bool, per_host: int) -> None:
        """One sample of whether the per-host limit held the run back (once a tick)."""
        self._host_samples += 1
        self._host_held += held_back
        self._per_host = per_host

    def tick(self) -> None:
        """Periodic work: resource peaks, a time-based journal commit, progress."""
        self.peaks.sample()
        if time.monotonic() - self.journal.last_commit >= FLUSH_SECONDS:
            self._flush()
        if self._on_progress is not None:
            self._on_progress(self.progress)

    @property
    def folder_lost(self) -> bool:
        """Whether OUT was removed or replaced under the run: nothing more is written there."""
        return self.storage_stop == "folder_lost"

    def flush(self) -> None:
        """Commit the buffered outcomes now (before reading the journal back: the crawl's
        graph); a refused write stops the run, as every commit of the run does."""
        self._flush()

    def write_refused(
        self,
        exc: sqlite3.Error | OSError,
        what: str,
        then: str = "the same command writes it again",
    ) -> None:
        """A file of the run's own (the manifest, the crawl's link graph) that the file
        system refused: the run ends stopped for storage (exit 74), and its one line says
        that file is missing and how to get it (``then``); any other failure is a bug."""
        if (code := storage_refusal(exc)) is None:
            raise exc
        self._stop_for_storage(str(exc), code)
        fix = REFUSALS.get(self.storage_stop or code, REFUSALS[code])[1]
        self.storage_error = (
            f"{self.storage_error}. {what} could not be written: after you {fix}, {then}"
        )

    def commit_now(self) -> bool:
        """Commit the buffered rows at once, even while the run stops (a shard's rows,
        just after its rename). False when the storage refused it: the run stops, and
        those rows stay pending."""
        try:
            self.journal.flush()
        except (sqlite3.Error, OSError) as exc:
            self._storage_failed(exc)
            return False
        return True

    def _flush(self, also: Callable[[], None] | None = None) -> None:
        if self.storage_error is not None:
            return  # the run is stopping: what is buffered stays pending, done again later
        try:
            self.journal.flush(also=also)
            if self._journal_deleted():
                self.journal.write_back()
                self._journal_file = _file_id(self.out / JOURNAL_NAME)
                self.journals_written_back += 1
        except (sqlite3.Error, OSError) as exc:
            self._storage_failed(exc)

    def _journal_deleted(self) -> bool:
        """Whether the journal's file is gone from OUT, OUT itself kept (a cleanup of
        ``*.sqlite``, a careless ``rm``): what it recorded is only in the open connection.
        A stat at each commit. (OUT removed or replaced: the next store stops the run.)"""
        try:
            os.stat(self.out / JOURNAL_NAME)
            return False
        except FileNotFoundError:
            pass
        try:
            return _file_id(self.out) == self._out_file
        except OSError:
            return False

    def _storage_failed(self, exc: sqlite3.Error | OSError) -> None:
        """A journal write failed: a full disk or a read-only folder stops the run
        cleanly; anything else is a bug."""
        if (code := storage_refusal(exc)) is None:
            raise exc
        self._stop_for_storage(f"the journal cannot be written: {exc}", code)

    def _stop_for_storage(self, why: str, code: str) -> None:
        if self.storage_error is None:
            what, fix = REFUSALS[code]
            self.storage_stop = code
            self.storage_error = (
                f"{self.out}: {what} ({why}); stopped. Rows not recorded stay "
                f"pending: {fix} and run the same command again to finish"
            )
            if self.on_storage_error is not None:
                self.on_storage_error()

    def _folder_lost(self) -> bool:
        """Whether the journal this run writes is no longer in OUT (the folder was
        removed, or replaced): its rows, and the files, went with it."""
        try:
            return _file_id(self.out / JOURNAL_NAME) != self._journal_file
        except (FileNotFoundError, NotADirectoryError):
            return True

    def _stop_for_lost_folder(self, why: str) -> None:
        """Stop at once: every file from now on would be fetched and thrown away."""
        if self.storage_error is None:
            self.storage_stop = "folder_lost"
            self.storage_error = (
                f"{self.out}: the output folder was removed or replaced during the run "
                f"({why}); stopped. {LOST_FOLDER_HINT}"
            )
            if self.on_storage_error is not None:
                self.on_storage_error()

    def _close_storage(self) -> tuple[dict[str, int], dict[str, int]]:
        """Commit, rewrite the manifest, close the journal, even on a full disk. No
        manifest when the folder was lost: its rows would name files that are gone."""
        journal = self.journal
        self._flush()
        try:
            if not self.folder_lost:
                journal.write_manifest(self.out / MANIFEST_NAME)
                self._manifest_written = True
        except (sqlite3.Error, OSError) as exc:
            rebuild = (
                f"rebuild it with 'aiograb manifest {self.out} --to {self.out / MANIFEST_NAME}'"
            )
            self.write_refused(exc, "The manifest", rebuild)
        counts, errors = journal.counts(), journal.error_counts()
        if self.storage_error is not None:
            journal.abandon()  # its buffer cannot be committed: those rows stay pending
        else:
            journal.close()
        return counts, errors

    def close(self, *, interrupted: bool, retries: int) -> Summary:
        """Commit, rewrite the manifest, close the journal; return the summary."""
        self.peaks.sample()
        self.sink.close()
        elapsed = time.monotonic() - self._t0
        try:
            counts, errors = self._close_storage()
        finally:
            self.lock.release()
        if self._on_progress is not None:
            self._on_progress(self.progress)
        p = self.progress
        return Summary(
            out_dir=self.out,
            manifest=self.out / MANIFEST_NAME,
            journal=self.out / JOURNAL_NAME,
            counts=counts,
            errors=errors,
            fetched=p.done,
            ok=p.ok,
            failed=p.failed,
            bytes=p.bytes,
            elapsed=elapsed,
            retries=retries,
            peak_threads=self.peaks.threads,
            io_threads=self.sink.io_threads,
            files_by_io_pool=self.sink.placement.pooled_files,
            peak_rss_mb=peak_rss_mb(),
            interrupted=interrupted,
            input=self._input_counts(),
            input_error=self.input_error,
            input_read=p.input_done,
            storage_error=self.storage_error,
            storage_stop=self.storage_stop,
            manifest_written=self._manifest_written,
            journals_written_back=self.journals_written_back,
            resumed=self._resumed,
            per_host_held=(
                (self._per_host, self._host_held / self._host_samples)
                if self._host_samples >= 10
                else None
            ),
        )


def _file_id(path: Path) -> tuple[int, int]:
    """Which file ``path`` is: its device and inode."""
    st = os.stat(path)
    return st.st_dev, st.st_ino
