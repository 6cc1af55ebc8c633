"""``--procs``: 16 loopback hosts, results equal to one process; kill -9, Ctrl-C, resume."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import aiograb_cli, manifest
from tests.scale.servers import Counting, image_app, serve_hosts

EXTS = ("jpg", "png", "webp", "gif")
VOLATILE = ("started", "elapsed")


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[str]]:
    with serve_hosts(image_app()) as bases:
        yield bases


def _urls(bases: list[str], per_host: int) -> list[str]:
    return [f"{b}/img/{i}.{EXTS[i % 4]}" for i in range(per_host) for b in bases]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in row.items() if k not in VOLATILE}
    if row["path"]:
        row["path"] = row["path"].rsplit("/", 1)[1]  # parts/NNNNN/ab/<key>.jpg -> <key>.jpg
    return row


def _check_files(out: Path, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["state"] == "ok":
            body = (out / row["path"]).read_bytes()
            assert hashlib.sha256(body).hexdigest() == row["sha256"]
            assert len(body) == row["bytes"]


def test_procs_2_equals_one_process(hosts: list[str], tmp_path: Path) -> None:
    urls = _urls(hosts, 12)
    lines = [*urls, urls[5], "not a url", f"{hosts[3]}/status/404"]
    src = _write(tmp_path / "urls.txt", lines)
    one, two = tmp_path / "one", tmp_path / "two"
    flags = ["-q", "-c", "64", "--per-host", "8", "--retries", "0"]
    assert aiograb_cli("get", src, "-o", one, *flags).returncode == 1  # the 404 and the bad line
    done = aiograb_cli("get", src, "-o", two, *flags, "--procs", "2", "--summary-json", "s.json",
                       cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "2 processes" in done.stdout
    rows_one, rows_two = manifest(one), manifest(two)
    assert [_comparable(r) for r in rows_two] == [_comparable(r) for r in rows_one]
    assert len(rows_two) == len(urls) + 2  # one row per distinct URL, and the bad line
    assert all(r["path"].startswith("parts/0000") for r in rows_two if r["path"])
    _check_files(two, rows_two)
    for a, b in zip(rows_one, rows_two, strict=True):
        if a["path"]:
            assert (one / a["path"]).read_bytes() == (two / b["path"]).read_bytes()
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["counts"] == {"ok": len(urls), "failed": 2}
    assert report["ok"] == len(urls)
    assert report["processes"] == 2
    plan = json.loads((two / "plan.json").read_text())
    assert len(plan["parts"]) == 2
    assert plan["rows"] == len(lines)
    # --retry-failed reaches every part: the 404 is tried again (the bad line has nothing to try).
    again = aiograb_cli("get", src, "-o", two, *flags, "--procs", "2", "--retry-failed")
    assert again.returncode == 1, again.stderr
    failed = [r for r in manifest(two) if r["state"] == "failed"]
    assert sorted((r["error"], r["attempts"]) for r in failed) == [
        ("http_404", 2),
        ("invalid_url", 0),
    ]
    # aiograb manifest OUT reads a parted output.
    pytest.importorskip("pyarrow")
    export = aiograb_cli("manifest", two, "--to", tmp_path / "m.parquet")
    assert export.returncode == 0, export.stderr
    assert f"{len(urls) + 2} rows" in export.stdout


def _start(args: list[str | Path], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aiograb", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the coordinator and its children
    )


def _ok_so_far(out: Path) -> int:
    total = 0
    for progress in out.glob("parts/*/progress.json"):
        try:
            total += json.loads(progress.read_text())["ok"]
        except (ValueError, OSError):
            continue
    return total


def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    """The processes multiprocessing started for ``pid`` (pool or Dask workers): its
    spawned children, or the children of the fork server it started."""
    parents: dict[int, int] = {}
    spawned, servers = [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
            if ppid == pid and b"spawn_main" in cmdline:
                spawned.append(int(entry.name))
            if ppid == pid and b"forkserver" in cmdline:
                servers.append(int(entry.name))
    return spawned + sorted(p for p, parent in parents.items() if parent in servers)


@pytest.fixture
def slow_hosts() -> Iterator[tuple[Counting, list[str]]]:
    counting = Counting(delay=0.15)
    with serve_hosts(counting.app) as bases:
        yield counting, bases


def test_kill_9_of_the_process_group_then_rerun(
    slow_hosts: tuple[Counting, list[str]], tmp_path: Path
) -> None:
    counting, bases = slow_hosts
    urls = [f"{b}/{i}.png" for i in range(30) for b in bases]
    src = _write(tmp_path / "urls.txt", urls)
    out = tmp_path / "out"
    args = ["get", src, "-o", out, "-q", "-c", "16", "--per-host", "0", "--procs", "2"]
    proc = _start(args, tmp_path)
    try:
        _wait_for(lambda: _ok_so_far(out) >= 60)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    first = sum(counting.total.values())
    assert first < len(urls), "the run ended before the kill"
    done = aiograb_cli(*args, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    assert sorted(r["url"] for r in rows) == sorted(urls)  # one row per URL
    assert all(r["state"] == "ok" for r in rows)
    _check_files(out, rows)
    for part in out.glob("parts/*"):
        if part.is_dir():
            assert not list((part / ".aiograb-tmp").iterdir())
    # Refetched: what was in flight (16) and outcomes not yet committed (the journal
    # commits every 0.5 s: at ~100 files/s here, at most ~70 more).
    refetched = sum(counting.total.values()) - len(urls)
    assert refetched <= 16 + 70


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_ctrl_c_then_resume_with_another_procs(
    slow_hosts: tuple[Counting, list[str]], tmp_path: Path, sig: int
) -> None:
    # SIGHUP: the terminal went away; it reaches the whole group as Ctrl-C does.
    counting, bases = slow_hosts
    urls = [f"{b}/{i}.png" for i in range(20) for b in bases]
    src = _write(tmp_path / "urls.txt", urls)
    out = tmp_path / "out"
    proc = _start(["get", src, "-o", out, "-q", "-c", "16", "--per-host", "0", "--procs", "2"],
                  tmp_path)  # fmt: skip
    try:
        _wait_for(lambda: _ok_so_far(out) >= 40)
        os.killpg(proc.pid, sig)  # the terminal's Ctrl-C reaches the whole group
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout
    assert "Traceback" not in stderr
    plan = (out / "plan.json").read_text()
    # No --procs: the planned output is resumed, in one process, with the same plan.
    done = aiograb_cli("get", src, "-o", out, "-q", "-c", "16", "--per-host", "0", timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "plan.json").read_text() == plan
    rows = manifest(out)
    assert sorted(r["url"] for r in rows) == sorted(urls)
    _check_files(out, rows)
    assert sum(counting.total.values()) - len(urls) <= 16  # a clean stop commits everything


def test_per_host_limits_hold_across_processes(tmp_path: Path) -> None:
    counting = Counting(delay=0.05)
    with serve_hosts(counting.app) as bases:
        heavy = [f"{bases[0]}/{i}.png" for i in range(240)]  # more than a part's share: split
        light = [f"{b}/{i}.png" for b in bases[1:] for i in range(8)]
        src = _write(tmp_path / "urls.txt", [*heavy, *light])
        out = tmp_path / "out"
        done = aiograb_cli("get", src, "-o", out, "-q", "-c", "64", "--per-host", "4",
                           "--procs", "2", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert plan["split"] == {"127.0.0.1": 2}
    assert counting.total == Counter(
        {"127.0.0.1": 240, **{b[7:].split(":")[0]: 8 for b in bases[1:]}}
    )
    # Both parts fetch from 127.0.0.1 at once, each with half the limit: never more than 4.
    assert counting.peak["127.0.0.1"] <= 4
    assert counting.peak["127.0.0.1"] > 2  # ... and both did fetch from it at once
    assert max(counting.peak.values()) <= 4


def test_procs_with_the_image_pipeline_part_unique_shards(hosts: list[str], tmp_path: Path) -> None:
    urls = _urls(hosts, 4)
    src = _write(tmp_path / "urls.txt", urls)
    out = tmp_path / "out"
    done = aiograb_cli("get", src, "-o", out, "-q", "--per-host", "0", "--procs", "2",
                       "--format", "webdataset", "--shard-size", "16", "--workers", "2",
                       timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    assert len(rows) == len(urls)
    assert all(r["state"] == "ok" for r in rows)
    shards = sorted(p.name for p in out.glob("parts/*/*.tar"))
    assert len(shards) == len(set(shards))  # unique over the whole run
    by_part = {p.parent.name: sorted(q.name for q in p.parent.glob("*.tar"))
               for p in out.glob("parts/*/*.tar")}  # fmt: skip
    assert by_part["00000"][0] == "00000.tar"
    assert by_part["00001"][0] == "1000000.tar"
    assert {r["path"].split("/")[1] for r in rows} == {"00000", "00001"}


def test_download_takes_any_executor(hosts: list[str], tmp_path: Path) -> None:
    """The library: download(..., executor=) with a ProcessPoolExecutor; a rerun resumes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import aiograb
    from aiograb._store.parts import is_parted

    urls = _urls(hosts, 3)
    limits = aiograb.Limits(concurrency=32, per_host=0)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        summary = aiograb.download(urls, tmp_path / "out", limits=limits, executor=pool)
        again = aiograb.download(urls, tmp_path / "out", limits=limits, executor=pool)
    assert summary.counts == {"ok": len(urls)}
    assert summary.processes == 2
    assert summary.exit_code == 0
    assert is_parted(tmp_path / "out")
    assert again.fetched == 0  # everything was done: nothing fetched again
    rows = manifest(tmp_path / "out")
    assert [r["url"] for r in rows] == urls  # input order
    _check_files(tmp_path / "out", rows)


def test_a_dead_pool_process_leaves_the_run_resumable(
    slow_hosts: tuple[Counting, list[str]], tmp_path: Path
) -> None:
    """One --procs child SIGKILLed: the pool breaks, the run ends resumable (130) with a
    line per part it lost, and the same command then finishes every part."""
    _, bases = slow_hosts
    urls = [f"{b}/{i}.png" for i in range(20) for b in bases]
    src = _write(tmp_path / "urls.txt", urls)
    out = tmp_path / "out"
    args = ["get", src, "-o", out, "-c", "16", "--per-host", "0", "--procs", "2"]
    proc = _start(args, tmp_path)
    try:
        _wait_for(lambda: _ok_so_far(out) >= 40)
        children = _children(proc.pid)
        assert len(children) == 2, children
        os.kill(children[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "BrokenProcessPool" in stdout
    assert "run the same command again to resume it" in stdout
    assert "Traceback" not in stderr
    done = aiograb_cli(*args, "-q", timeout=120)
    assert done.returncode == 0, done.stderr
    rows = manifest(out)
    assert sorted(r["url"] for r in rows) == sorted(urls)
    _check_files(out, rows)
