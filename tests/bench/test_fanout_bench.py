"""The fan-out benchmark (#12): its backend's latencies, a tiny side-by-side run in real
processes, the report's section and plots, and the CLI flag."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from aiograb.bench import FanoutSpec, fanout_table, run_fanout
from aiograb.bench._fanout import _Backend, _env, fanout_acceptance
from aiograb.bench._fanout_model import MEDIAN_S, TAIL_P, TAIL_S, assigned_latency
from aiograb.bench._fanout_plots import plot_fanout_cdf, plot_fanout_resources
from aiograb.bench._report import _fanout
from tests.helpers import aiograb_cli


def test_backend_latency_is_reproducible_log_normal_with_a_tail() -> None:
    draws = [assigned_latency(f"k{i}") for i in range(50_000)]
    assert draws == [assigned_latency(f"k{i}") for i in range(50_000)]  # the same every run
    body = [d for d in draws if d != TAIL_S]
    assert abs(statistics.median(body) - MEDIAN_S) < 0.001
    tail = (len(draws) - len(body)) / len(draws)
    assert TAIL_P / 2 < tail < TAIL_P * 2


def test_backend_sends_a_repeated_key_to_another_replica() -> None:
    backend = _Backend(_env())
    try:
        tail_key = next(f"t{i}" for i in range(100_000) if assigned_latency(f"t{i}") == TAIL_S)
        url = f"{backend.base_url}/call?key={tail_key}&ns=test"
        timings = []
        for _ in range(2):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.status == 200
            timings.append(time.perf_counter() - t0)
        assert timings[0] >= TAIL_S
        assert timings[1] < TAIL_S  # the repeat took the median
        assert backend.stats()["repeats"] == 1
    finally:
        backend.close()


@pytest.mark.slow
def test_a_tiny_fanout_run_measures_every_client(tmp_path: Path) -> None:
    clients = ("aiograb", "aiograb-hedged", "aiograb-aiohttp", "aiohttp", "threads")
    clients += ("pycurl", "pycurl-hedged")  # the floor under the libcurl transport
    results = run_fanout(FanoutSpec(widths=(40,), rounds=(3,), clients=clients), log=lambda _: None)
    rows = {r["client"]: r for r in results["rows"]}
    assert set(rows) == set(clients)
    for row in rows.values():
        assert "failed" not in row, row
        assert row["errors"] == 0
        assert len(row["latencies_ms"]) == 3
        assert row["p50_ms"] >= MEDIAN_S * 1000
        assert row["cpu_us_per_call"] > 0
    assert rows["aiograb"]["extra_pct"] == 0  # no hedging, nothing failed: no extra request
    for name in ("aiograb", "aiograb-aiohttp", "pycurl", "pycurl-hedged"):
        assert rows[name]["peak_threads"] <= 2, name  # one loop thread, whatever the fan-out
    # One thread per call in flight: most of the 40 (the pool reuses a thread whose call
    # has ended before the last is submitted, more so on a busy machine).
    assert rows["threads"]["peak_threads"] >= 20
    assert "| aiograb-hedged | 40 |" in fanout_table(results)
    assert any(f["name"].startswith("W=40 aiograb CPU/call") for f in results["acceptance"])
    cdf, resources = plot_fanout_cdf(results, tmp_path), plot_fanout_resources(results, tmp_path)
    assert cdf is not None
    assert resources is not None
    for plot in (cdf, resources):
        with Image.open(plot.path) as img:
            assert img.format == "PNG"
    blocks = _fanout({"fanout": results}, {cdf.path.name: cdf})
    assert cdf in blocks


def test_acceptance_from_known_numbers() -> None:
    def row(client: str, cpu: float, p50: float, extra: float = 0.0) -> dict[str, object]:
        return {"client": client, "width": 1000, "cpu_us_per_call": cpu, "p50_ms": p50,
                "extra_pct": extra, "peak_threads": 1}  # fmt: skip

    figures = fanout_acceptance(
        [
            row("aiograb", 105, 470),
            row("aiohttp", 100, 480),
            row("pycurl", 50, 440),
            row("aiograb-hedged", 110, 90, 6),
        ]
    )
    by_name = {f["name"]: f for f in figures}
    assert by_name["W=1000 aiograb CPU/call vs bare pycurl"]["measured"] == "2.10x"
    assert by_name["W=1000 aiograb CPU/call vs bare aiohttp"]["met"] is True
    assert by_name["W=1000 hedged p50 (ms)"]["met"] is True
    assert by_name["W=1000 hedged extra requests (%)"]["met"] is True
    assert by_name["W=1000 hedged p50 vs plain"]["measured"] == "0.19x"


def test_cli_offers_the_fanout_flag() -> None:
    proc = aiograb_cli("bench", "--help")
    assert proc.returncode == 0
    assert "--fanout" in proc.stdout


@pytest.mark.slow
def test_the_aggregator_example_serves_and_load_tests_both_designs() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "aggregator.py"
    cmd = [sys.executable, str(example), "loadtest", "--m", "4", "--w", "20", "--requests", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=110, env=_env())
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    by_impl = {r["impl"]: r for r in rows}
    assert set(by_impl) == {"aiograb", "threads"}
    for row in rows:
        assert row["endpoint_requests"] == 8
        assert row["p50_ms"] >= 20  # at least the backend's median
        assert row["cpu_us_per_call"] > 0
    assert "failed" not in proc.stdout  # every backend call answered
    assert by_impl["threads"]["peak_threads"] > by_impl["aiograb"]["peak_threads"]
    assert "| aiograb |" in proc.stdout
