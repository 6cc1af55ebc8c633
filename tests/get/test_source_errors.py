"""The URL list readers' whole-input errors (one line each) and their laziness: a big
or endless input costs what its first rows cost."""

from __future__ import annotations

import builtins
import gc
import gzip
import io
import json
import os
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from aiograb._core.errors import InputError
from aiograb._get.sources import open_source
from tests.get.sources_support import (
    ChunkStream,
    endless,
    write,
    write_parquet,
)
from tests.helpers import under_file_modes

# The readers alone: no HTTP at all.
pytestmark = pytest.mark.one_transport

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


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_permission_denied_for_real(tmp_path: Path) -> None:
    """A URL list its user may not read: one line and exit 2 (as root too, with root's
    override of file modes dropped)."""
    path = write(tmp_path / "a.txt", b"http://127.0.0.1:9/1\n")
    path.chmod(0)
    command = [*under_file_modes(), sys.executable, "-m", "aiograb", "get", str(path)]
    done = subprocess.run(
        [*command, "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"aiograb: error: {path}: permission denied", done.stderr


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
