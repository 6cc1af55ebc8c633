"""Fixtures: a real local server (aiograb.testing) on port 0, shared by the session."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiograb._core.config import DEFAULT_TRANSPORT
from aiograb.testing import RunningServer, serve_in_thread


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A real 2 MB tmpfs, mounted for the test (needs root; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="aiograb-full-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)  # a file still open
        where.rmdir()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--transport",
        choices=("aiohttp", "curl"),
        default=None,
        help="run the suite against this HTTP transport (sets AIOGRAB_TRANSPORT, which the "
        "library and the CLI subprocesses read when no transport is named)",
    )


def pytest_configure(config: pytest.Config) -> None:
    transport = config.getoption("--transport")
    if transport:
        os.environ["AIOGRAB_TRANSPORT"] = transport


# Known gaps of the libcurl transport, skipped (with the reason) under --transport curl
# so that the suite's second pass stays meaningful for everything else: test node id
# -> reason. Empty: the curl transport passes the whole suite (issue 13). A new gap
# goes here with its reason, and into the report.
CURL_GAPS: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _transport() != "curl":
        return
    for item in items:
        reason = CURL_GAPS.get(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"curl transport gap: {reason}"))


def pytest_report_header(config: pytest.Config) -> str:
    named = os.environ.get("AIOGRAB_TRANSPORT")
    return f"aiograb transport: {named or DEFAULT_TRANSPORT + ' (default)'}"


def _transport() -> str:
    return os.environ.get("AIOGRAB_TRANSPORT") or DEFAULT_TRANSPORT
