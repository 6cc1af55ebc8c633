"""URL list readers: txt, csv, tsv, jsonl and parquet files (optionally gzipped) or stdin.

``open_source`` checks everything that would make the input unusable as a whole
*before* it returns (missing file, unknown format, no such column, not gzip, not
parquet ...) and raises :class:`~aiograb.InputError` with a one-line message.
It then hands back a lazy generator of :class:`InputRow`: the file is streamed,
never held, so a list of a hundred million URLs costs no more memory than ten.

A line that cannot be used is not an exception but a row with ``error`` set,
so it ends up in the manifest like any other failure:

- ``invalid_encoding``: the URL has bytes that are not UTF-8;
- ``invalid_row``: a line that is not JSON, JSON without a URL or with a
  non-string URL, or a CSV record the ``csv`` module cannot parse;
- ``missing_url``: the URL cell is empty, null or absent (a short CSV record).

``invalid_row`` also covers records that would otherwise swallow other rows or
memory: a line longer than :data:`MAX_RECORD_BYTES` (drained, never held whole),
a CSV field that runs over several lines and holds what looks like further URL
rows (a stray ``"``), a URL cell with a line break, JSON nested too deeply.
Files with CR-only line endings are read as lines. Every input line is
accounted for: :class:`SourceStats` (``rows.stats``) counts the records read
and the blank and comment lines skipped, so ``records == rows + skipped``.
An error found mid-stream (a truncated gzip, corrupt parquet pages) raises
InputError naming the last good line; the rows before it have been yielded.

Example::

    rows = open_source("urls.csv.gz", url_column="image", extra_columns=["caption"])
    for row in rows:
        print(row.line, row.url, row.error, row.extra)

The generator owns the file; it is closed when the generator is exhausted,
closed (``rows.close()``) or garbage-collected.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Generator, Sequence
from typing import Any, BinaryIO, Final, cast

from aiograb._core.errors import InputError
from aiograb._core.models import InputRow
from aiograb._get.readers import delimited_rows, jsonl_rows, parquet_rows, txt_rows
from aiograb._get.textio import (
    EXTENSIONS,
    FORMATS,
    MAX_RECORD_BYTES,
    SUPPORTED_TEXT,
    UNSUPPORTED,
    SourceStats,
)

__all__ = [
    "FORMATS",
    "MAX_RECORD_BYTES",
    "InputRow",
    "RowSource",
    "SourceStats",
    "detect_format",
    "open_source",
]


class RowSource(Generator[InputRow, None, None]):
    """What :func:`open_source` returns: a generator of rows with ``stats`` (SourceStats)."""

    __slots__ = ("generator", "stats")

    def __init__(self, generator: Generator[InputRow, None, None], stats: SourceStats) -> None:
        self.generator = generator  # iterate this one on hot paths: one call less per row
        self.stats = stats

    def __next__(self) -> InputRow:
        return next(self.generator)

    def send(self, value: None) -> InputRow:
        return self.generator.send(value)

    def throw(self, *args: Any) -> InputRow:
        return self.generator.throw(*args)

    def close(self) -> None:
        self.generator.close()


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` judged by its name: one of :data:`FORMATS`.

    A trailing ``.gz`` is ignored; no extension or an unknown one means txt.
    Raises InputError for names that are certainly not readable (.json, .xlsx, .zip ...).

    >>> detect_format("shard-0001.csv.gz")
    'csv'
    """
    name = os.fspath(path)
    if name == "-":
        return "txt"
    base = os.path.basename(name).lower()
    if base.endswith(".gz"):
        base = base[:-3]
    ext = os.path.splitext(base)[1]
    if ext in UNSUPPORTED:
        raise InputError(f"{name}: {UNSUPPORTED[ext]} is not a supported input; {SUPPORTED_TEXT}")
    return EXTENSIONS.get(ext, "txt")


def open_source(
    source: str | os.PathLike[str],
    *,
    url_column: str | None = None,
    extra_columns: Sequence[str] = (),
    fmt: str | None = None,
    stdin: BinaryIO | None = None,
) -> RowSource:
    """Open a URL list and return a lazy generator of its rows (with ``.stats``).

    ``source`` is a path or ``"-"`` for stdin (``stdin``, default
    ``sys.stdin.buffer``; it is read, never closed). ``fmt`` forces a format,
    otherwise it is taken from the file name (stdin: txt). Gzip is recognised
    by its magic bytes. ``url_column`` names the column or JSON key of the URL;
    by default ``url``, then ``image_url`` (any case), then the only column.

    Raises InputError now, before the first row, if the input is unusable as a
    whole; later only if a file turns out to be corrupt (truncated gzip ...).

    >>> rows = open_source("-", stdin=io.BytesIO(b"# list\\nhttp://a/1.jpg\\n"))
    >>> next(rows)
    InputRow(line=2, url='http://a/1.jpg', error=None, extra=None)
    """
    name = os.fspath(source)
    label = "<stdin>" if name == "-" else name
    fmt = _resolve_format(name, fmt)
    extras = (extra_columns,) if isinstance(extra_columns, str) else tuple(extra_columns)
    if fmt == "txt" and (url_column is not None or extras):
        raise InputError(
            f"{label}: a txt list has one URL per line and no columns; "
            "url_column and extra columns need csv, tsv, jsonl or parquet"
        )
    stream = (stdin if stdin is not None else sys.stdin.buffer) if name == "-" else None
    stats = SourceStats()
    rows: Generator[InputRow | None, None, None]
    if fmt == "txt":
        rows = txt_rows(name, label, stream, stats)
    elif fmt in ("csv", "tsv"):
        delimiter = "," if fmt == "csv" else "\t"
        rows = delimited_rows(name, label, stream, stats, delimiter, url_column, extras)
    elif fmt == "jsonl":
        rows = jsonl_rows(name, label, stream, stats, url_column, extras)
    else:
        rows = parquet_rows(name, label, stream, stats, url_column, extras)
    # Each reader validates, then yields one None: running it to that point
    # here makes the checks eager, and a started generator closes its file
    # when it is closed or collected, even if no row is ever taken.
    next(rows)
    return RowSource(cast(Generator[InputRow, None, None], rows), stats)


_URL_ARGUMENT: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def is_url_argument(arg: str) -> bool:
    """Whether a command-line input names a URL (``https://...``) rather than a file.

    An existing file wins, so a file oddly named ``http:`` stays readable.
    """
    return _URL_ARGUMENT.match(arg) is not None and not os.path.exists(arg)


def url_arguments(urls: Sequence[str]) -> RowSource:
    """The rows of URLs given directly (``aiograb get https://h/a.jpg -o out``);
    ``line`` is the argument's position, from 1."""
    stats = SourceStats()

    def rows() -> Generator[InputRow, None, None]:
        for i, url in enumerate(urls, 1):
            stats.records = stats.lines = i
            yield InputRow(i, url.strip())

    return RowSource(rows(), stats)


def _resolve_format(name: str, fmt: str | None) -> str:
    if fmt is None:
        return detect_format(name)
    fmt = {"ndjson": "jsonl", "text": "txt"}.get(fmt.lower(), fmt.lower())
    if fmt not in FORMATS:
        raise InputError(f"unknown input format {fmt!r}; supported: {', '.join(FORMATS)}")
    return fmt
