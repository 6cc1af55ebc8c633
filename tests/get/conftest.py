"""Fixtures of the get room's tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def pq() -> Any:
    """pyarrow.parquet, or the test is skipped where pyarrow is not installed."""
    return pytest.importorskip("pyarrow.parquet")
