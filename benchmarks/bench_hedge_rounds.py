"""Hedged fan-out rounds, two source trees side by side: how long each round took and
how many hedges it sent (the client's own counters), so a change to the hedge's timing
is judged on precision (hedges per round) as well as on the endpoint's latency.

The fan-out benchmark's backend (``aiograb.bench._fanout_backend``: log-normal around
20 ms, a 0.1 % tail of 400 ms, a repeated key answered at the median) runs in its own
process; each tree runs in a fresh child process (``PYTHONPATH=TREE/src``), the trees
taking turns ``--turns`` times, each turn ``--rounds`` rounds of ``--width`` calls with
``Hedge(after=--hedge)`` on the default transport, after two unmeasured rounds.

    git worktree add /tmp/base <commit>
    python benchmarks/bench_hedge_rounds.py --before /tmp/base --turns 3 --rounds 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


async def _rounds(
    base_url: str, width: int, rounds: int, hedge: str, ns: str
) -> list[dict[str, Any]]:
    from aiograb import Hedge, Limits, open_client
    from aiograb.bench._fanout_child import round_urls

    # Every turn its own namespace: the same latencies per round (they follow the key),
    # none of them answered at the median as a repeat of an earlier turn's.
    spec = {"client": ns, "base_url": base_url, "width": width}
    after: float | str = float(hedge) if hedge[0].isdigit() else hedge
    out: list[dict[str, Any]] = []
    async with open_client(limits=Limits(concurrency=width), hedge=Hedge(after=after)) as client:
        for r in ["warm0", "warm1", *range(rounds)]:
            before = client.statistics()
            start = time.perf_counter()
            results = await client.gather(round_urls(spec, r))
            took = time.perf_counter() - start
            after_stats = client.statistics()
            if isinstance(r, int):
                out.append(
                    {
                        "ms": round(took * 1000, 1),
                        "hedges": after_stats.hedges - before.hedges,
                        "wins": after_stats.hedge_wins - before.hedge_wins,
                        "refused": after_stats.budget_refused - before.budget_refused,
                        "errors": sum(1 for result in results if not result.ok),
                    }
                )
    return out


def child(args: argparse.Namespace) -> None:
    from aiograb._core.loop import run_loop

    rows = run_loop(_rounds(args.base_url, args.width, args.rounds, args.hedge, args.ns))
    print(json.dumps(rows))


def _run(
    tree: Path | None, base_url: str, args: argparse.Namespace, ns: str
) -> list[dict[str, Any]]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve() / "src")
    cmd = [
        sys.executable, str(HERE), "--child", "--base-url", base_url,
        "--width", str(args.width), "--rounds", str(args.rounds), "--hedge", args.hedge, "--ns", ns,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    rows: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def _summary(rows: list[dict[str, Any]]) -> str:
    ms = sorted(row["ms"] for row in rows)
    hedges = [row["hedges"] for row in rows]
    q = statistics.quantiles(ms, n=10)
    return (
        f"round p50 {statistics.median(ms):6.1f} ms  p90 {q[8]:6.1f}  max {ms[-1]:6.1f}  |  "
        f"hedges/round median {statistics.median(hedges):4.1f}  max {max(hedges):3d}  "
        f"total {sum(hedges):5d}  won {sum(row['wins'] for row in rows):4d}  "
        f"refused {sum(row['refused'] for row in rows):4d}  "
        f"errors {sum(row['errors'] for row in rows)}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--turns", type=int, default=3, help="turns of each tree, alternating")
    p.add_argument("--hedge", default="p95", help="a Hedge(after=...): seconds or 'p95'")
    p.add_argument("--before", type=Path, help="also run this source tree")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    p.add_argument("--ns", default="hedge-rounds", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    trees: dict[str, Path | None] = {"this tree": None}
    if args.before is not None:
        trees["before"] = args.before
    backend = subprocess.Popen(
        [sys.executable, "-m", "aiograb.bench._fanout_backend"], stdout=subprocess.PIPE, text=True
    )
    every: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    try:
        assert backend.stdout is not None
        base_url = f"http://127.0.0.1:{int(backend.stdout.readline().split()[1])}"
        for turn in range(args.turns):
            for name, tree in trees.items():
                rows = _run(tree, base_url, args, f"{turn}-{name.replace(' ', '-')}")
                every[name] += rows
                print(f"turn {turn + 1} {name:>9}: {_summary(rows)}", flush=True)
    finally:
        backend.terminate()
    print(f"\nW = {args.width}, Hedge(after={args.hedge!r}), {args.turns} x {args.rounds} rounds")
    for name, rows in every.items():
        print(f"{name:>9}: {_summary(rows)}")
    if "before" in every:
        new, old = (statistics.median(row["ms"] for row in every[k]) for k in trees)
        print(f"round p50, this tree / before: {new / old:.3f}")


if __name__ == "__main__":
    main()
