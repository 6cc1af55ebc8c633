"""The summary's peak RSS is the run's own, not its parent's: ``ru_maxrss`` keeps the
high-water mark of the process a child was forked from across ``exec``."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_a_run_started_by_a_big_parent_reports_its_own_peak() -> None:
    held = bytearray(400 * 1024 * 1024)
    held[::4096] = b"\x01" * len(held[::4096])  # touched: resident in this process
    code = "from aiograb._core.stats import peak_rss_mb; print(peak_rss_mb())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    del held
    assert child.returncode == 0, child.stderr
    assert 1 < float(child.stdout) < 150  # the child's interpreter, not the 400 MB here
