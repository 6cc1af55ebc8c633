"""Export a run's manifest (its journal's rows): ``aiograb manifest OUT --to F``.

The format comes from the target's extension: ``.parquet``/``.pq``, ``.csv`` or
``.jsonl``; any other is refused (never a Parquet file named ``x.csv``).

Two passes over the journal, so memory stays flat however many rows there are:
the first finds every column and its type (the fixed manifest fields plus what
the image pipeline learnt: width, height, phash, duplicate_of, ...), the second
writes row groups of ``BATCH`` rows. A column whose values mix types, and the
``extra`` input columns, are written as JSON text.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiograb._core.errors import InputError, UsageError
from aiograb._store.atomic import replacing
from aiograb._store.check import check_writable_file
from aiograb._store.journal import JOURNAL_NAME, Journal
from aiograb._store.parts import is_parted, merged_rows

__all__ = ["EXPORT_FORMATS", "export_format", "export_manifest"]

BATCH = 10_000
EXPORT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl"}


def export_format(to: str | os.PathLike[str]) -> str:
    """``parquet``, ``csv`` or ``jsonl``, from the extension of ``to``; UsageError otherwise."""
    suffix = Path(to).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise UsageError(
            f"cannot tell the format of {to} from its extension: name it .parquet, .csv or .jsonl"
        )
    return EXPORT_FORMATS[suffix]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _column_kinds(rows: Iterator[dict[str, Any]]) -> dict[str, str]:
    kinds: dict[str, set[str]] = {}
    for row in rows:
        for name, value in row.items():
            seen = kinds.setdefault(name, set())
            if value is not None:
                seen.add(_kind(value))
    out: dict[str, str] = {}
    for name, seen in kinds.items():
        if seen == {"int", "float"}:
            out[name] = "float"
        elif len(seen) == 1:
            out[name] = next(iter(seen))
        else:
            out[name] = "json" if seen else "str"
    return out


def export_manifest(out_dir: str | os.PathLike[str], to: str | os.PathLike[str]) -> int:
    """Write the manifest of ``out_dir`` to ``to`` (Parquet, CSV or JSONL, by its
    extension); return the row count. Checks ``to`` can be written before reading."""
    fmt = export_format(to)
    check_writable_file(to, "--to")
    journal_path = Path(out_dir) / JOURNAL_NAME

    parted = is_parted(out_dir)
    if not parted and not journal_path.is_file():
        raise InputError(f"{out_dir} has no {JOURNAL_NAME}: not an output folder of aiograb get")
    if fmt != "parquet":
        if parted:  # the parts' journals, read-only: never a journal of its own in OUT
            return _write_text(lambda: merged_rows(out_dir), Path(to), fmt)
        text_journal = Journal(journal_path)
        try:
            return _write_text(text_journal.rows, Path(to), fmt)
        finally:
            text_journal.close()
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise UsageError(
            "exporting to Parquet needs pyarrow: pip install 'aiograb[parquet]'"
        ) from exc
    types = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}
    journal = None if parted else Journal(journal_path, readonly=True)

    def rows() -> Iterator[dict[str, Any]]:
        return merged_rows(out_dir) if journal is None else journal.rows()

    try:
        kinds = _column_kinds(rows())
        schema = pa.schema([(n, types.get(k, pa.string())) for n, k in kinds.items()])
        n = 0
        with replacing(to, ".part") as tmp, pq.ParquetWriter(tmp, schema) as writer:
            batch: list[dict[str, Any]] = []
            for row in rows():
                batch.append(_convert(row, kinds))
                if len(batch) >= BATCH:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    n, batch = n + len(batch), []
            if batch or n == 0:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
    finally:
        if journal is not None:
            journal.close()
    return n


def _write_text(rows: Callable[[], Iterator[dict[str, Any]]], target: Path, fmt: str) -> int:
    """CSV (complex values as JSON text, None as an empty cell) or JSONL, atomically."""
    n = 0
    kinds = _column_kinds(rows())
    with replacing(target, ".part") as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            writer = csv.DictWriter(fh, fieldnames=list(kinds), extrasaction="ignore")
            writer.writeheader()
            for row in rows():
                writer.writerow(_convert(row, {k: "json" for k in kinds}))
                n += 1
        else:
            for row in rows():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    return n


def _convert(row: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        value = row.get(name)
        if value is not None and kind == "json":
            value = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        elif value is not None and kind == "float":
            value = float(value)
        out[name] = value
    return out
