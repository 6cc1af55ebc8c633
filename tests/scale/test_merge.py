"""The merged manifest: copied from the parts' own manifests, byte for byte what
encoding their journals' rows gives; a part that did not finish is read from its journal."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import aiograb
from aiograb._scale.merge import _HEAD, _keyed, _slow, merged_lines, write_merged_manifest
from aiograb._scale.plan import load_plan
from aiograb._store.journal import MANIFEST_FIELDS, manifest_line
from tests.helpers import aiograb_cli
from tests.scale.servers import image_app, serve_hosts

# Quotes, backslashes, the manifest's own field names, non-ASCII, a line separator.
ODD = ['q"uote', "back\\slash", 'x", "line": 99, "state": "ok", "path": "zz', "é-ü", "a\u2028b"]


def _parted(tmp_path: Path) -> tuple[Path, list[str]]:
    with serve_hosts(image_app()) as bases:
        urls = [f"{b}/img/{i}.png" for i in range(3) for b in bases]
        urls += [f"{bases[i]}/img/{i}.png?{odd}" for i, odd in enumerate(ODD)]
        urls += ["not a url", f"{bases[2]}/status/404"]
        limits = aiograb.Limits(concurrency=32, per_host=0)
        summary = aiograb.download(urls, tmp_path / "out", limits=limits, procs=2)
    assert summary.processes == 2
    return tmp_path / "out", urls


def test_the_merge_copies_the_parts_manifests_exactly(tmp_path: Path) -> None:
    out, urls = _parted(tmp_path)
    plan = load_plan(out)
    assert plan is not None
    assert len(plan.parts) == 2
    every = [p.index for p in plan.parts]
    copied, encoded = tmp_path / "copied.jsonl", tmp_path / "encoded.jsonl"
    assert write_merged_manifest(plan, copied, fresh=every) == len(urls)
    assert write_merged_manifest(plan, encoded) == len(urls)  # from the journals
    assert copied.read_bytes() == encoded.read_bytes() == (out / "manifest.jsonl").read_bytes()
    rows = [json.loads(line) for line in copied.read_text().split("\n")[:-1]]
    assert [r["url"] for r in rows] == urls  # input order, one row per line
    assert [r["line"] for r in rows] == list(range(1, len(urls) + 1))
    for r in rows:
        if r["state"] == "ok":
            assert r["path"].startswith("parts/0000")
            assert (out / r["path"]).is_file()
        else:
            assert r["path"] is None
    assert {r["error"] for r in rows} == {None, "invalid_url", "http_404"}


def test_a_part_that_did_not_finish_is_read_from_its_journal(tmp_path: Path) -> None:
    out, urls = _parted(tmp_path)
    plan = load_plan(out)
    assert plan is not None
    stale = plan.part_dir(plan.parts[0]) / "manifest.jsonl"
    stale.write_text(stale.read_text().split("\n")[0] + "\n")  # as if from an old run
    lines = list(merged_lines(plan, fresh=[plan.parts[1].index]))
    assert "".join(lines) == (out / "manifest.jsonl").read_text()
    # Trusting it would lose rows: only a part whose task returned may be copied.
    assert len(list(merged_lines(plan, fresh=[p.index for p in plan.parts]))) < len(urls)


def _record(url: str, line: int | None, path: str | None, extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(MANIFEST_FIELDS)
    record.update(url=url, line=line, state="ok" if path is not None else "failed")
    record.update(path=path, extra=extra)
    return record


@given(
    url=st.text(),
    line=st.none() | st.integers(min_value=0, max_value=10**12),
    path=st.none() | st.just("") | st.from_regex(r"\A[0-9a-f]{2}/[0-9a-f]{32}\.(jpg|png)\Z"),
    extra=st.none() | st.dictionaries(st.sampled_from(["path", "line", "url"]), st.text()),
)
def test_a_line_read_by_its_head_equals_a_line_decoded(
    url: str, line: int | None, path: str | None, extra: Any
) -> None:
    text = manifest_line(_record(url, line, path, extra))
    assert _HEAD.match(text) is not None  # the fast path: no decoding
    fast = list(_keyed([text], "parts/00007", 3))
    assert fast == [_slow(text, "parts/00007", 3)]
    assert json.loads(fast[0][3])["path"] == (f"parts/00007/{path}" if path else path)


def test_a_line_in_another_shape_is_decoded_and_rewritten() -> None:
    text = '{"line": 4, "url": "u", "path": "ab/c.jpg", "state": "ok"}\n'
    [(no_line, line, order, out)] = list(_keyed([text], "parts/00001", 0))
    assert (no_line, line, order) == (False, 4, 0)
    assert json.loads(out) == {"line": 4, "url": "u", "path": "parts/00001/ab/c.jpg", "state": "ok"}


def test_aiograb_manifest_exports_a_parted_output_as_text(tmp_path: Path) -> None:
    out, urls = _parted(tmp_path)
    for name in ("m.csv", "m.jsonl"):
        done = aiograb_cli("manifest", out, "--to", tmp_path / name)
        assert done.returncode == 0, done.stderr
        assert f"{len(urls)} rows" in done.stdout
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().split("\n")[:-1]]
    assert [r["url"] for r in rows] == urls
    with (tmp_path / "m.csv").open(newline="", encoding="utf-8") as fh:
        assert [r["url"] for r in csv.DictReader(fh)] == urls
    assert not (out / "aiograb-journal.sqlite").exists()  # none made beside the parts
