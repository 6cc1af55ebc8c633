"""Tests of the URL list readers, on real files in tmp_path and BytesIO stdin."""

from __future__ import annotations

import builtins
import gc
import gzip
import io
import json
import os
import sys
import tracemalloc
import zlib
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from aiograb._core.errors import InputError
from aiograb._get.sources import FORMATS, InputRow, detect_format, open_source


def rows_of(source: str | Path, **kwargs: Any) -> list[tuple[int, str, str | None]]:
    return [(r.line, r.url, r.error) for r in open_source(source, **kwargs)]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def stdin_of(data: bytes) -> BinaryIO:
    return io.BytesIO(data)


class ChunkStream(io.RawIOBase):
    """A raw stream fed by an iterator of chunks that fails if read beyond ``limit`` bytes."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._chunks = iter(chunks)
        self._pending = b""
        self.consumed = 0
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.consumed += size
        if self.consumed > self._limit:
            raise AssertionError(f"read {self.consumed} bytes: the reader is not lazy")
        return size


def endless(head: bytes, line: str) -> Iterator[bytes]:
    yield head
    n = 0
    while True:
        yield "".join(line.format(n + i) for i in range(100)).encode()
        n += 100


# -- formats --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("urls.txt", "txt"),
        ("urls.list", "txt"),
        ("urls", "txt"),
        ("urls.dat", "txt"),
        ("URLS.TXT.GZ", "txt"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.tsv", "tsv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson.gz", "jsonl"),
        ("a.parquet", "parquet"),
        ("dir.v2/urls", "txt"),
        ("-", "txt"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt
    assert fmt in FORMATS


@pytest.mark.parametrize("name", ["a.json", "a.xlsx", "a.zip", "a.txt.bz2", "a.tar.gz"])
def test_detect_format_rejects_unsupported(name: str) -> None:
    with pytest.raises(InputError, match=r"not a supported input; supported: .*\.csv"):
        detect_format(name)


def test_input_row_defaults() -> None:
    row = InputRow(3, "http://a/")
    assert (row.error, row.extra) == (None, None)
    with pytest.raises(AttributeError):
        row.url = "x"  # type: ignore[misc]


# -- txt --------------------------------------------------------------------------


def test_txt_skips_blank_and_comment_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "urls.txt",
        b"# my list\n\nhttp://a/1.jpg\n   http://a/2.jpg  \n\t\n  # indented comment\nhttp://a/3",
    )
    assert rows_of(path) == [
        (3, "http://a/1.jpg", None),
        (4, "http://a/2.jpg", None),
        (7, "http://a/3", None),
    ]


def test_txt_bom_crlf_and_unicode(tmp_path: Path) -> None:
    data = "\ufeffhttp://a/1.jpg\r\nhttp://a/ü.jpg\u00a0\r\n\r\n".encode()
    path = write(tmp_path / "urls.list", data)
    assert rows_of(path) == [(1, "http://a/1.jpg", None), (2, "http://a/ü.jpg", None)]


def test_txt_invalid_encoding_is_a_row(tmp_path: Path) -> None:
    path = write(
        tmp_path / "urls", b"http://a/1\nhttp://a/\xff\xfe.jpg\n#\xff comment\nhttp://a/2\n"
    )
    assert rows_of(path) == [
        (1, "http://a/1", None),
        (2, "http://a/\\xff\\xfe.jpg", "invalid_encoding"),
        (4, "http://a/2", None),
    ]


def test_unknown_extension_is_read_as_txt(tmp_path: Path) -> None:
    path = write(tmp_path / "urls.dat", b"http://a/1\n")
    assert rows_of(path) == [(1, "http://a/1", None)]


def test_txt_gz(tmp_path: Path) -> None:
    path = write(tmp_path / "urls.txt.gz", gzip.compress(b"\xef\xbb\xbfhttp://a/1\r\n\nhttp://a/2"))
    assert rows_of(path) == [(1, "http://a/1", None), (3, "http://a/2", None)]


def test_gzip_is_recognised_without_gz_name(tmp_path: Path) -> None:
    path = write(tmp_path / "urls.txt", gzip.compress(b"http://a/1\n"))
    assert rows_of(path) == [(1, "http://a/1", None)]


def test_empty_files_have_no_rows(tmp_path: Path) -> None:
    assert rows_of(write(tmp_path / "a.txt", b"")) == []
    assert rows_of(write(tmp_path / "a.txt.gz", b"")) == []
    assert rows_of(write(tmp_path / "a.jsonl", b"\n\n")) == []


# -- stdin ------------------------------------------------------------------------


def test_stdin_txt_and_left_open() -> None:
    stream = stdin_of(b"http://a/1\n#x\nhttp://a/2\n")
    assert rows_of("-", stdin=stream) == [(1, "http://a/1", None), (3, "http://a/2", None)]
    assert not stream.closed


def test_stdin_defaults_to_sys_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(b"http://a/1\n"))
    monkeypatch.setattr(sys, "stdin", fake)
    assert rows_of("-") == [(1, "http://a/1", None)]


def test_stdin_with_format_and_gzip() -> None:
    data = gzip.compress(b"url,caption\nhttp://a/1,hello\n")
    rows = list(open_source("-", fmt="csv", stdin=stdin_of(data), extra_columns=["caption"]))
    assert rows == [InputRow(2, "http://a/1", None, {"caption": "hello"})]


def test_stdin_jsonl() -> None:
    assert rows_of("-", fmt="jsonl", stdin=stdin_of(b'"http://a/1"\n')) == [(1, "http://a/1", None)]


def test_stdin_closed_generator_leaves_stream_open() -> None:
    stream = stdin_of(b"url\nhttp://a/1\nhttp://a/2\n")
    rows = open_source("-", fmt="csv", stdin=stream)
    assert next(rows).url == "http://a/1"
    rows.close()
    assert not stream.closed
    stream.seek(0)  # still usable
    assert stream.read(3) == b"url"


# -- csv / tsv ----------------------------------------------------------------------


def test_csv_quoted_comma_and_newline(tmp_path: Path) -> None:
    data = (
        b'id,caption,url\r\n1,"a, b",http://a/1\r\n'
        b'2,"two\nlines, and ""quotes""",http://a/2\r\n'
        b"3,plain,http://a/3\r\n"
    )
    path = write(tmp_path / "a.csv", data)
    rows = list(open_source(path, extra_columns=["caption", "id"]))
    assert [(r.line, r.url, r.error) for r in rows] == [
        (2, "http://a/1", None),
        (3, "http://a/2", None),
        (5, "http://a/3", None),
    ]
    assert rows[1].extra == {"caption": 'two\nlines, and "quotes"', "id": "2"}


def test_csv_row_errors(tmp_path: Path) -> None:
    data = b"url,caption\nhttp://a/1,ok\n,empty\n  ,blank\nhttp://a/\xff,bad\nhttp://a/2,\xe9t\xe9\nshort\n\n"
    path = write(tmp_path / "a.csv", data)
    rows = list(open_source(path, extra_columns=["caption"]))
    assert [(r.line, r.url, r.error) for r in rows] == [
        (2, "http://a/1", None),
        (3, "", "missing_url"),
        (4, "", "missing_url"),
        (5, "http://a/\\xff", "invalid_encoding"),
        (6, "http://a/2", None),
        (7, "short", None),
    ]
    # An undecodable extra cell is carried in readable form; the URL row is fine.
    assert rows[4].extra == {"caption": "\\xe9t\\xe9"}
    assert rows[5].extra == {"caption": None}


def test_csv_short_row_is_missing_url(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", b"id,url\n1,http://a/1\n2\n")
    assert rows_of(path) == [(2, "http://a/1", None), (3, "", "missing_url")]


def test_csv_oversized_field_is_an_invalid_row(tmp_path: Path) -> None:
    data = b'url\nhttp://a/1\n"' + b"x" * 200_000 + b'"\nhttp://a/2\n'
    path = write(tmp_path / "a.csv", data)
    assert rows_of(path) == [
        (2, "http://a/1", None),
        (3, "", "invalid_row"),
        (4, "http://a/2", None),
    ]


@pytest.mark.parametrize(
    ("data", "kwargs"),
    [
        (b"id,URL,caption\n1,http://a/1,x\n", {}),
        (b"id,Image_Url\n1,http://a/1\n", {}),
        (b"link\nhttp://a/1\n", {}),
        (b" url ,link\nhttp://a/1,x\n", {}),
        (b"id,link\n1,http://a/1\n", {"url_column": "link"}),
        (b"id,Link\n1,http://a/1\n", {"url_column": "link"}),
    ],
)
def test_csv_url_column_choice(tmp_path: Path, data: bytes, kwargs: Any) -> None:
    assert rows_of(write(tmp_path / "a.csv", data), **kwargs) == [(2, "http://a/1", None)]


def test_csv_bom_and_leading_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", b"\xef\xbb\xbf\n\nurl\r\nhttp://a/1\r\n")
    assert rows_of(path) == [(4, "http://a/1", None)]


def test_tsv_and_gz(tmp_path: Path) -> None:
    data = b"url\tcaption\nhttp://a/1\ta, b\nhttp://a/2\t\n"
    path = write(tmp_path / "a.tsv.gz", gzip.compress(data))
    rows = list(open_source(path, extra_columns=["caption"]))
    assert rows == [
        InputRow(2, "http://a/1", None, {"caption": "a, b"}),
        InputRow(3, "http://a/2", None, {"caption": ""}),
    ]


def test_csv_gz(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv.gz", gzip.compress(b"url\nhttp://a/1\n"))
    assert rows_of(path) == [(2, "http://a/1", None)]


# -- jsonl ---------------------------------------------------------------------------


def test_jsonl_rows(tmp_path: Path) -> None:
    lines = [
        b'{"url": "http://a/1", "caption": "one"}',
        b"",
        b'"http://a/2"',
        b"{not json",
        b'{"other": 1}',
        b'{"url": 5}',
        b'{"url": null}',
        b'{"url": "  "}',
        b'{"url": "http://a/\xff"}',
        b"[1, 2]",
        b'  {"url": " http://a/3 "}\r',
    ]
    path = write(tmp_path / "a.jsonl", b"\n".join(lines))
    rows = list(open_source(path, extra_columns=["caption"]))
    assert [(r.line, r.url, r.error) for r in rows] == [
        (1, "http://a/1", None),
        (3, "http://a/2", None),
        (4, "{not json", "invalid_row"),
        (5, '{"other": 1}', "invalid_row"),
        (6, '{"url": 5}', "invalid_row"),
        (7, "", "missing_url"),
        (8, "", "missing_url"),
        (9, '{"url": "http://a/\\xff"}', "invalid_encoding"),
        (10, "[1, 2]", "invalid_row"),
        (11, "http://a/3", None),
    ]
    assert rows[0].extra == {"caption": "one"}
    assert rows[1].extra == {"caption": None}
    assert rows[9].extra == {"caption": None}


def test_jsonl_url_column_and_gz(tmp_path: Path) -> None:
    data = b'{"src": "http://a/1", "url": "no"}\n{"url": "http://a/2"}\n'
    path = write(tmp_path / "a.ndjson.gz", gzip.compress(data))
    assert rows_of(path, url_column="src") == [
        (1, "http://a/1", None),
        (2, '{"url": "http://a/2"}', "invalid_row"),
    ]


def test_jsonl_default_key_fallbacks(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b'{"image_url": "http://a/1"}\n{"URL": "http://a/2"}\n')
    assert rows_of(path) == [(1, "http://a/1", None), (2, "http://a/2", None)]


def test_jsonl_surrogate_escape_is_invalid_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b'"http://a/\\udcff"\n')
    assert rows_of(path) == [(1, "http://a/\\xff", "invalid_encoding")]


# -- parquet -------------------------------------------------------------------------


@pytest.fixture
def pq() -> Any:
    return pytest.importorskip("pyarrow.parquet")


def write_parquet(path: Path, columns: dict[str, Any], **kwargs: Any) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, **kwargs)
    return path


def test_parquet_rows(tmp_path: Path, pq: Any) -> None:
    path = write_parquet(
        tmp_path / "a.parquet",
        {"url": ["http://a/1", None, " http://a/3 ", ""], "caption": ["one", "two", None, "x"]},
    )
    rows = list(open_source(path, extra_columns=["caption"]))
    assert rows == [
        InputRow(1, "http://a/1", None, {"caption": "one"}),
        InputRow(2, "", "missing_url", {"caption": "two"}),
        InputRow(3, "http://a/3", None, {"caption": None}),
        InputRow(4, "", "missing_url", {"caption": "x"}),
    ]


def test_parquet_url_column_many_batches(tmp_path: Path, pq: Any) -> None:
    n = 40_000
    path = write_parquet(
        tmp_path / "a.pq",
        {"id": list(range(n)), "Image_URL": [f"http://a/{i}" for i in range(n)]},
        row_group_size=10_000,
    )
    rows = list(open_source(path, extra_columns=["id"]))
    assert len(rows) == n
    assert rows[-1] == InputRow(n, f"http://a/{n - 1}", None, {"id": n - 1})
    assert rows_of(path, url_column="Image_URL")[:1] == [(1, "http://a/0", None)]


def test_parquet_dictionary_column_and_extra_name_case(tmp_path: Path, pq: Any) -> None:
    import pyarrow as pa

    urls = pa.array(["http://a/1", "http://a/1", None]).dictionary_encode()
    path = write_parquet(tmp_path / "a.parquet", {"url": urls, "Caption": ["x", "y", "z"]})
    rows = list(open_source(path, extra_columns="caption"))
    assert rows == [
        InputRow(1, "http://a/1", None, {"caption": "x"}),
        InputRow(2, "http://a/1", None, {"caption": "y"}),
        InputRow(3, "", "missing_url", {"caption": "z"}),
    ]


def test_parquet_binary_column(tmp_path: Path, pq: Any) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"url": [b"http://a/1", b"http://a/\xff"]})
    assert rows_of(path) == [(1, "http://a/1", None), (2, "http://a/\\xff", "invalid_encoding")]


def test_parquet_from_stdin(tmp_path: Path, pq: Any) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"url": ["http://a/1"]})
    stream = stdin_of(path.read_bytes())
    assert rows_of("-", fmt="parquet", stdin=stream) == [(1, "http://a/1", None)]


# -- whole-input errors, raised by open_source itself ------------------------------------


def test_missing_file() -> None:
    with pytest.raises(InputError, match=r"nope\.txt: no such file"):
        open_source("/nonexistent/nope.txt")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        open_source(tmp_path)


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.txt", b"http://a/1\n")
    real_open = builtins.open

    def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(file) == os.fspath(path):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(InputError, match=r"a\.txt: permission denied"):
        open_source(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_permission_denied_for_real(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", b"http://a/1\n")
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        open_source(path)


def test_unknown_forced_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown input format 'xml'; supported: txt, csv"):
        open_source(write(tmp_path / "a.txt", b""), fmt="xml")


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"a\.json: a JSON document .*\.jsonl"):
        open_source(write(tmp_path / "a.json", b'["http://a/1"]'))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04\x14\x00\x00\x00", "is a binary file"),
        (b"\xff\xfeh\x00t\x00", "UTF-16"),
        (b"PAR1\x15\x00\x15", "is a parquet file"),
    ],
)
def test_txt_that_is_not_text(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        open_source(write(tmp_path / "urls", data))


def test_txt_with_columns_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no columns"):
        open_source(write(tmp_path / "a.txt", b""), extra_columns=["caption"])


def test_gz_that_is_not_gzip(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not gzip-compressed"):
        open_source(write(tmp_path / "a.csv.gz", b"url\nhttp://a/1\n"))


def test_gzip_with_a_bad_header(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gzip data is corrupt"):
        open_source(write(tmp_path / "a.txt.gz", b"\x1f\x8b\x99junkjunkjunk"))


@pytest.mark.parametrize(
    ("name", "head", "line"),
    [
        ("a.txt.gz", b"", "http://a/{}\n"),
        ("a.csv.gz", b"url\n", "http://a/{}\n"),
        ("a.jsonl.gz", b"", '"http://a/{}"\n'),
    ],
)
def test_truncated_gzip_fails_mid_stream(tmp_path: Path, name: str, head: bytes, line: str) -> None:
    body = head + "".join(line.format(i) for i in range(20_000)).encode()
    data = gzip.compress(body, compresslevel=1)
    path = write(tmp_path / name, data[: len(data) // 2])
    rows = open_source(path)  # the header and the first blocks are fine
    with pytest.raises(InputError, match=rf"{name}: gzip data is corrupt or truncated"):
        for _ in rows:
            pass


def test_csv_without_url_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", b"id,link,caption\n1,http://a/1,x\n")
    with pytest.raises(InputError, match=r"no 'url' column.*'id', 'link', 'caption'"):
        open_source(path)
    with pytest.raises(InputError, match=r"no URL column 'src'.*'id', 'link', 'caption'"):
        open_source(path, url_column="src")


def test_csv_missing_extra_column(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", b"url\tcaption\n")
    with pytest.raises(InputError, match=r"no extra column 'width'.*'url', 'caption'"):
        open_source(path, extra_columns=["caption", "width"])


def test_csv_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is empty; expected a header row"):
        open_source(write(tmp_path / "a.csv", b"\n\n"))


def test_csv_without_header(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no header row"):
        open_source(write(tmp_path / "a.csv", b"http://a/1,x\nhttp://a/2,y\n"))


def test_parquet_missing_columns(tmp_path: Path, pq: Any) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"id": [1], "link": ["http://a/1"]})
    with pytest.raises(InputError, match=r"no 'url' column.*'id', 'link'"):
        open_source(path)
    with pytest.raises(InputError, match=r"no extra column 'caption'.*'id', 'link'"):
        open_source(path, url_column="link", extra_columns=["caption"])


def test_parquet_non_string_url_column(tmp_path: Path, pq: Any) -> None:
    path = write_parquet(tmp_path / "a.parquet", {"url": [1, 2]})
    with pytest.raises(InputError, match="column 'url' holds int64, not strings"):
        open_source(path)


def test_not_parquet(tmp_path: Path, pq: Any) -> None:
    with pytest.raises(InputError, match=r"a\.parquet: not a readable parquet file"):
        open_source(write(tmp_path / "a.parquet", b"url\nhttp://a/1\n"))


def test_gzipped_parquet(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="gzip-compressed parquet"):
        open_source(write(tmp_path / "a.parquet.gz", b""))


def test_parquet_from_a_pipe(pq: Any) -> None:
    pipe = io.BufferedReader(ChunkStream([b"PAR1"], limit=10))
    pipe.seekable = lambda: False  # type: ignore[method-assign]
    with pytest.raises(InputError, match="seekable"):
        open_source("-", fmt="parquet", stdin=cast(BinaryIO, pipe))


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.parquet", b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InputError, match=r"needs pyarrow: pip install 'aiograb\[parquet\]'"):
        open_source(path)


# -- laziness and resources ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "head", "line"),
    [
        ("txt", b"# endless\n", "http://example.com/{}.jpg\n"),
        ("csv", b"id,url\n", '{0},"http://example.com/{0}.jpg"\n'),
        ("tsv", b"url\n", "http://example.com/{}.jpg\n"),
        ("jsonl", b"", '{{"url": "http://example.com/{}.jpg"}}\n'),
    ],
)
def test_endless_stdin_is_read_lazily(fmt: str, head: bytes, line: str) -> None:
    stream = io.BufferedReader(ChunkStream(endless(head, line), limit=1 << 20))
    rows = open_source("-", fmt=fmt, stdin=cast(BinaryIO, stream))
    first = list(islice(rows, 1000))
    assert first[0].url == "http://example.com/0.jpg"
    assert first[-1].url == "http://example.com/999.jpg"
    assert first[-1].error is None


def test_endless_gzip_stdin_is_read_lazily() -> None:
    def compressed() -> Iterator[bytes]:
        gz = zlib.compressobj(wbits=31)
        for chunk in endless(b"", "http://example.com/{}.jpg\n"):
            yield gz.compress(chunk) + gz.flush(zlib.Z_SYNC_FLUSH)

    stream = io.BufferedReader(ChunkStream(compressed(), limit=1 << 20))
    rows = open_source("-", stdin=cast(BinaryIO, stream))
    assert next(islice(rows, 5000, None)).url == "http://example.com/5000.jpg"


@pytest.mark.parametrize("name", ["big.txt", "big.csv", "big.txt.gz"])
def test_first_row_of_a_big_file_costs_little_memory(tmp_path: Path, name: str) -> None:
    body = b"url\n" if name.endswith(".csv") else b""
    body += b"".join(b"http://example.com/images/%07d.jpg\n" % i for i in range(200_000))
    path = tmp_path / name
    path.write_bytes(gzip.compress(body, compresslevel=1) if name.endswith(".gz") else body)
    tracemalloc.start()
    try:
        rows = open_source(path)
        first = next(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows.close()
    assert first.url == "http://example.com/images/0000000.jpg"
    assert len(body) > 7_000_000
    assert peak < 1_000_000


def test_parquet_first_row_reads_one_batch(tmp_path: Path, pq: Any) -> None:
    import pyarrow as pa

    n = 300_000
    path = write_parquet(
        tmp_path / "a.parquet",
        {"url": [f"http://example.com/images/{i:07d}.jpg" for i in range(n)]},
        row_group_size=50_000,
    )
    before = pa.total_allocated_bytes()
    rows = open_source(path)
    assert next(rows).line == 1
    assert pa.total_allocated_bytes() - before < 4_000_000  # the whole column is ~11 MB
    rows.close()


def test_abandoned_generators_close_their_files(tmp_path: Path) -> None:
    # filterwarnings=error turns a leaked file's ResourceWarning into a failure.
    txt = write(tmp_path / "a.txt", b"http://a/1\nhttp://a/2\n")
    csv_gz = write(tmp_path / "a.csv.gz", gzip.compress(b"url\nhttp://a/1\nhttp://a/2\n"))
    for path in (txt, csv_gz):
        untouched = open_source(path)
        started = open_source(path)
        next(started)
        del untouched, started
        gc.collect()


def test_rows_are_json_serialisable_in_readable_form(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", b"url,caption\nhttp://a/\xff,\xfe\n")
    (row,) = open_source(path, extra_columns=["caption"])
    assert json.loads(json.dumps([row.url, row.extra])) == ["http://a/\\xff", {"caption": "\\xfe"}]


def test_whole_input_errors_are_one_line(tmp_path: Path, pq: Any) -> None:
    cases = [
        write(tmp_path / "a.parquet", b"not parquet at all\n" * 3),
        write(tmp_path / "b.txt.gz", b"\x1f\x8b\x99junk"),
        write(tmp_path / "c.csv", b"a,b,c\n"),
    ]
    for path in cases:
        with pytest.raises(InputError) as info:
            open_source(path)
        assert "\n" not in str(info.value)
        assert str(info.value).startswith(str(path))
