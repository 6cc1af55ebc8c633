"""Issue 10, items 2, 11, 16, 18: every input line accounted for; hostile inputs are rows.

Real files in tmp_path, the real local server, the real CLI in a subprocess.
"""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiograb import Limits, download
from aiograb._core.errors import InputError
from aiograb._get.runstate import to_journal
from aiograb._get.sources import MAX_RECORD_BYTES, open_source
from aiograb._store.journal import Journal
from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli, manifest

# About the input / the parser, not the HTTP transport: one pass is enough.
pytestmark = pytest.mark.one_transport

LIMITS = Limits(concurrency=8, per_host=0)


def _errors(out: Path) -> dict[int, tuple[str, str]]:
    return {r["line"]: (r["error"], r["message"]) for r in manifest(out) if r["error"]}


# -- item 2: rows must not vanish ---------------------------------------------------


def test_stray_quote_in_csv_is_an_invalid_row_not_swallowed_rows(
    tmp_path: Path, server: RunningServer
) -> None:
    lines = [f"{server.url(f'/img/{i}.png')},caption {i}" for i in range(20)]
    lines[3] = f'{server.url("/img/3.png")},"a stray quote'  # swallows the rest
    src = tmp_path / "urls.csv"
    src.write_text("url,caption\n" + "\n".join(lines) + "\n")
    summary = download(src, tmp_path / "out", limits=LIMITS)
    errors = _errors(tmp_path / "out")
    assert errors[5][0] == "invalid_row"
    assert "line 5 to 21" in errors[5][1]
    assert "stray" in errors[5][1]
    assert summary.counts == {"ok": 3, "failed": 1}
    assert summary.exit_code == 1  # not 0 with rows silently gone
    assert summary.input is not None
    assert summary.input.records == 4


def test_multiline_caption_is_still_one_good_row(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text('url,caption\nhttp://a/1,"two\nlines"\nhttp://a/2,x\n')
    rows = list(open_source(src, extra_columns=["caption"]))
    assert [(r.line, r.url, r.error) for r in rows] == [
        (2, "http://a/1", None),
        (4, "http://a/2", None),
    ]


def test_url_cell_with_a_line_break_is_an_invalid_row(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text('url,id\n"http://a/1\nhttp://a/2",1\nhttp://a/3,2\n')
    rows = list(open_source(src))
    assert [(r.line, r.error) for r in rows] == [(2, "invalid_row"), (4, None)]
    assert rows[0].message is not None
    assert "URL column" in rows[0].message


def test_cr_only_line_endings_are_lines(tmp_path: Path, server: RunningServer) -> None:
    src = tmp_path / "urls.txt"
    src.write_bytes(b"\r".join(server.url(f"/img/{i}.png").encode() for i in range(20)) + b"\r")
    summary = download(src, tmp_path / "out", limits=LIMITS)
    assert summary.counts == {"ok": 20}
    assert [r["line"] for r in manifest(tmp_path / "out")] == list(range(1, 21))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            b"http://127.0.0.1:9/1\rhttp://127.0.0.1:9/2",
            "http://127.0.0.1:9/1\\rhttp://127.0.0.1:9/2",
        ),
        (
            b"http://127.0.0.1:9/1\thttp://127.0.0.1:9/2",
            "http://127.0.0.1:9/1\\thttp://127.0.0.1:9/2",
        ),
        (b"http://127.0.0.1:9/x\x00y", "http://127.0.0.1:9/x\\x00y"),
        (b"http://127.0.0.1:9/1 http://127.0.0.1:9/2", "http://127.0.0.1:9/1 http://127.0.0.1:9/2"),
    ],
)
def test_a_line_that_is_not_one_url_is_an_invalid_row(
    tmp_path: Path, raw: bytes, shown: str
) -> None:
    src = tmp_path / "urls.txt"
    # NUL in the first 4 KiB makes the file "binary": put good lines first.
    src.write_bytes(b"# x\n" * 1100 + raw + b"\n")
    out = tmp_path / "out"
    summary = download(src, out, limits=LIMITS)
    (row,) = manifest(out)
    assert (row["line"], row["error"], row["url"]) == (1101, "invalid_row", shown)
    assert summary.counts == {"failed": 1}


def test_jsonl_url_with_control_characters_is_an_invalid_row(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text(json.dumps({"url": "http://127.0.0.1:9/1\nhttp://127.0.0.1:9/2"}) + "\n")
    out = tmp_path / "out"
    download(src, out, limits=LIMITS)
    assert [(r["line"], r["error"]) for r in manifest(out)] == [(1, "invalid_row")]


_LINE = st.one_of(
    st.just(""),
    st.just("   "),
    st.just("# a comment"),
    st.just("http://a/bad\turl"),
    st.integers(0, 10**6).map(lambda n: f"http://h/{n}.png"),
    st.integers(0, 10**6).map(lambda n: f"  http://h/{n}.jpg  "),
    st.just("not a url"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_LINE, max_size=60, unique=True),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    final=st.booleans(),
    gz=st.booleans(),
)
def test_every_input_line_is_accounted_for(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    newline: str,
    final: bool,
    gz: bool,
) -> None:
    """lines read = rows in the journal (= manifest rows) + skipped blanks/comments."""
    folder = tmp_path_factory.mktemp("prop")
    data = (newline.join(lines) + (newline if final and lines else "")).encode()
    src = folder / ("urls.txt.gz" if gz else "urls.txt")
    src.write_bytes(gzip.compress(data) if gz else data)
    rows = open_source(src)
    journal = Journal(folder / "j.sqlite")
    try:
        new_pending, new_failed = journal.add(to_journal(rows))
        in_journal = sum(journal.counts().values())
    finally:
        journal.close()
    if lines and not final and lines[-1] == "":
        lines.pop()  # an empty last line without its newline is no line at all
    assert rows.stats.records == len(lines)
    assert rows.stats.records == in_journal + rows.stats.skipped
    assert in_journal == new_pending + new_failed
    blank_or_comment = sum(1 for line in lines if not line.strip() or line.startswith("#"))
    assert rows.stats.skipped == blank_or_comment


def test_summary_accounts_for_every_line(tmp_path: Path, server: RunningServer) -> None:
    src = tmp_path / "urls.txt"
    good = [server.url(f"/img/{i}.png") for i in range(5)]
    src.write_text("\n".join(["# list", *good, "", good[0], "http://127.0.0.1:9/\tb"]) + "\n")
    out = tmp_path / "out"
    result = aiograb_cli("get", src, "-o", out, "--summary-json", tmp_path / "s.json", "-q")
    assert result.returncode == 1, result.stderr
    assert "input: 9 lines/records read: 6 new, 1 already known" in result.stdout
    assert "2 blank/comment" in result.stdout
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["input"] == {"records": 9, "skipped": 2, "known": 1, "new": 6}
    assert len(manifest(out)) == 6


# -- item 11: errors mid-stream, deep and huge records -------------------------------


def test_truncated_gzip_mid_stream_keeps_the_rows_before_it(
    tmp_path: Path, server: RunningServer
) -> None:
    body = "".join(server.url(f"/img/{i}.png") + "\n" for i in range(6000)).encode()
    data = gzip.compress(body, compresslevel=1)
    src = tmp_path / "urls.txt.gz"
    src.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    result = aiograb_cli("get", src, "-o", out, "-q", "-c", "64", "--per-host", "0", timeout=110)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "gzip data is corrupt or truncated after line" in line
    good = int(line.split("after line ")[1].split()[0].replace(",", ""))
    assert 1000 < good < 6000
    rows = manifest(out)
    assert len(rows) == good  # every row before the break kept and fetched
    assert all(r["state"] == "ok" for r in rows)


def test_corrupt_parquet_mid_stream_names_the_row(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "a.parquet"
    table = pa.table({"url": [f"http://a/{i}/{'x' * 40}" for i in range(100_000)]})
    pq.write_table(table, path, row_group_size=20_000, compression="none")
    meta = pq.ParquetFile(path).metadata
    last = meta.row_group(4).column(0)
    start = last.data_page_offset
    raw = bytearray(path.read_bytes())
    raw[start : start + 4096] = b"\xff" * 4096  # the last row group's page header and data
    path.write_bytes(bytes(raw))
    rows = open_source(path)
    got: list[object] = []
    with pytest.raises(InputError, match=r"corrupt parquet data after row") as info:
        got.extend(rows)
    got_n = len(got)
    # Rows come in batches: every row of the batches before the broken page.
    assert 60_000 < got_n <= 80_000
    assert f"after row {got_n:,} (the rows before it were read)" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("depth", [30_000, 100_000])
def test_deeply_nested_json_is_an_invalid_row(tmp_path: Path, depth: int) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text('"http://a/1"\n' + "[" * depth + "]" * depth + '\n"http://a/2"\n')
    rows = list(open_source(src))
    assert [(r.line, r.error) for r in rows] == [(1, None), (2, "invalid_row"), (3, None)]
    assert rows[1].message is not None
    assert len(rows[1].url) < 200


class _HugeLine(io.RawIOBase):
    """A stream of ``size`` bytes of one line, made as it is read (never in memory)."""

    def __init__(self, size: int, tail: bytes) -> None:
        self._left = size
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            n = min(len(buffer), len(self._tail))
            buffer[:n], self._tail = self._tail[:n], self._tail[n:]
            return n
        n = min(len(buffer), self._left)
        buffer[:n] = b"x" * n
        self._left -= n
        return n


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv"])
def test_a_huge_line_is_an_invalid_row_without_being_held(fmt: str) -> None:
    head = b"url\n" if fmt == "csv" else b""
    tail = b'\n"http://a/2"\n' if fmt == "jsonl" else b"\nhttp://a/2\n"
    stream = io.BufferedReader(_HugeLine(256 << 20, tail), 1 << 16)
    source = io.BufferedReader(_Chain(head, stream), 1 << 16) if head else stream
    tracemalloc.start()
    try:
        rows = list(open_source("-", stdin=source, fmt=fmt))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(r.line, r.error) for r in rows] == [
        (rows[0].line, "invalid_row"),
        (rows[0].line + 1, None),
    ]
    assert rows[1].url == "http://a/2"
    assert len(rows[0].url) < 200
    assert rows[0].message is not None
    assert f"longer than {MAX_RECORD_BYTES // 1024} KiB" in rows[0].message
    assert peak < 8 << 20, f"peak {peak / 1e6:.0f} MB: the line was held"


class _Chain(io.RawIOBase):
    def __init__(self, head: bytes, rest: io.BufferedReader) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)
