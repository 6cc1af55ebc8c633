"""``aiograb bench``: the quick suite end to end (report, schema, timelines, CPU modes, a
headless browser), the measuring of a child process, and the pure pieces."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from aiograb.bench import check_results, quick_config
from aiograb.bench._config import capped_n
from aiograb.bench._measure import measure_process
from aiograb.bench._peers import find_peers
from aiograb.bench._results import acceptance, memory_per_inflight
from aiograb.bench._suite import _Runner
from aiograb.bench._timeline import max_in_flight, timeline_from_raw
from aiograb.testing import RunningServer, ServerConfig, ServerProcess
from tests.helpers import aiograb_cli

REPORT_FILES = (
    "report.html", "report.md", "results.json",
    "throughput.png", "resources.png", "timeline.png", "cpu.png",
)  # fmt: skip
ENGINES = ("sync", "threads", "async")


@pytest.fixture(scope="module")
def quick(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench") / "report"
    proc = aiograb_cli("bench", "--quick", "--out", out, timeout=240)
    return proc, out


def _results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.slow
def test_quick_bench_writes_a_complete_valid_report(
    quick: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, out = quick
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"report: {out / 'report.html'}" in proc.stdout
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    data = _results(out)
    assert check_results(data) == []
    assert data["errors"] == 0
    assert data["machine"]["cores"] == os.cpu_count()
    assert data["machine"]["versions"]["aiohttp"]
    measured = {r["engine"] for r in data["sweep"]}
    assert measured == set(ENGINES)
    for row in data["sweep"]:
        assert row["ok"] == row["n"] > 0, row
        assert row["failed"] == 0, row
        assert row["error"] is None, row
        assert row["files_per_s"] > 0, row
        assert row["peak_rss_mb"] > 0, row
    for name in REPORT_FILES[3:]:
        with Image.open(out / name) as img:
            assert img.format == "PNG"
            assert img.width >= 400
        assert f"({name})" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_quick_bench_timelines_overlap_on_one_thread_only_for_async(
    quick: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    timelines = _results(quick[1])["timelines"]
    assert set(timelines) == set(ENGINES)
    for engine, tl in timelines.items():
        threads = {req[3] for req in tl["requests"]}
        per_thread = [
            max_in_flight((r[0], r[2]) for r in tl["requests"] if r[3] == t) for t in threads
        ]
        assert len(tl["requests"]) == tl["n"] == tl["ok"], engine
        if engine == "async":
            assert tl["threads"] == ["main"]
            assert max(per_thread) > 1
        elif engine == "sync":
            assert tl["threads"] == ["main"]
            assert max_in_flight((r[0], r[2]) for r in tl["requests"]) == 1
        else:
            # The pool starts a thread per task while none is idle: up to C of them.
            assert 1 < len(threads) <= tl["concurrency"]
            assert max(per_thread) == 1
            assert tl["max_in_flight"] > 1


@pytest.mark.slow
def test_quick_bench_cpu_work_runs_on_the_loop_or_in_the_pool(
    quick: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    cpu = _results(quick[1])["cpu"]
    modes = cpu["modes"]
    assert set(modes) == {"none", "inline", "pool"}
    assert modes["none"]["processed"] == 0
    assert modes["inline"]["processed"] == modes["inline"]["ok"] == cpu["n"]
    assert modes["pool"]["processed"] == modes["pool"]["ok"] == cpu["n"]
    assert modes["inline"]["processed_on"] == "the event-loop thread"
    assert re.fullmatch(r"\d+ worker process\(es\)", modes["pool"]["processed_on"])
    for mode in modes.values():
        assert mode["loop_lag_ms"]["samples"] > 0
        assert mode["lag_series"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_quick_report_renders_in_headless_chromium(
    quick: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (scripts/test installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    html = quick[1] / "report.html"
    # Self-contained: every image is embedded, nothing is loaded from anywhere else.
    assert not re.search(r'(src|href)="(?!data:)', html.read_text(encoding="utf-8"))
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=10000", "--dump-dom", html.as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert body is not None, proc.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert attrs["images-total"] == "4"
    assert attrs["images-rendered"] == "4"
    assert attrs["errors"] == ""
    # The page logs nothing on purpose: any console line (error or not) is a failure.
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []


def test_bench_without_matplotlib_says_how_to_install_it(tmp_path: Path) -> None:
    fake = tmp_path / "site" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    proc = aiograb_cli("bench", "--quick", "--out", tmp_path / "r", env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "pip install 'aiograb[bench]'" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--latency-ms", "0,fast"], "not a comma-separated list of floats"),
        (["--concurrency", "1,0"], "concurrency must be between 1 and 20000"),
        (["--engines", "sync,gevent"], "unknown engine(s): gevent"),
        (["--n", "0"], "n must be between 1 and 1000000"),
    ],
)
def test_bench_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = aiograb_cli("bench", *args, "--out", tmp_path / "r")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert not (tmp_path / "r").exists()


def test_measure_process_sees_the_childs_threads_memory_and_cpu() -> None:
    # This (parent) process is made big first: the child's peak RSS must not inherit it.
    ballast = b"x" * (300 << 20)
    code = (
        "import threading, time\n"
        "block = b'y' * (80 << 20)\n"
        "ts = [threading.Thread(target=time.sleep, args=(0.4,)) for _ in range(6)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "sum(range(3_000_000))\n"
    )
    stats = measure_process([sys.executable, "-c", code], timeout=30)
    del ballast
    assert stats.exit_code == 0
    assert stats.peak_threads >= 7
    assert 80 <= stats.peak_rss_mb < 250
    assert stats.cpu_s > 0


def test_measure_process_kills_a_child_past_its_timeout() -> None:
    stats = measure_process([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert stats.exit_code == -9
    assert stats.wall_s < 10


def test_max_in_flight_and_timeline_threads() -> None:
    assert max_in_flight([]) == 0
    assert max_in_flight([(0, 1), (1, 2), (2, 3)]) == 1  # back to back is not overlap
    assert max_in_flight([(0, 10), (1, 2), (1.5, 3), (9, 11)]) == 3
    raw = [(5.0, 5.1, 5.2, 99, True), (5.05, 5.15, 5.3, 7, True), (5.1, 5.1, 5.15, 99, False)]
    tl = timeline_from_raw(raw, main_thread=7)
    assert tl.thread_names == ["T1", "main"]
    assert [r[3] for r in tl.requests] == [0, 1, 0]
    assert tl.requests[0][:3] == pytest.approx((0.0, 100.0, 200.0))
    assert tl.max_in_flight_per_thread() == [2, 1]
    assert tl.to_json()["max_in_flight_one_thread"] == 2


def test_capped_n_keeps_sequential_runs_short() -> None:
    assert capped_n(5000, 200, 1, 3.0) == 14
    assert capped_n(5000, 200, 1000, 3.0) == 5000
    assert capped_n(5000, 0, 1, 3.0) == 1500
    assert capped_n(5, 200, 1, 3.0) == 5
    assert capped_n(5000, 60_000, 1, 3.0) == 10  # never fewer than MIN_CAPPED_N


def _row(engine: str, c: int, fps: float, rss: float, threads: int = 1) -> dict[str, Any]:
    return {
        "engine": engine, "latency_ms": 200.0, "concurrency": c, "files_per_s": fps,
        "peak_rss_mb": rss, "peak_threads": threads,
    }  # fmt: skip


def test_memory_per_inflight_and_acceptance_from_known_numbers() -> None:
    sweep = [
        _row("sync", 1, 4.9, 50),
        _row("threads", 1, 4.9, 50, 2), _row("threads", 100, 480, 60, 101),
        _row("threads", 1000, 3000, 150, 1001),
        _row("async", 1, 4.9, 50), _row("async", 100, 495, 51), _row("async", 1000, 4800, 59.99),
    ]  # fmt: skip
    mem = memory_per_inflight(sweep)
    by = {(m["engine"], m["concurrency"]): m["kb_per_request"] for m in mem}
    assert by[("threads", 1000)] == pytest.approx(100 * 1024 / 999, abs=0.01)
    assert by[("async", 1000)] == pytest.approx(9.99 * 1024 / 999, abs=0.01)
    figures = acceptance({"sweep": sweep, "memory_per_inflight": mem})
    assert [f["met"] for f in figures] == [True, True, True, True]
    assert figures[0]["measured"].startswith("10.00")
    figures = acceptance({"sweep": sweep[:3], "memory_per_inflight": []})
    assert [f["met"] for f in figures] == [None, None, None, True]


def test_check_results_names_what_is_wrong() -> None:
    assert check_results([]) == ["results: expected an object, got list"]
    problems = check_results({"schema": 1})
    assert "results.machine: missing" in problems
    doc = {
        "schema": 1, "created": "x", "machine": {"cores": "2"}, "config": {}, "sweep": [{}],
        "timelines": {}, "peers": [], "memory_per_inflight": [], "acceptance": [],
        "errors": 0, "duration_s": 1.0,
    }  # fmt: skip
    problems = check_results(doc)
    assert "machine.cores: str is not <class 'int'>" in problems
    assert "sweep[0].files_per_s: missing" in problems


@pytest.mark.skipif(not find_peers(), reason="no peer downloader (curl, aria2c) on PATH")
def test_peers_fetch_the_same_workload(tmp_path: Path) -> None:
    config = quick_config(out=tmp_path / "r", peers=True)
    with ServerProcess(ServerConfig(record=False)) as server:
        runner = _Runner(config, server, tmp_path, lambda line: None)
        for peer in find_peers():
            row = runner.peer_run(peer, latency=0.0, c=4, n=12)
            assert row["ok"] == 12, (peer.name, row)
            assert row["failed"] == 0
            assert row["error"] is None
            assert row["peak_rss_mb"] > 0


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_server_listen_backlog_fits_a_burst_of_a_thousand_connects(
    server: RunningServer,
) -> None:
    # For a listening socket, ss shows the accept backlog in Send-Q. With aiohttp's
    # default (128), -c 1000 overflows it and dropped SYNs cost clients 1 s each.
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{server.port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert int(out[2]) == min(4096, somaxconn)


def test_cli_default_out_matches_the_bench_default() -> None:
    from aiograb.bench._config import DEFAULT_OUT

    assert "default bench-report" in aiograb_cli("bench", "--help").stdout.replace("\n", " ")
    assert Path("bench-report") == DEFAULT_OUT
