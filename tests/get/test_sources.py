"""Tests of the URL list readers, on real files in tmp_path and BytesIO stdin."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from typing import Any

import pytest

from aiograb._core.errors import InputError
from aiograb._get.sources import FORMATS, InputRow, detect_format, open_source
from tests.get.sources_support import (
    rows_of,
    stdin_of,
    write,
    write_parquet,
)

# The readers alone: no HTTP at all.
pytestmark = pytest.mark.one_transport

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
