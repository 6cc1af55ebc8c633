"""The progress bar (rich, imported only when shown) and the summary texts of the CLI."""

from __future__ import annotations

import contextlib
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from aiograb._core.stats import Progress, Summary

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from aiograb._cli.logmode import ProgressLog
    from aiograb._crawl.run import CrawlSummary

__all__ = ["ProgressDisplay", "bar_total", "format_crawl_summary", "format_summary", "say"]


def say(text: str, stream: TextIO | None = None) -> bool:
    """Print ``text`` and a newline to ``stream`` (stderr) now; False when the stream is
    gone (a closed pipe: ``aiograb get ... 2>&1 | head``). What the run wrote stands, and
    so does its exit code: a reader that left early is not a failure of the run."""
    try:
        print(text, file=sys.stderr if stream is None else stream, flush=True)
    except (OSError, ValueError):  # EPIPE, a terminal hung up (EIO); ValueError: closed
        return False
    return True


def bar_total(p: Progress, expected: int | None) -> tuple[int | None, str]:
    """The bar's total and its "done of total" text.

    While a streamed input (stdin, gzip, parquet) is still being read, the total
    is not known: the text says "of ≥N" (the rows read so far) and the bar has no
    total, so it shows no false ETA. An estimate (the lines of a plain file) is
    used while it is not exceeded.
    """
    done = p.already_done + p.done
    if p.input_done:
        return p.total, f"{done:,}/{p.total:,}"
    if expected is not None and expected >= p.total:
        return expected, f"{done:,}/~{expected:,}"
    return None, f"{done:,} of ≥{p.total:,}"


class ProgressDisplay:
    """A progress bar refreshed from the event loop (rich's own refresh thread stays off)."""

    def __init__(
        self, *, enabled: bool, expected: int | None = None, log: ProgressLog | None = None
    ) -> None:
        self.enabled = enabled
        self.log = log  # plain lines for unattended runs (_cli/logmode.py)
        self._progress: Progress | None = None
        self.expected = expected  # an estimate of the input's rows, for the ETA
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None
        self._t0 = time.monotonic()
        self._last: tuple[float, int, int] = (self._t0, 0, 0)
        self._rates = (0.0, 0.0)

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            # Imported here: rich costs start-up time that a quiet run does not need.
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TextColumn("[green]{task.fields[ok]} ok [red]{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                auto_refresh=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("get", total=None, ok=0, failed=0, rate="", count="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            with contextlib.suppress(OSError):  # the terminal hung up
                self._bar.refresh()
                self._bar.stop()
            self._bar = None
        if self.log is not None:
            if self._progress is not None:  # the last line counts what the summary counts
                self.log.update(self._progress, final=True)
            self.log.close()

    def outcome(self, row: Any, outcome: Any) -> None:
        """The engines' per-outcome hook: a failed URL is a log line with ``-v``."""
        if self.log is not None and not outcome.ok:
            self.log.failed(row.url, outcome.error_code or "unknown", str(outcome.error))

    def update(self, p: Progress) -> None:
        self._progress = p
        if self.log is not None:
            self.log.update(p)
        if self._bar is None or self._task is None:
            return
        now = time.monotonic()
        t, done, nbytes = self._last
        if now - t >= 1.0:
            self._rates = ((p.done - done) / (now - t), (p.bytes - nbytes) / 1e6 / (now - t))
            self._last = (now, p.done, p.bytes)
        files_s, mb_s = self._rates
        total, count = bar_total(p, self.expected)
        self._bar.update(
            self._task,
            completed=p.already_done + p.done,
            total=total,
            count=count,
            ok=f"{p.ok:,}",
            failed=f"{p.failed:,}",
            rate=f"{files_s:,.0f} files/s {mb_s:,.1f} MB/s",
        )
        try:
            self._bar.refresh()
        except OSError:  # the terminal hung up (EIO): the run goes on without its bar
            self._bar = None


def format_summary(s: Summary) -> str:
    total = sum(s.counts.values())
    states = ", ".join(
        f"{s.counts.get(k, 0):,} {k}"
        for k in ("ok", "failed", "skipped", "pending")
        if s.counts.get(k, 0) or k in ("ok", "failed")
    )
    head = "interrupted (run the same command again to resume)" if s.interrupted else "done"
    if s.folder_lost:
        head = "stopped: the output folder was removed during the run"
    elif s.storage_stop == "not_writable":
        head = "stopped: the output folder is not writable (make it writable, then run again)"
    elif s.storage_error is not None:
        head = "stopped: no space left (free some space, then run the same command again)"
    lines = [
        # As the bar says: while the input was not read to its end, more rows may follow.
        f"aiograb: {head}: {states} of {'' if s.input_read else '≥'}{total:,} URLs",
        f"  this run: {s.fetched:,} fetched ({s.ok:,} ok, {s.failed:,} failed) in "
        f"{s.elapsed:.1f} s: {s.files_per_second:,.0f} files/s, {s.mb_per_second:,.1f} MB/s, "
        f"{s.retries:,} retries",
    ]
    if s.resumed is not None:
        lines.append(_resumed_line(s))
    if s.errors:  # every class: a "+3 more" hides exactly the one that matters
        lines.append("  failed by class: " + ", ".join(f"{k} {v:,}" for k, v in s.errors.items()))
        if s.fetched == 0 and not s.counts.get("pending") and not s.interrupted:
            lines.append(
                "  nothing was left to fetch: the failed rows failed in an earlier run; "
                "add --retry-failed to try them again"
            )
    if s.per_host_held is not None and s.per_host_held[1] >= 0.5:
        limit, share = s.per_host_held
        lines.append(
            f"  per-host limit {limit} held requests back {share:.0%} of the time: "
            "raise --per-host for your own servers (0 = no limit)"
        )
    if s.input is not None:
        i = s.input
        lines.append(
            f"  input: {i.records:,} lines/records read: {i.new:,} new, "
            f"{i.known:,} already known (duplicates or earlier runs), {i.skipped:,} blank/comment"
        )
    if s.input_error is not None:
        lines.append(f"  input stopped early: {s.input_error}")
    lines.append(f"  peak: {_threads_line(s)}, {s.peak_rss_mb:,.0f} MB RSS")
    lines.extend(
        f"  {problem} (run the same command again to resume it)" for problem in s.part_errors
    )
    if s.journals_written_back:
        lines.append(
            "  journal: deleted during the run, and written back from the copy the run"
            " held open (nothing recorded was lost)"
        )
    manifest = str(s.manifest)
    if s.folder_lost:
        manifest = "none (its folder is gone)"
    elif not s.manifest_written:
        manifest = "not written (the error below says how to rebuild it)"
    lines.append(f"  manifest: {manifest}")
    return "\n".join(lines)


def _resumed_line(s: Summary) -> str:
    r = s.resumed
    assert r is not None
    when = (
        "an earlier run"
        if r.started is None
        else "a run of " + time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started))
    )
    new = sum(s.counts.values()) - r.rows
    return (
        f"  resumed {when}: {r.rows:,} rows ({r.ok:,} ok, {r.failed:,} failed), "
        f"{new:,} new this run"
    )


def _threads_line(s: Summary) -> str:
    """``4 OS threads (of at most loop + resolver helper + 2 IO)``, per process when several."""
    text = f"{s.peak_threads} OS thread{'s' if s.peak_threads != 1 else ''}"
    bound = "loop + resolver helper" + (f" + {s.io_threads} IO" if s.io_threads else "")
    where = f" per process, {s.processes} processes" if s.processes > 1 else ""
    pooled = ""
    if s.io_threads and s.fetched:  # where the files went: measured, per file (Placement)
        pooled = f"; {s.files_by_io_pool:,} files stored by the IO pool, the rest on the loop"
    return f"{text}{where} (of at most {bound}{pooled})"


def format_crawl_summary(result: CrawlSummary) -> str:
    lines = [format_summary(result.summary)]
    names = {"page": "pages", "image": "images", "css": "stylesheets", "sitemap": "sitemaps"}
    for kind, name in names.items():
        states = result.kinds.get(kind)
        if states:
            text = ", ".join(f"{n:,} {s}" for s, n in sorted(states.items()))
            lines.append(f"  {name}: {text}")
    robots = "ignored (--ignore-robots)" if result.robots == "ignored" else result.robots
    lines.append(f"  robots.txt: {robots} ({result.robots_fetched} fetched this run)")
    graph = str(result.graph) if result.graph_written else "not written (see the error below)"
    lines.append(f"  graph: {graph}")
    return "\n".join(lines)
