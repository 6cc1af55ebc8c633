"""The coordinator's one summary from the parts' (``_scale/procs._combine``)."""

from __future__ import annotations

from pathlib import Path

from aiograb._core.stats import Summary
from aiograb._get.sources import InputRow
from aiograb._scale.plan import make_plan
from aiograb._scale.procs import _combine


def _summary(out: Path, **fields: object) -> Summary:
    base: dict[str, object] = dict(
        out_dir=out, manifest=out / "manifest.jsonl", journal=out / "j", counts={"ok": 5},
        errors={}, fetched=5, ok=5, failed=0, bytes=100, elapsed=1.0, retries=0,
        peak_threads=3, peak_rss_mb=50.0,
    )  # fmt: skip
    base.update(fields)
    return Summary(**base)  # type: ignore[arg-type]


def test_a_part_whose_disk_filled_up_makes_the_run_exit_74(tmp_path: Path) -> None:
    rows = [InputRow(line=i + 1, url=f"http://h{i % 2}.example.com/{i}.jpg") for i in range(10)]
    plan = make_plan(iter(rows), tmp_path, 2)
    full = "no space left on device"
    results: list[Summary | BaseException] = [
        _summary(plan.part_dir(plan.parts[0])),
        _summary(plan.part_dir(plan.parts[1]), storage_error=full),
    ]
    summary = _combine(plan, results, 2.0, False, (2, 2))
    assert summary.exit_code == 74  # ExitCode.OS_ERROR, as one process says it
    assert summary.storage_error == f"part {plan.parts[1].name}: {full}"
    assert summary.ok == 10
    fine = _combine(plan, [results[0], results[0]], 2.0, False, (2, 2))
    assert fine.storage_error is None
    assert fine.exit_code == 0


def test_the_files_the_io_pools_stored_add_up_over_the_parts(tmp_path: Path) -> None:
    rows = [InputRow(line=i + 1, url=f"http://h{i % 2}.example.com/{i}.jpg") for i in range(10)]
    plan = make_plan(iter(rows), tmp_path, 2)
    results: list[Summary | BaseException] = [
        _summary(plan.part_dir(plan.parts[0]), files_by_io_pool=0),  # a fast medium
        _summary(plan.part_dir(plan.parts[1]), files_by_io_pool=4),  # measured slow there
    ]
    summary = _combine(plan, results, 2.0, False, (2, 2))
    assert summary.files_by_io_pool == 4
    assert summary.io_threads == 2
