"""benchmarks/bench_get.measure: the child's own peak RSS and its process tree's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench_get() -> ModuleType:
    name = "_bench_get_under_test"  # a script, not a package: loaded from its path
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / "bench_get.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    sys.path.insert(0, str(BENCHMARKS))  # its sibling proctree.py
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def _hold(mb: int, seconds: float) -> str:
    return f"import time; block = bytearray({mb} << 20); time.sleep({seconds})"


def test_a_childs_peak_is_its_own_not_the_harness(bench_get: ModuleType, tmp_path: Path) -> None:
    ballast = bytearray(300 << 20)  # the harness is big: the child must not inherit it
    small = bench_get.measure(
        "small", [sys.executable, "-c", _hold(0, 0.4)], tmp_path / "log", timeout=30, server_pid=1
    )
    big = bench_get.measure(
        "big", [sys.executable, "-c", _hold(80, 0.4)], tmp_path / "log", timeout=30, server_pid=1
    )
    del ballast
    assert small.exit_code == big.exit_code == 0
    assert small.peak_rss_mb < 60  # an interpreter, not 300 MB of this process
    assert 80 <= big.peak_rss_mb < 160
    assert big.peak_tree_rss_mb == big.peak_rss_mb  # no children


def test_a_process_tree_is_summed(bench_get: ModuleType, tmp_path: Path) -> None:
    job = f"{sys.executable} -c '{_hold(60, 1.0)}'"
    m = bench_get.measure(
        "tree", ["sh", "-c", f"{job} & {job} & wait"], tmp_path / "log", timeout=30, server_pid=1
    )
    assert m.exit_code == 0
    assert m.peak_rss_mb < 20  # the shell itself
    assert m.peak_tree_rss_mb >= 120  # both of its jobs
