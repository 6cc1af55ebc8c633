"""Helpers shared by the tests: run a coroutine, read a manifest, run the CLI, serve a small app."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import pytest
from aiohttp import web

T = TypeVar("T")


def under_file_modes() -> list[str]:
    """The prefix that runs a command bound by file modes: as root, without the
    capabilities that let root read and write anywhere (util-linux's ``setpriv``);
    nothing for any other user. Skips the test where root cannot drop them."""
    if os.geteuid() != 0:
        return []

    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop root's DAC override")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def wait_for_files(
    run: subprocess.Popen[str], out: Path, suffixes: tuple[str, ...], at_least: int = 20
) -> None:
    """Until ``run`` has ``at_least`` files with ``suffixes`` in ``out`` (bounded: 30 s)."""
    deadline = time.monotonic() + 30
    while sum(p.suffix in suffixes for p in out.rglob("*")) < at_least:
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "too slow to reach the files"
        time.sleep(0.05)


def read_only_mid_run(
    run: subprocess.Popen[str], out: Path, suffixes: tuple[str, ...], at_least: int = 20
) -> tuple[str, str]:
    """Once ``run`` has ``at_least`` files with ``suffixes`` in ``out``, make every folder
    of ``out`` read-only (``chmod -R a-w``, folders only: the journal file stays
    writable); its stdout and stderr when it ends (the folders writable again)."""
    wait_for_files(run, out, suffixes, at_least)
    folders = [p for p in out.rglob("*") if p.is_dir()] + [out]
    for folder in folders:
        folder.chmod(0o555)
    try:
        return run.communicate(timeout=60)
    finally:
        for folder in folders:
            folder.chmod(0o755)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop (tests are plain functions)."""
    return asyncio.run(coro)


def manifest(out: Path) -> list[dict[str, Any]]:
    with (out / "manifest.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def by_url(out: Path) -> dict[str, dict[str, Any]]:
    return {row["url"]: row for row in manifest(out)}


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def aiograb_cli(*args: str | os.PathLike[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the real ``aiograb`` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "aiograb", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=kwargs.pop("timeout", 60),
        **kwargs,
    )


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve a test's own small aiohttp app on 127.0.0.1, port 0; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def journal_integrity(journal: Path) -> str:
    """SQLite's ``PRAGMA integrity_check`` of a journal, opened read-only ("ok" when whole)."""
    db = sqlite3.connect(f"{journal.as_uri()}?mode=ro", uri=True)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def fill_disk(folder: Path, *, leave_pages: int = 0) -> Path:
    """Fill the file system of ``folder`` with one file, then free ``leave_pages`` pages
    of 4 KiB (a tmpfs counts in pages): the next writes there fail with ENOSPC."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:
        refused = _write_until_refused(fh)
    assert refused == errno.ENOSPC, os.strerror(refused)
    os.truncate(filler, max(0, filler.stat().st_size - leave_pages * 4096))
    return filler


def _write_until_refused(fh: BinaryIO) -> int:
    try:
        while True:
            fh.write(b"\0" * 4096)
    except OSError as exc:
        return exc.errno or 0
