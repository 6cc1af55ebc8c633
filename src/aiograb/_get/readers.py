"""The readers of ``open_source``: txt, csv/tsv, jsonl and parquet, each a generator that
validates, yields one ``None`` (so ``open_source`` can run the checks eagerly), then rows."""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator, Sequence
from contextlib import ExitStack
from typing import Any, BinaryIO

from aiograb._core.errors import InputError
from aiograb._core.models import InputRow
from aiograb._get.textio import (
    LINE_LIMIT,
    PARQUET_BATCH,
    TOO_LONG,
    URL_COLUMNS,
    SourceStats,
    drain_line,
    has_surrogates,
    json_decode,
    one_line,
    open_file,
    open_text_bytes,
    readable,
    readable_bytes,
    too_long_row,
)

# -- txt ----------------------------------------------------------------------


def txt_rows(
    name: str, label: str, stdin: BinaryIO | None, stats: SourceStats
) -> Generator[InputRow | None, None, None]:
    with open_text_bytes(name, label, stdin, stats) as stream:
        yield None
        readline = stream.readline
        lineno = 0
        try:
            # The hot loop: about half a microsecond a line, most of it building InputRow.
            while raw := readline(LINE_LIMIT):
                lineno += 1
                if len(raw) == LINE_LIMIT and raw[-1] != 0x0A:
                    drain_line(readline)
                    yield too_long_row(lineno, raw)
                    continue
                try:
                    url = raw.decode().strip()
                except UnicodeDecodeError:
                    text = readable_bytes(raw.strip())
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


def delimited_rows(
    name: str,
    label: str,
    stdin: BinaryIO | None,
    stats: SourceStats,
    delimiter: str,
    url_column: str | None,
    extras: tuple[str, ...],
) -> Generator[InputRow | None, None, None]:
    with open_text_bytes(name, label, stdin, stats) as stream:
        # Lines are read bounded (an overlong one is drained and marked) and decoded
        # with surrogateescape: a bad byte spoils only the cell it is in, not the file.
        overlong: set[int] = set()
        reader = csv.reader(_csv_lines(stream, overlong), delimiter=delimiter)
        try:
            header = next((row for row in reader if row), None)
        except csv.Error as exc:
            raise InputError(f"{label}: cannot parse the header row: {one_line(exc)}") from None
        if header is None:
            raise InputError(f"{label}: is empty; expected a header row naming the URL column")
        names = [readable(cell.strip()) for cell in header]
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
    while raw := readline(LINE_LIMIT):
        lineno += 1
        if len(raw) == LINE_LIMIT and raw[-1] != 0x0A:
            drain_line(readline)
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
                        yield _csv_error(start, TOO_LONG, extra_indexes)
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
                elif not url.isascii() and has_surrogates(url):
                    yield InputRow(start, readable(url), "invalid_encoding", extra)
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
    return {col: readable(record[i]) if i < len(record) else None for col, i in indexes}


# -- jsonl --------------------------------------------------------------------


def jsonl_rows(
    name: str,
    label: str,
    stdin: BinaryIO | None,
    stats: SourceStats,
    url_column: str | None,
    extras: tuple[str, ...],
) -> Generator[InputRow | None, None, None]:
    keys = (url_column,) if url_column is not None else ("url", "image_url", "URL")
    with open_text_bytes(name, label, stdin, stats) as stream:
        yield None
        readline = stream.readline
        lineno = 0
        try:
            while raw := readline(LINE_LIMIT):
                lineno += 1
                if len(raw) == LINE_LIMIT and raw[-1] != 0x0A:
                    drain_line(readline)
                    yield too_long_row(lineno, raw)
                    continue
                try:
                    text = raw.decode().strip()
                except UnicodeDecodeError:
                    yield InputRow(lineno, readable_bytes(raw.strip()), "invalid_encoding")
                    continue
                if text:
                    yield _json_row(lineno, text, keys, extras)
                else:
                    stats.skipped += 1
        finally:
            stats.lines = stats.records = lineno


def _json_row(lineno: int, text: str, keys: tuple[str, ...], extras: tuple[str, ...]) -> InputRow:
    try:
        value = json_decode(text)
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
    if not url.isascii() and has_surrogates(url):  # a "\udc80" escape in the JSON
        return InputRow(lineno, readable(url), "invalid_encoding", extra)
    return InputRow(lineno, url, None, extra)


# -- parquet ------------------------------------------------------------------


def parquet_rows(
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
            stream = stack.enter_context(open_file(name, label))
        elif stdin.seekable():
            stream = stdin
        else:
            raise InputError(f"{label}: parquet needs a seekable file, not a pipe; pass its path")
        try:
            # Buffered, not pre-buffered: a large row group is read page by
            # page rather than as a whole column chunk.
            parquet = pq.ParquetFile(stream, buffer_size=1 << 20, pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{label}: not a readable parquet file: {one_line(exc)}") from None
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
                f"(the rows before it were read): {one_line(exc)}"
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
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH, columns=columns):
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
                    yield InputRow(row, readable_bytes(url.strip()), "invalid_encoding", extra)
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
    for candidate in URL_COLUMNS:
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
