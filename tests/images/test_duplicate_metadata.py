"""Issue 10, item 23 (part): a duplicate's manifest row keeps its own metadata.

Two URLs serve the same bytes: the second is stored once (``duplicate_of``), but
its row still describes the image (format, mode, size, the original's under
``original_*``) and carries its own input columns (caption, tag) — also when the
first was stored by an earlier run (the dedup index rebuilt from the journal).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli

DESCRIBES = ("format", "mode", "width", "height", "original_width", "original_height")
DESCRIBES += ("original_format", "original_mode")


def _input(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "caption", "tag"])
        writer.writerows(rows)
    return path


def _get(src: Path, out: Path, fmt: str) -> dict[str, dict[str, object]]:
    result = aiograb_cli(
        "get", src, "-o", out, "-q", "--format", fmt, "--workers", "1",
        "--resize", "center-crop", "--image-size", "32", "--encode", "webp",
        "--save-columns", "caption,tag", "--caption-column", "caption",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return {row["url"]: row for row in map(json.loads, lines)}


@pytest.mark.parametrize("fmt", ["files", "webdataset"])
def test_a_duplicate_keeps_its_own_metadata(
    tmp_path: Path, server: RunningServer, fmt: str
) -> None:
    first, copy = server.url("/img/3.png"), server.url("/img/3.png") + "?copy=1"
    src = _input(tmp_path / "in.csv", [(first, "first", "t1"), (copy, "second", "t2")])
    rows = _get(src, tmp_path / "out", fmt)
    a, b = rows[first], rows[copy]
    assert b["duplicate_of"] == first
    assert a["original_format"] == "png"  # the image was re-encoded: there is something to keep
    assert {k: b[k] for k in DESCRIBES} == {k: a[k] for k in DESCRIBES}
    assert b["extra"] == {"caption": "second", "tag": "t2"}
    assert (b["path"], b["sha256"]) == (a["path"], a["sha256"])


def test_a_duplicate_of_an_earlier_runs_image_keeps_its_metadata(
    tmp_path: Path, server: RunningServer
) -> None:
    first, copy = server.url("/img/5.png"), server.url("/img/5.png") + "?copy=1"
    out = tmp_path / "out"
    _get(_input(tmp_path / "a.csv", [(first, "first", "t1")]), out, "webdataset")
    src = _input(tmp_path / "b.csv", [(first, "first", "t1"), (copy, "second", "t2")])
    rows = _get(src, out, "webdataset")
    a, b = rows[first], rows[copy]
    assert b["duplicate_of"] == first
    assert {k: b[k] for k in DESCRIBES} == {k: a[k] for k in DESCRIBES}
    assert b["key"] == a["key"]
    assert b["extra"] == {"caption": "second", "tag": "t2"}
