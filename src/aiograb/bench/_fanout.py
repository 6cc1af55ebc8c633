"""The service fan-out benchmark (issue #12): one endpoint request = W backend calls.

The backend (``_fanout_backend``) runs in its own process; each client runs in a
fresh child process per W, measured from outside (peak threads and RSS, as in
the rest of the bench) and inside (each endpoint request's latency, CPU of the
measured rounds). Extra requests are counted by the backend. Within each W the
clients take turns going first, so slow drift of a shared machine favours none.

>>> results = run_fanout(FanoutSpec(widths=(100,), rounds=(10,)))
>>> print(fanout_table(results))
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._fanout_clients import CLIENTS, DEFAULT_CLIENTS, available_clients
from ._fanout_model import assigned_latency, round_keys
from ._measure import measure_process

__all__ = ["FanoutSpec", "fanout_acceptance", "fanout_table", "quick_fanout", "run_fanout"]

Log = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class FanoutSpec:
    """Which fan-outs to measure: ``rounds[i]`` endpoint requests of ``widths[i]`` calls."""

    widths: tuple[int, ...] = (100, 1000, 5000)
    rounds: tuple[int, ...] = (40, 20, 5)
    warmup: int = 1  # unmeasured rounds first (connections, the hedge's latency samples)
    clients: tuple[str, ...] = DEFAULT_CLIENTS
    max_cap: int = 1000  # connections (threads) per client: min(W, max_cap)
    child_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.rounds) or not self.widths:
            raise ValueError("give one rounds count per width")
        if any(w < 1 for w in self.widths) or any(r < 1 for r in self.rounds):
            raise ValueError("widths and rounds must be >= 1")
        unknown = sorted(set(self.clients) - set(CLIENTS))
        if unknown:
            raise ValueError(f"unknown fan-out client(s): {', '.join(unknown)}")


def quick_fanout() -> FanoutSpec:
    """The small size ``aiograb bench --fanout`` runs (~1-2 minutes on 2 cores)."""
    return FanoutSpec(widths=(100, 300), rounds=(12, 6))


class _Backend:
    def __init__(self, env: dict[str, str]) -> None:
        cmd = [sys.executable, "-m", "aiograb.bench._fanout_backend", "--port", "0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            self.proc.kill()
            raise RuntimeError("the fan-out backend did not start")
        self.base_url = f"http://127.0.0.1:{line[1]}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.base_url}/stats", timeout=10) as resp:
            stats: dict[str, int] = json.loads(resp.read())
            return stats

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _run_one(
    spec: FanoutSpec, backend: _Backend, client: str, width: int, rounds: int, tmp: Path
) -> dict[str, Any]:
    cap = min(width, spec.max_cap)
    child = {
        "client": client,
        "base_url": backend.base_url,
        "width": width,
        "rounds": rounds,
        "warmup": spec.warmup,
        "cap": cap,
    }
    spec_path, result_path = tmp / "spec.json", tmp / "result.json"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(child), encoding="utf-8")
    before = backend.stats()
    cmd = [sys.executable, "-m", "aiograb.bench._fanout_child", str(spec_path), str(result_path)]
    outside = measure_process(cmd, timeout=spec.child_timeout_s, env=_env())
    after = backend.stats()
    row: dict[str, Any] = {"client": client, "width": width, "rounds": rounds, "cap": cap}
    if outside.exit_code != 0 or not result_path.exists():
        row["failed"] = f"exit {outside.exit_code}: {outside.stderr.strip()[-300:]}"
        return row
    inside = json.loads(result_path.read_text(encoding="utf-8"))
    lat = inside["latencies_s"]
    slowest = [max(assigned_latency(k) for k in round_keys(width, r)) for r in range(rounds)]
    sent = after["requests"] - before["requests"]
    calls = width * (rounds + spec.warmup)
    row.update(
        p50_ms=round(statistics.median(lat) * 1000, 1),
        p99_ms=round(_quantile(lat, 0.99) * 1000, 1),
        overhead_ms=round(
            statistics.median(a - s for a, s in zip(lat, slowest, strict=True)) * 1000, 1
        ),
        slowest_call_ms=round(statistics.median(slowest) * 1000, 1),
        cpu_us_per_call=round(inside["cpu_s"] / (width * rounds) * 1e6, 1),
        extra_pct=round(100 * (sent - calls) / calls, 2),
        peak_threads=outside.peak_threads,
        peak_rss_mb=round(outside.peak_rss_mb, 1),
        errors=inside["errors"],
        latencies_ms=[round(v * 1000, 2) for v in lat],
    )
    return row


def _describe(row: dict[str, Any]) -> str:
    if "failed" in row:
        return f"{row['client']:<15} W={row['width']:<5} FAILED {row['failed']}"
    return (
        f"{row['client']:<15} W={row['width']:<5} p50 {row['p50_ms']:>7.1f} ms  "
        f"p99 {row['p99_ms']:>7.1f} ms  CPU {row['cpu_us_per_call']:>6.1f} us/call  "
        f"extra {row['extra_pct']:>5.2f} %  threads {row['peak_threads']:>4}  "
        f"RSS {row['peak_rss_mb']:>6.1f} MB  errors {row['errors']}"
    )


def run_fanout(spec: FanoutSpec, *, log: Log = print) -> dict[str, Any]:
    """Measure every client at every width; the rows, the acceptance ratios, the setup."""
    clients, skipped = available_clients(spec.clients)
    for note in skipped:
        log(f"skipped {note}")
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    backend = _Backend(_env())
    try:
        with tempfile.TemporaryDirectory(prefix="aiograb-fanout-") as tmp:
            for i, (width, rounds) in enumerate(zip(spec.widths, spec.rounds, strict=True)):
                turn = clients[i % len(clients) :] + clients[: i % len(clients)]
                for client in turn:
                    row = _run_one(spec, backend, client, width, rounds, Path(tmp))
                    log(_describe(row))
                    rows.append(row)
    finally:
        backend.close()
    results = {
        "spec": asdict(spec),
        "skipped": skipped,
        "rows": rows,
        "duration_s": round(time.perf_counter() - t0, 1),
    }
    results["acceptance"] = fanout_acceptance(rows)
    return results


def _row(rows: list[dict[str, Any]], client: str, width: int) -> dict[str, Any] | None:
    for row in rows:
        if row["client"] == client and row["width"] == width and "failed" not in row:
            return row
    return None


def fanout_acceptance(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, as measured (``met`` is None when a row is missing)."""
    figures: list[dict[str, Any]] = []
    widths = sorted({r["width"] for r in rows})
    hedge_w = 1000 if 1000 in widths else max(widths, default=0)
    for w in widths:
        bare = _row(rows, "aiohttp", w)
        for name in ("aiograb", "aiograb-aiohttp"):
            plain = _row(rows, name, w)
            if plain and bare:
                cpu = plain["cpu_us_per_call"] / bare["cpu_us_per_call"]
                p50 = plain["p50_ms"] / bare["p50_ms"]
                figures.append(_figure(f"W={w} {name} CPU/call vs bare aiohttp", cpu, "<= 1.10x"))
                figures.append(_figure(f"W={w} {name} p50 vs bare aiohttp", p50, "<= 1.15x"))
        plain, floor = _row(rows, "aiograb", w), _row(rows, "pycurl", w)
        if plain and floor:  # no target: how far above bare libcurl its layers put it
            cpu = plain["cpu_us_per_call"] / floor["cpu_us_per_call"]
            figures.append(_figure(f"W={w} aiograb CPU/call vs bare pycurl", cpu, ""))
        if plain:
            figures.append(
                _figure(f"W={w} aiograb OS threads", plain["peak_threads"], "<= 2", ratio=False)
            )
    for suffix in ("", "-aiohttp"):
        figures += _hedge_figures(rows, hedge_w, suffix)
    return figures


def _hedge_figures(rows: list[dict[str, Any]], w: int, suffix: str) -> list[dict[str, Any]]:
    hedged, plain = _row(rows, f"aiograb{suffix}-hedged", w), _row(rows, f"aiograb{suffix}", w)
    if not hedged:
        return []
    name = f"W={w} hedged" if not suffix else f"W={w} aiograb{suffix}-hedged"
    figures = [
        _figure(f"{name} p50 (ms)", hedged["p50_ms"], "<= 150", ratio=False),
        _figure(f"{name} extra requests (%)", hedged["extra_pct"], "<= 8", ratio=False),
    ]
    if plain:
        figures.append(_figure(f"{name} p50 vs plain", hedged["p50_ms"] / plain["p50_ms"], ""))
    return figures


def _figure(name: str, value: float, target: str, ratio: bool = True) -> dict[str, Any]:
    met = None
    if target.startswith("<="):
        met = value <= float(target[2:].strip().rstrip("x"))
    shown = f"{value:.2f}x" if ratio else f"{value:g}"
    return {"name": name, "measured": shown, "expected": target or "-", "met": met}


def fanout_table(results: dict[str, Any]) -> str:
    """The rows as a Markdown table."""
    head = (
        "| client | W | p50 ms | p99 ms | over slowest call ms | CPU µs/call | extra % "
        "| OS threads | RSS MB | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in results["rows"]:
        if "failed" in r:
            lines.append(f"| {r['client']} | {r['width']} | failed: {r['failed'][:80]} |")
            continue
        lines.append(
            f"| {r['client']} | {r['width']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['overhead_ms']} | {r['cpu_us_per_call']} | {r['extra_pct']} | "
            f"{r['peak_threads']} | {r['peak_rss_mb']} | {r['errors']} |"
        )
    return "\n".join(lines)
