"""Fixtures: a real local server (aiograb.testing) on port 0, shared by the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aiograb.testing import RunningServer, serve_in_thread


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with serve_in_thread() as running:
        yield running
