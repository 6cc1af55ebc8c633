"""The progress bar (rich) and the final summary text of the CLI."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from aiograb._core.stats import Progress, Summary

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = ["ProgressDisplay", "format_summary"]


class ProgressDisplay:
    """A progress bar refreshed from the event loop (rich's own refresh thread stays off)."""

    def __init__(self, *, enabled: bool, expected: int | None = None) -> None:
        self.enabled = enabled
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
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[green]{task.fields[ok]} ok [red]{task.fields[failed]} failed"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                auto_refresh=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("get", total=None, ok=0, failed=0, rate="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.refresh()
            self._bar.stop()
            self._bar = None

    def update(self, p: Progress) -> None:
        if self._bar is None or self._task is None:
            return
        now = time.monotonic()
        t, done, nbytes = self._last
        if now - t >= 1.0:
            self._rates = ((p.done - done) / (now - t), (p.bytes - nbytes) / 1e6 / (now - t))
            self._last = (now, p.done, p.bytes)
        files_s, mb_s = self._rates
        self._bar.update(
            self._task,
            completed=p.already_done + p.done,
            total=p.total if p.input_done else max(p.total, self.expected or 0) or None,
            ok=f"{p.ok:,}",
            failed=f"{p.failed:,}",
            rate=f"{files_s:,.0f} files/s {mb_s:,.1f} MB/s",
        )
        self._bar.refresh()


def format_summary(s: Summary) -> str:
    total = sum(s.counts.values())
    states = ", ".join(
        f"{s.counts.get(k, 0):,} {k}"
        for k in ("ok", "failed", "skipped", "pending")
        if s.counts.get(k, 0) or k in ("ok", "failed")
    )
    head = "interrupted (run the same command again to resume)" if s.interrupted else "done"
    lines = [
        f"aiograb: {head}: {states} of {total:,} URLs",
        f"  this run: {s.fetched:,} fetched ({s.ok:,} ok, {s.failed:,} failed) in "
        f"{s.elapsed:.1f} s: {s.files_per_second:,.0f} files/s, {s.mb_per_second:,.1f} MB/s, "
        f"{s.retries:,} retries",
    ]
    if s.errors:
        top = ", ".join(f"{k} {v:,}" for k, v in list(s.errors.items())[:8])
        more = f" (+{len(s.errors) - 8} more classes)" if len(s.errors) > 8 else ""
        lines.append(f"  failed by class: {top}{more}")
    if s.input is not None:
        i = s.input
        lines.append(
            f"  input: {i.records:,} lines/records read: {i.new:,} new, "
            f"{i.known:,} already known (duplicates or earlier runs), {i.skipped:,} blank/comment"
        )
    if s.input_error is not None:
        lines.append(f"  input stopped early: {s.input_error}")
    lines.append(
        f"  peak: {s.peak_threads} OS thread{'s' if s.peak_threads != 1 else ''}, "
        f"{s.peak_rss_mb:,.0f} MB RSS"
    )
    lines.append(f"  manifest: {s.manifest}")
    return "\n".join(lines)
