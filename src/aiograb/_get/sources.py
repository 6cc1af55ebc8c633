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

import csv
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, cast

from aiograb._core.errors import InputError
from aiograb._core.models import InputRow

__all__ = [
    "FORMATS",
    "MAX_RECORD_BYTES",
    "InputRow",
    "RowSource",
    "SourceStats",
    "detect_format",
    "open_source",
]

FORMATS: Final = ("txt", "csv", "tsv", "jsonl", "parquet")

_EXTENSIONS: Final = {
    "": "txt",
    ".txt": "txt",
    ".list": "txt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Extensions that are certainly not a URL list we can read; everything else
# unknown is read as txt (after a check that it is text at all).
_UNSUPPORTED: Final = {
    ".json": "a JSON document (write one object or string per line: .jsonl)",
    ".xlsx": "an Excel workbook (export it as .csv)",
    ".xls": "an Excel workbook (export it as .csv)",
    ".ods": "a spreadsheet (export it as .csv)",
    ".zip": "a zip archive",
    ".tar": "a tar archive",
    ".tgz": "a tar archive",
    ".bz2": "bzip2-compressed (only .gz is supported)",
    ".xz": "xz-compressed (only .gz is supported)",
    ".zst": "zstd-compressed (only .gz is supported)",
    ".7z": "a 7z archive",
}
_SUPPORTED_TEXT: Final = (
    "supported: .txt/.list, .csv, .tsv, .jsonl/.ndjson, .parquet, each optionally .gz"
)
_URL_COLUMNS: Final = ("url", "image_url")
_GZIP_MAGIC: Final = b"\x1f\x8b"
_BOM: Final = b"\xef\xbb\xbf"
_SNIFF_BYTES: Final = 4096
_PARQUET_BATCH: Final = 16_384
_json_decode: Final = json.JSONDecoder().decode  # json.loads re-checks its options every call
MAX_RECORD_BYTES: Final = 64 * 1024  # a URL line longer than this is not a URL
_DRAIN_BYTES: Final = 1 << 20


@dataclass(slots=True)
class SourceStats:
    """How much of the input was read: every line/record is counted once.

    ``records`` counts the records read (txt, jsonl: lines; csv, tsv: records after
    the header; parquet: rows); ``skipped`` those that were blank or comments
    (``#`` in txt), ``rows`` those yielded as an :class:`InputRow`. After the whole
    input, ``records == rows + skipped``. ``lines`` is the last physical line read.
    """

    records: int = 0
    skipped: int = 0
    lines: int = 0

    @property
    def rows(self) -> int:
        return self.records - self.skipped


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
    if ext in _UNSUPPORTED:
        raise InputError(f"{name}: {_UNSUPPORTED[ext]} is not a supported input; {_SUPPORTED_TEXT}")
    return _EXTENSIONS.get(ext, "txt")


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
        rows = _txt_rows(name, label, stream, stats)
    elif fmt in ("csv", "tsv"):
        delimiter = "," if fmt == "csv" else "\t"
        rows = _delimited_rows(name, label, stream, stats, delimiter, url_column, extras)
    elif fmt == "jsonl":
        rows = _jsonl_rows(name, label, stream, stats, url_column, extras)
    else:
        rows = _parquet_rows(name, label, stream, stats, url_column, extras)
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


# -- opening ------------------------------------------------------------------


def _open_file(name: str, label: str) -> BinaryIO:
    try:
        return open(name, "rb")  # the caller closes it
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot open: {_one_line(exc.strerror or exc)}") from None


def _head(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` leading bytes of ``stream``, without consuming them (best effort)."""
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return cast(bytes, peek(size))[:size]
    if stream.seekable():
        pos = stream.tell()
        data = stream.read(size)
        stream.seek(pos)
        return data
    return b""


class _CRToLF(io.RawIOBase):
    """``inner`` with every CR read as LF: a file with CR-only line endings (old Mac
    exports) is read as lines instead of as one huge line."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._read = getattr(inner, "read1", inner.read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer)).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def _open_text_bytes(
    name: str, label: str, stdin: BinaryIO | None, stats: SourceStats
) -> Iterator[BinaryIO]:
    """The binary stream of a text input: gunzipped, BOM skipped, checked to be text,
    CR-only line endings read as LF.

    Read errors inside the ``with`` block (a truncated gzip) become InputError
    naming the last line read (``stats.lines``).
    """
    with ExitStack() as stack:
        stream = stack.enter_context(_open_file(name, label)) if stdin is None else stdin
        gzipped = name.lower().endswith(".gz")
        try:
            head = _head(stream, 2)
            if head and gzipped and not head.startswith(_GZIP_MAGIC):
                raise InputError(f"{label}: is not gzip-compressed although its name ends in .gz")
            if head.startswith(_GZIP_MAGIC):
                gzipped = True
                gz = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
                # Reading lines from GzipFile goes through Python code per line;
                # a BufferedReader on top splits lines in C.
                stream = cast(BinaryIO, io.BufferedReader(cast(Any, gz), 65536))
            head = _head(stream, _SNIFF_BYTES)
            _check_text(head, label)
            if b"\r" in head and b"\n" not in head:
                stream = cast(BinaryIO, io.BufferedReader(_CRToLF(stream), 65536))
            if head.startswith(_BOM):
                stream.read(len(_BOM))
            yield stream
        except (OSError, EOFError, zlib.error) as exc:
            what = "gzip data is corrupt or truncated" if gzipped else "read error"
            raise InputError(
                f"{label}: {what} after line {stats.lines:,} "
                f"(the rows before it were read): {_one_line(exc)}"
            ) from exc


def _check_text(head: bytes, label: str) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{label}: is UTF-16 encoded; save it as UTF-8")
    if b"\x00" in head:
        if head.startswith(b"PAR1"):
            raise InputError(f"{label}: is a parquet file; name it .parquet or pass fmt='parquet'")
        raise InputError(f"{label}: is a binary file, not a list of URLs; {_SUPPORTED_TEXT}")


# A line is read with this limit: room for MAX_RECORD_BYTES and its CRLF.
_LINE_LIMIT: Final = MAX_RECORD_BYTES + 2
_TOO_LONG: Final = f"input line is longer than {MAX_RECORD_BYTES // 1024} KiB: not a URL"


def _drain_line(readline: Callable[[int], bytes]) -> None:
    """Skip the rest of an overlong line in bounded reads: it is never held whole."""
    while (more := readline(_DRAIN_BYTES)) and more[-1] != 0x0A:
        pass


def _too_long(lineno: int, raw: bytes) -> InputRow:
    return InputRow(lineno, _readable_bytes(raw[:100]) + "...", "invalid_row", None, _TOO_LONG)


# -- txt ----------------------------------------------------------------------


def _txt_rows(
    name: str, label: str, stdin: BinaryIO | None, stats: SourceStats
) -> Generator[InputRow | None, None, None]:
    with _open_text_bytes(name, label, stdin, stats) as stream:
        yield None
        readline = stream.readline
        lineno = 0
        try:
            # The hot loop: about half a microsecond a line, most of it building InputRow.
            while raw := readline(_LINE_LIMIT):
                lineno += 1
                if len(raw) == _LINE_LIMIT and raw[-1] != 0x0A:
                    _drain_line(readline)
                    yield _too_long(lineno, raw)
                    continue
                try:
                    url = raw.decode().strip()
                except UnicodeDecodeError:
                    text = _readable_bytes(raw.strip())
                    if text and text[0] != "#":
                        yield InputRow(lineno, text, "invalid_encoding")
                    else:
                        stats.skipped += 1
                    continue
                if url and url[0] != "#":
                    yield InputRow(lineno, url)
                else:
                    stats.skipped += 1
        finally:
            stats.lines = stats.records = lineno


# -- csv / tsv ----------------------------------------------------------------


def _delimited_rows(
    name: str,
    label: str,
    stdin: BinaryIO | None,
    stats: SourceStats,
    delimiter: str,
    url_column: str | None,
    extras: tuple[str, ...],
) -> Generator[InputRow | None, None, None]:
    with _open_text_bytes(name, label, stdin, stats) as stream:
        # Lines are read bounded (an overlong one is drained and marked) and decoded
        # with surrogateescape: a bad byte spoils only the cell it is in, not the file.
        overlong: set[int] = set()
        reader = csv.reader(_csv_lines(stream, overlong), delimiter=delimiter)
        try:
            header = next((row for row in reader if row), None)
        except csv.Error as exc:
            raise InputError(f"{label}: cannot parse the header row: {_one_line(exc)}") from None
        if header is None:
            raise InputError(f"{label}: is empty; expected a header row naming the URL column")
        names = [_readable(cell.strip()) for cell in header]
        if any("://" in cell for cell in names):
            raise InputError(
                f"{label}: has no header row (the first row holds a URL); "
                "add a header such as 'url', or read the file as txt"
            )
        url_index = _pick_column(names, url_column, label)
        extra_indexes = [(col, _find_column(names, col, label, "extra")) for col in extras]
        yield None
        try:
            yield from _delimited_records(reader, url_index, extra_indexes, overlong, stats)
        finally:
            stats.lines = reader.line_num


def _csv_lines(stream: BinaryIO, overlong: set[int]) -> Iterator[str]:
    readline = stream.readline
    lineno = 0
    while raw := readline(_LINE_LIMIT):
        lineno += 1
        if len(raw) == _LINE_LIMIT and raw[-1] != 0x0A:
            _drain_line(readline)
            overlong.add(lineno)
            yield "\n"  # a blank line in its place: the record is reported, not parsed
        else:
            yield raw.decode("utf-8", "surrogateescape")


def _delimited_records(
    reader: Any,
    url_index: int,
    extra_indexes: list[tuple[str, int]],
    overlong: set[int],
    stats: SourceStats,
) -> Iterator[InputRow]:
    previous = reader.line_num
    while True:
        try:
            for record in reader:
                start = previous + 1
                previous = reader.line_num
                stats.records += 1
                if not record:
                    if start in overlong:
                        yield _csv_error(start, _TOO_LONG, extra_indexes)
                    else:
                        stats.skipped += 1  # a blank line
                    continue
                if previous > start and (why := _swallowed(record, url_index, start, previous)):
                    yield _csv_error(start, why, extra_indexes)
                    continue
                extra = _extra_cells(record, extra_indexes) if extra_indexes else None
                url = record[url_index].strip() if url_index < len(record) else ""
                if not url:
                    yield InputRow(start, "", "missing_url", extra)
                elif not url.isascii() and _has_surrogates(url):
                    yield InputRow(start, _readable(url), "invalid_encoding", extra)
                else:
                    yield InputRow(start, url, None, extra)
            return
        except csv.Error as exc:
            # The csv reader resynchronises at the next line; report and go on.
            stats.records += 1
            yield _csv_error(previous + 1, f"CSV record cannot be parsed: {exc}", extra_indexes)
            previous = reader.line_num


def _swallowed(record: list[str], url_index: int, start: int, end: int) -> str | None:
    """Why a record spanning lines ``start``..``end`` is not one row, or None.

    A quoted field may hold line breaks (a caption in two lines); but a URL cell
    with a line break, or a field whose later lines look like further URL rows,
    is a stray ``"`` that swallowed the rows after it.
    """
    where = f"a quoted field runs from line {start} to {end}"
    if url_index < len(record) and "\n" in record[url_index].strip():
        return f"{where} in the URL column (a stray '\"'?)"
    for cell in record:
        if "\n" in cell and any("://" in part for part in cell.split("\n")[1:]):
            return f"{where} and swallows what look like further rows (a stray '\"'?)"
    return None


def _csv_error(line: int, message: str, extra_indexes: list[tuple[str, int]]) -> InputRow:
    return InputRow(line, "", "invalid_row", _no_extra([c for c, _ in extra_indexes]), message)


def _extra_cells(record: list[str], indexes: list[tuple[str, int]]) -> dict[str, Any]:
    return {col: _readable(record[i]) if i < len(record) else None for col, i in indexes}


# -- jsonl --------------------------------------------------------------------


def _jsonl_rows(
    name: str,
    label: str,
    stdin: BinaryIO | None,
    stats: SourceStats,
    url_column: str | None,
    extras: tuple[str, ...],
) -> Generator[InputRow | None, None, None]:
    keys = (url_column,) if url_column is not None else ("url", "image_url", "URL")
    with _open_text_bytes(name, label, stdin, stats) as stream:
        yield None
        readline = stream.readline
        lineno = 0
        try:
            while raw := readline(_LINE_LIMIT):
                lineno += 1
                if len(raw) == _LINE_LIMIT and raw[-1] != 0x0A:
                    _drain_line(readline)
                    yield _too_long(lineno, raw)
                    continue
                try:
                    text = raw.decode().strip()
                except UnicodeDecodeError:
                    yield InputRow(lineno, _readable_bytes(raw.strip()), "invalid_encoding")
                    continue
                if text:
                    yield _json_row(lineno, text, keys, extras)
                else:
                    stats.skipped += 1
        finally:
            stats.lines = stats.records = lineno


def _json_row(lineno: int, text: str, keys: tuple[str, ...], extras: tuple[str, ...]) -> InputRow:
    try:
        value = _json_decode(text)
    except ValueError:
        return InputRow(lineno, text, "invalid_row", _no_extra(extras))
    except RecursionError:
        message = "input line is JSON nested too deeply"
        return InputRow(lineno, text[:100] + "...", "invalid_row", _no_extra(extras), message)
    if isinstance(value, str):
        url: object = value
        extra = _no_extra(extras)
    elif isinstance(value, dict):
        extra = {col: value.get(col) for col in extras} if extras else None
        for key in keys:
            if key in value:
                url = value[key]
                break
        else:
            return InputRow(lineno, text, "invalid_row", extra)
    else:
        return InputRow(lineno, text, "invalid_row", _no_extra(extras))
    if url is None:
        return InputRow(lineno, "", "missing_url", extra)
    if not isinstance(url, str):
        return InputRow(lineno, text, "invalid_row", extra)
    url = url.strip()
    if not url:
        return InputRow(lineno, "", "missing_url", extra)
    if not url.isascii() and _has_surrogates(url):  # a "\udc80" escape in the JSON
        return InputRow(lineno, _readable(url), "invalid_encoding", extra)
    return InputRow(lineno, url, None, extra)


# -- parquet ------------------------------------------------------------------


def _parquet_rows(
    name: str,
    label: str,
    stdin: BinaryIO | None,
    stats: SourceStats,
    url_column: str | None,
    extras: tuple[str, ...],
) -> Generator[InputRow | None, None, None]:
    if name.lower().endswith(".gz"):
        raise InputError(
            f"{label}: gzip-compressed parquet cannot be streamed; "
            "parquet compresses itself, so decompress the file"
        )
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"{label}: reading parquet needs pyarrow: pip install 'aiograb[parquet]'"
        ) from None
    with ExitStack() as stack:
        if stdin is None:
            stream = stack.enter_context(_open_file(name, label))
        elif stdin.seekable():
            stream = stdin
        else:
            raise InputError(f"{label}: parquet needs a seekable file, not a pipe; pass its path")
        try:
            # Buffered, not pre-buffered: a large row group is read page by
            # page rather than as a whole column chunk.
            parquet = pq.ParquetFile(stream, buffer_size=1 << 20, pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{label}: not a readable parquet file: {_one_line(exc)}") from None
        schema = parquet.schema_arrow
        names: list[str] = list(schema.names)
        url_name = names[_pick_column(names, url_column, label)]
        # Extra columns may match in another case; the names asked for stay the keys.
        extra_names = {col: names[_find_column(names, col, label, "extra")] for col in extras}
        url_type = schema.field(url_name).type
        if not _is_text_type(pa, url_type):
            raise InputError(f"{label}: column {url_name!r} holds {url_type}, not strings")
        columns = list(dict.fromkeys((url_name, *extra_names.values())))
        yield None
        try:
            yield from _parquet_records(parquet, columns, extra_names, stats)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"{label}: corrupt parquet data after row {stats.records:,} "
                f"(the rows before it were read): {_one_line(exc)}"
            ) from exc


def _is_text_type(pa: Any, arrow_type: Any) -> bool:
    """Whether a parquet column of ``arrow_type`` reads as str or bytes."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    checks = ("is_string", "is_large_string", "is_string_view", "is_binary", "is_large_binary")
    # getattr: string_view is missing from older pyarrow releases
    return any(getattr(pa.types, check, lambda _: False)(arrow_type) for check in checks)


def _parquet_records(
    parquet: Any, columns: list[str], extra_names: dict[str, str], stats: SourceStats
) -> Iterator[InputRow]:
    extras = list(extra_names)
    row = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=columns):
        urls = batch.column(0).to_pylist()
        extra_values = [batch.column(columns.index(c)).to_pylist() for c in extra_names.values()]
        for i, url in enumerate(urls):
            row += 1
            stats.records = stats.lines = row
            extra = (
                {col: values[i] for col, values in zip(extras, extra_values, strict=True)}
                if extras
                else None
            )
            if isinstance(url, bytes):
                try:
                    url = url.decode()
                except UnicodeDecodeError:
                    yield InputRow(row, _readable_bytes(url.strip()), "invalid_encoding", extra)
                    continue
            url = url.strip() if url is not None else ""
            if url:
                yield InputRow(row, url, None, extra)
            else:
                yield InputRow(row, "", "missing_url", extra)


# -- columns and text ---------------------------------------------------------


def _pick_column(names: list[str], wanted: str | None, label: str) -> int:
    """The index of the URL column: ``wanted``, else url/image_url, else the only column."""
    if wanted is not None:
        return _find_column(names, wanted, label, "URL")
    folded = [n.casefold() for n in names]
    for candidate in _URL_COLUMNS:
        if candidate in folded:
            return folded.index(candidate)
    if len(names) == 1:
        return 0
    raise InputError(
        f"{label}: no 'url' column; name the URL column (columns: {_list_columns(names)})"
    )


def _find_column(names: list[str], wanted: str, label: str, role: str) -> int:
    if wanted in names:
        return names.index(wanted)
    folded = [n.casefold() for n in names]
    if folded.count(wanted.casefold()) == 1:
        return folded.index(wanted.casefold())
    raise InputError(f"{label}: no {role} column {wanted!r} (columns: {_list_columns(names)})")


def _list_columns(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown or "none"


def _no_extra(extras: Sequence[str]) -> dict[str, Any] | None:
    """The ``extra`` of a row whose values could not be read: every column None."""
    return dict.fromkeys(extras) or None


def _one_line(error: object) -> str:
    """A foreign error message squeezed onto one line, for our one-line messages."""
    return " ".join(str(error).split())


def _has_surrogates(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _readable(text: str) -> str:
    """``text`` with undecodable bytes (surrogate escapes) shown as ``\\xNN``."""
    if text.isascii() or not _has_surrogates(text):
        return text
    return _readable_bytes(text.encode("utf-8", "surrogateescape"))


def _readable_bytes(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")
