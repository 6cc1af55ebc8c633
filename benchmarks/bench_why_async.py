"""The acceptance figures of ``aiograb bench`` (issue 4), measured side by side and repeated.

One server process (``aiograb.testing.ServerProcess``); per round and latency, each
engine configuration runs once as its own child process (the same runs as
``aiograb bench``'s sweep), in an order that alternates between rounds. Reported
per latency: medians over rounds and the min–max spread of

- async(C=1000) / threads(C=100) files/s           (expected >= 5 at 200 ms)
- async / threads RSS per request in flight at C=1000, against C=1   (expected <= 0.10),
  and the same for virtual memory (address space: thread stacks)
- async peak OS threads at C=1000                   (expected <= 2)
- sync files/s x latency                            (expected ≈ 1)

    python benchmarks/bench_why_async.py --rounds 3 --latency-ms 200,1000 --json why.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from aiograb.bench import standard_config
from aiograb.bench._suite import _Runner
from aiograb.testing import ServerConfig, ServerProcess

RUNS = [("threads", 1), ("async", 1), ("threads", 100), ("threads", 1000), ("async", 1000)]


def one_round(runner: _Runner, latency: float, order: int) -> dict[str, Any]:
    runs = [*RUNS, ("sync", 1)]
    if order % 2:
        runs = runs[::-1]
    rows = {(e, c): runner.sweep_run(e, latency, c) for e, c in runs}
    a, t100, t1000 = rows["async", 1000], rows["threads", 100], rows["threads", 1000]
    a_mem = (a["peak_rss_mb"] - rows["async", 1]["peak_rss_mb"]) * 1024 / 999
    t_mem = (t1000["peak_rss_mb"] - rows["threads", 1]["peak_rss_mb"]) * 1024 / 999
    a_vm = (a["peak_vm_mb"] - rows["async", 1]["peak_vm_mb"]) * 1024 / 999
    t_vm = (t1000["peak_vm_mb"] - rows["threads", 1]["peak_vm_mb"]) * 1024 / 999
    return {
        "latency_ms": latency,
        "async_1000_fps": a["files_per_s"],
        "threads_100_fps": t100["files_per_s"],
        "threads_1000_fps": t1000["files_per_s"],
        "fps_ratio": a["files_per_s"] / t100["files_per_s"],
        "async_kb_per_request": a_mem,
        "threads_kb_per_request": t_mem,
        "mem_ratio": a_mem / t_mem if t_mem > 0 else float("nan"),
        "async_vm_kb_per_request": a_vm,
        "threads_vm_kb_per_request": t_vm,
        "vm_ratio": a_vm / t_vm if t_vm > 0 else float("nan"),
        "async_peak_threads": a["peak_threads"],
        "threads_1000_peak_threads": t1000["peak_threads"],
        "async_cpu_ms_per_file": a["cpu_ms_per_file"],
        "threads_100_cpu_ms_per_file": t100["cpu_ms_per_file"],
        "sync_fps_x_latency": rows["sync", 1]["files_per_s"] * latency / 1000,
        "failed": sum(r["failed"] for r in rows.values()),
        "rows": list(rows.values()),
    }


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in rounds[0].items() if isinstance(v, int | float) and k != "latency_ms"]
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in rounds]
        out[key] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", default="200,1000")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    latencies = [float(x) for x in args.latency_ms.split(",")]
    config = standard_config(n=args.n, latencies_ms=tuple(latencies))
    results: dict[str, Any] = {"latencies": {}, "load_average_start": os.getloadavg()}
    with (
        tempfile.TemporaryDirectory(prefix="aiograb-why-", dir=config.workdir) as tmp,
        ServerProcess(ServerConfig(record=False), warm=True) as server,
    ):
        runner = _Runner(config, server, Path(tmp), print)
        per: dict[float, list[dict[str, Any]]] = {lat: [] for lat in latencies}
        for r in range(args.rounds):
            for lat in latencies:
                per[lat].append(one_round(runner, lat, r))
    results["load_average_end"] = os.getloadavg()
    print(f"load average: start {results['load_average_start']}, end {results['load_average_end']}")
    for lat, rounds in per.items():
        summary = summarise(rounds)
        results["latencies"][str(lat)] = {"summary": summary, "rounds": rounds}
        print(f"\n== latency {lat:g} ms, {len(rounds)} rounds: median [min .. max]")
        for key, s in summary.items():
            print(f"{key:<30} {s['median']:>10.3f}  [{s['min']:.3f} .. {s['max']:.3f}]")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
