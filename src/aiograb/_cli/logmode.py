"""Plain progress lines for unattended runs (nohup, cron, cluster jobs).

A progress bar needs a terminal. When stderr is not one, or with ``--log-file``,
the run prints one plain line every ``--log-interval`` seconds instead::

    aiograb: 12,345 of ≥20,000 done (12,000 ok, 345 failed), 812 files/s, 9.1 MB/s, ETA -

and with ``-v`` one line per failed URL (its error class and message). The log is a
side channel: when its reader leaves (a closed pipe) or its file cannot be written,
the log goes quiet and the run goes on.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TextIO

from aiograb._cli.display import bar_total, say

if TYPE_CHECKING:
    from aiograb._core.stats import Progress

__all__ = ["DEFAULT_LOG_INTERVAL", "ProgressLog", "add_log_options", "progress_log"]

DEFAULT_LOG_INTERVAL = 30.0


def add_log_options(g: Any) -> None:
    """The log-mode flags, in the display group of ``add_output_options``."""
    g.add_argument(
        "--log-interval",
        type=float,
        default=DEFAULT_LOG_INTERVAL,
        metavar="SECONDS",
        help="when stderr is not a terminal (nohup, cron) or with --log-file: one plain "
        "progress line every SECONDS (default %(default)g; e.g. --log-interval 5)",
    )
    g.add_argument("-v", "--verbose", action="store_true", help="also log one line per failed URL")
    g.add_argument(
        "--log-file", metavar="FILE", help="append the progress lines to FILE (any terminal)"
    )


class ProgressLog:
    """Writes a progress line every ``interval`` seconds, and failed URLs when ``verbose``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        interval: float,
        verbose: bool,
        expected: int | None = None,
        to_file: bool = False,
    ) -> None:
        self._stream = stream
        self._to_file = to_file
        self._lines = 0
        self._interval = interval
        self._verbose = verbose
        self._expected = expected
        self._t0 = self._last = time.monotonic()
        self._last_done = 0
        self._lost: OSError | ValueError | None = None  # why the log went quiet

    def update(self, p: Progress, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self._interval:
            return
        if final and not (self._lines or self._to_file):
            return  # a run shorter than one interval: its summary says it all
        rate = (p.done - self._last_done) / (now - self._last) if now > self._last else 0.0
        self._last, self._last_done = now, p.done
        total, count = bar_total(p, self._expected)
        eta = "-"
        if total is not None and rate > 0:
            eta = _clock(max(0, total - p.already_done - p.done) / rate)
        self._write(
            f"aiograb: {count} done ({p.ok:,} ok, {p.failed:,} failed), {rate:,.0f} files/s, "
            f"{p.bytes / 1e6:,.1f} MB, {_clock(now - self._t0)} elapsed, ETA {eta}"
        )

    def failed(self, url: str, error: str, message: str) -> None:
        if self._verbose:
            self._write(f"aiograb: failed {url}: {error}: {' '.join(message.split())}")

    def _write(self, line: str) -> None:
        if self._lost is not None:
            return
        self._lines += 1
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (OSError, ValueError) as exc:  # the reader left, the log file's disk is full
            self._lost = exc
            if self._to_file:  # stderr is still there to say so, once
                say(f"aiograb: warning: no more log lines: {self._stream.name}: {exc}")

    def close(self) -> None:
        if self._stream not in (sys.stderr, sys.stdout):
            with suppress(OSError):  # its last buffered line, on a full disk
                self._stream.close()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def progress_log(args: argparse.Namespace, expected: int | None = None) -> ProgressLog | None:
    """The log of a run with these flags, or None (a terminal shows the bar; -q is quiet)."""
    if args.log_interval <= 0:
        from aiograb._core.errors import UsageError

        raise UsageError("--log-interval must be > 0 seconds")
    if args.log_file:
        stream: TextIO = open(args.log_file, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
    elif args.quiet or sys.stderr.isatty():
        return None
    else:
        stream = sys.stderr
    return ProgressLog(
        stream,
        interval=args.log_interval,
        verbose=args.verbose,
        expected=expected,
        to_file=bool(args.log_file),
    )
