"""The collector's share of a fan-out's CPU (issue #12): ``bench_fanout``'s client run
with every garbage collection timed (``gc.callbacks``), at several generation-0
thresholds, alternating, each run in a fresh process beside its own backend.

A fan-out keeps every call's objects alive while it is in flight, so a round of W calls
can cross a low threshold several times, and each collection walks the live calls: this
is how ``run_loop``'s threshold was chosen (BENCHMARKS.md, "#12 fan-out, fifth pass").

    python benchmarks/bench_fanout_gc.py --width 1000 --rounds 20 --thresholds 5000,50000
    python benchmarks/bench_fanout_gc.py --client aiohttp --repeats 3 --json gc.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _child(threshold: int, client: str, width: int, rounds: int) -> dict[str, Any]:
    from aiograb._core.loop import _uvloop, tuned_gc
    from aiograb.bench._fanout import _Backend
    from aiograb.bench._fanout_child import _Rounds, _run_async
    from aiograb.bench._fanout_clients import ASYNC_CLIENTS

    counts, spent, started = [0, 0, 0], [0.0, 0.0, 0.0], [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            counts[info["generation"]] += 1
            spent[info["generation"]] += time.perf_counter() - started[0]

    backend = _Backend(dict(os.environ))
    try:
        spec = {"client": client, "base_url": backend.base_url, "width": width,
                "rounds": rounds, "warmup": 2, "cap": width}  # fmt: skip
        plan = _Rounds(spec)
        uv = _uvloop()
        gc.callbacks.append(watch)
        try:
            factory = uv.new_event_loop if uv is not None else None
            with tuned_gc(threshold), asyncio.Runner(loop_factory=factory) as runner:
                runner.run(_run_async(plan, ASYNC_CLIENTS[client]))
        finally:
            gc.callbacks.remove(watch)
    finally:
        backend.close()
    result = plan.result()
    latencies = sorted(result["latencies_s"])
    return {
        "threshold0": threshold,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "cpu_us_per_call": result["cpu_s"] / (width * rounds) * 1e6,
        "errors": result["errors"],
        "collections": counts,  # per generation, over the whole run (warm-ups included)
        "collection_ms": [s * 1000 for s in spent],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", default="aiograb-hedged")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--thresholds", default="5000,50000")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every run here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child, args.client, args.width, args.rounds)))
        return
    thresholds = [int(t) for t in args.thresholds.split(",")]
    runs = []
    for _ in range(args.repeats):
        for threshold in thresholds:
            cmd = [sys.executable, __file__, "--child", str(threshold), "--client", args.client,
                   "--width", str(args.width), "--rounds", str(args.rounds)]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            run = json.loads(done.stdout)
            runs.append(run)
            print(
                f"threshold0 {threshold:>7,}  p50 {run['p50_ms']:7.1f} ms  "
                f"CPU {run['cpu_us_per_call']:6.1f} µs/call  collections {run['collections']} "
                f"taking {[round(ms, 1) for ms in run['collection_ms']]} ms"
            )
    if args.json is not None:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "runs": runs}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
