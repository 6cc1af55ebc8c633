"""``--dask``: the parts as tasks of a real Dask cluster (LocalCluster, or a scheduler and
workers started here); a worker killed mid-run; the canary check."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import aiograb_cli, closed_port, manifest
from tests.scale.servers import Counting, serve_hosts
from tests.scale.test_procs import _check_files, _children, _ok_so_far, _start, _wait_for, _write

pytest.importorskip("distributed")


def test_dask_local_2_survives_a_killed_worker(tmp_path: Path) -> None:
    counting = Counting(delay=0.1)
    with serve_hosts(counting.app) as bases:
        urls = [f"{b}/{i}.png" for i in range(25) for b in bases]
        src = _write(tmp_path / "urls.txt", urls)
        out = tmp_path / "out"
        args = ["get", src, "-o", out, "-q", "-c", "16", "--per-host", "0", "--dask", "local:2"]
        proc = _start(args, tmp_path)
        try:
            _wait_for(lambda: _ok_so_far(out) >= 40, timeout=90)
            workers = _workers(proc.pid)
            assert len(workers) == 2, workers
            os.kill(workers[0], signal.SIGKILL)  # Dask reschedules its part; it resumes
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    assert "2 processes" in stdout
    rows = manifest(out)
    assert sorted(r["url"] for r in rows) == sorted(urls)  # one row per URL
    assert all(r["state"] == "ok" for r in rows)
    _check_files(out, rows)
    assert sum(counting.total.values()) >= len(urls)


def _workers(pid: int) -> list[int]:
    """The LocalCluster's worker processes: forked by the fork server, a child of ``pid``
    (or, where there is no fork server, spawned children of ``pid``)."""
    parents: dict[int, int] = {}
    servers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
                if b"forkserver" in (entry / "cmdline").read_bytes():
                    servers.append(int(entry.name))
    servers = [s for s in servers if parents.get(s) == pid]
    if not servers:
        return _children(pid)
    return sorted(p for p, parent in parents.items() if parent in servers)


@contextlib.contextmanager
def _cluster_that_cannot_see(hidden: Path) -> Iterator[str]:
    """A scheduler, and one worker in a mount namespace of its own where ``hidden`` is an
    empty tmpfs (only that folder: the interpreter and the checkout stay visible, wherever
    they are)."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unshare -m (root or user namespaces)")
    port = closed_port()
    address = f"tcp://127.0.0.1:{port}"
    py = sys.executable
    scheduler = subprocess.Popen(
        [
            py,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            ":0",
            "--no-show",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker_cmd = (
        f"mount -t tmpfs none {shlex.quote(str(hidden))} && "
        f"exec {py} -m distributed.cli.dask_worker {address} "
        "--nthreads 1 --nworkers 1 --no-nanny --dashboard-address :0"
    )
    worker = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", worker_cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield address
    finally:
        for p in (worker, scheduler):
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
            if p.poll() is None:
                p.kill()


def test_canary_fails_in_one_line_when_a_worker_cannot_see_the_output(tmp_path: Path) -> None:
    src = _write(tmp_path / "urls.txt", ["http://127.0.0.1:9/a.png"])
    out = tmp_path / "out"  # under tmp_path: invisible to the worker
    with _cluster_that_cannot_see(tmp_path) as address:
        time.sleep(0.5)
        done = aiograb_cli("get", src, "-o", out, "-q", "--dask", address, timeout=90)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("aiograb:")]
    assert len(lines) == 1
    assert "not visible to every worker" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (out / "plan.json").exists()  # nothing planned or started
    assert not list(out.glob(".aiograb-canary-*"))


def test_dask_is_an_optional_extra_imported_only_when_used(tmp_path: Path) -> None:
    code = "import sys, aiograb, aiograb._cli.main; print('distributed' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.stdout.strip() == "False"
    bad = aiograb_cli("get", "-", "-o", tmp_path / "o", "--dask", "nowhere", input="")
    assert bad.returncode == 2
    assert "--dask takes local:N or tcp://host:port" in bad.stderr
