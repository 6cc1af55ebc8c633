"""The text side of the input readers: opening (gzip, BOM, CR-only endings, text checks),
the limits every reader keeps, and the counts of what was read (``SourceStats``)."""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, cast

from aiograb._core.errors import InputError
from aiograb._core.models import InputRow

FORMATS: Final = ("txt", "csv", "tsv", "jsonl", "parquet")

EXTENSIONS: Final = {
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
UNSUPPORTED: Final = {
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
SUPPORTED_TEXT: Final = (
    "supported: .txt/.list, .csv, .tsv, .jsonl/.ndjson, .parquet, each optionally .gz"
)
URL_COLUMNS: Final = ("url", "image_url")
GZIP_MAGIC: Final = b"\x1f\x8b"
BOM: Final = b"\xef\xbb\xbf"
SNIFF_BYTES: Final = 4096
PARQUET_BATCH: Final = 16_384
json_decode: Final = json.JSONDecoder().decode  # json.loads re-checks its options every call
MAX_RECORD_BYTES: Final = 64 * 1024  # a URL line longer than this is not a URL
DRAIN_BYTES: Final = 1 << 20


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


# -- opening ------------------------------------------------------------------


def open_file(name: str, label: str) -> BinaryIO:
    try:
        return open(name, "rb")  # the caller closes it
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{label}: is a directory, not a file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot open: {one_line(exc.strerror or exc)}") from None


def peek_head(stream: BinaryIO, size: int) -> bytes:
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


class CRToLF(io.RawIOBase):
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
def open_text_bytes(
    name: str, label: str, stdin: BinaryIO | None, stats: SourceStats
) -> Iterator[BinaryIO]:
    """The binary stream of a text input: gunzipped, BOM skipped, checked to be text,
    CR-only line endings read as LF.

    Read errors inside the ``with`` block (a truncated gzip) become InputError
    naming the last line read (``stats.lines``).
    """
    with ExitStack() as stack:
        stream = stack.enter_context(open_file(name, label)) if stdin is None else stdin
        gzipped = name.lower().endswith(".gz")
        try:
            head = peek_head(stream, 2)
            if head and gzipped and not head.startswith(GZIP_MAGIC):
                raise InputError(f"{label}: is not gzip-compressed although its name ends in .gz")
            if head.startswith(GZIP_MAGIC):
                gzipped = True
                gz = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
                # Reading lines from GzipFile goes through Python code per line;
                # a BufferedReader on top splits lines in C.
                stream = cast(BinaryIO, io.BufferedReader(cast(Any, gz), 65536))
            head = peek_head(stream, SNIFF_BYTES)
            check_text(head, label)
            if b"\r" in head and b"\n" not in head:
                stream = cast(BinaryIO, io.BufferedReader(CRToLF(stream), 65536))
            if head.startswith(BOM):
                stream.read(len(BOM))
            yield stream
        except (OSError, EOFError, zlib.error) as exc:
            what = "gzip data is corrupt or truncated" if gzipped else "read error"
            raise InputError(
                f"{label}: {what} after line {stats.lines:,} "
                f"(the rows before it were read): {one_line(exc)}"
            ) from exc


def check_text(head: bytes, label: str) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{label}: is UTF-16 encoded; save it as UTF-8")
    if b"\x00" in head:
        if head.startswith(b"PAR1"):
            raise InputError(f"{label}: is a parquet file; name it .parquet or pass fmt='parquet'")
        raise InputError(f"{label}: is a binary file, not a list of URLs; {SUPPORTED_TEXT}")


# A line is read with this limit: room for MAX_RECORD_BYTES and its CRLF.
LINE_LIMIT: Final = MAX_RECORD_BYTES + 2
TOO_LONG: Final = f"input line is longer than {MAX_RECORD_BYTES // 1024} KiB: not a URL"


def drain_line(readline: Callable[[int], bytes]) -> None:
    """Skip the rest of an overlong line in bounded reads: it is never held whole."""
    while (more := readline(DRAIN_BYTES)) and more[-1] != 0x0A:
        pass


def too_long_row(lineno: int, raw: bytes) -> InputRow:
    return InputRow(lineno, readable_bytes(raw[:100]) + "...", "invalid_row", None, TOO_LONG)


def one_line(error: object) -> str:
    """A foreign error message squeezed onto one line, for our one-line messages."""
    return " ".join(str(error).split())


def has_surrogates(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def readable(text: str) -> str:
    """``text`` with undecodable bytes (surrogate escapes) shown as ``\\xNN``."""
    if text.isascii() or not has_surrogates(text):
        return text
    return readable_bytes(text.encode("utf-8", "surrogateescape"))


def readable_bytes(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")
