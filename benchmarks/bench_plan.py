"""Planning a large input into parts: time and peak RSS (``make_plan`` streams).

Writes ``--n`` synthetic URLs over ``--hosts`` hosts (Zipf-like: a few big
hosts, a long tail) to a temporary file, then plans it into ``--parts`` parts
in a child process and reports the wall time, rows/s and the child's peak RSS.

    python benchmarks/bench_plan.py --n 10000000 --parts 16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys, time, resource
from pathlib import Path
from aiograb._get.sources import open_source
from aiograb._scale.plan import make_plan
t = time.perf_counter()
plan = make_plan(open_source(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      max(p.rows for p in plan.parts), min(p.rows for p in plan.parts), len(plan.split))
"""


def _plan_once(src: Path, out: Path, parts: int, tree: Path | None) -> tuple[float, list[str]]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    t = time.perf_counter()
    cmd = [sys.executable, "-c", CHILD, str(src), str(out), str(parts)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    shutil.rmtree(out, ignore_errors=True)
    return time.perf_counter() - t, done.stdout.split()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--hosts", type=int, default=200_000)
    p.add_argument("--parts", type=int, default=16)
    p.add_argument("--tmp", type=Path, default=None)
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--before",
        type=Path,
        help="also plan with the aiograb of this checkout (its src/ first on the path), "
        "alternating with this one over --rounds, and print the ratio",
    )
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    rnd = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="aiograb-bench-plan-", dir=args.tmp) as tmp:
        src = Path(tmp) / "urls.txt"
        with src.open("w") as fh:
            for i in range(args.n):
                h = int(args.hosts ** rnd.random()) - 1  # log-uniform: a few hosts dominate
                fh.write(f"https://img{h % 7}.site{h}.com/p/{i}.jpg\n")
        size_mb = src.stat().st_size / 1e6
        trees: dict[str, Path | None] = {"this": None}
        if args.before is not None:
            trees["before"] = args.before
        seconds: dict[str, list[float]] = {name: [] for name in trees}
        for r in range(args.rounds):
            for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                wall, fields = _plan_once(
                    src, Path(tmp) / f"out-{name}-{r}", args.parts, trees[name]
                )
                seconds[name].append(float(fields[0]))
                if name == "this":
                    plan_s, rss, biggest, smallest, split = fields
        if args.before is not None:
            for name, values in seconds.items():
                print(f"{name:6} plan s: {', '.join(f'{v:.1f}' for v in values)}")
            ratio = statistics.median(seconds["before"]) / statistics.median(seconds["this"])
            print(f"this plans {ratio:.2f}x as fast as before")
        plan_s = str(statistics.median(seconds["this"]))
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "rows": args.n,
        "input_mb": round(size_mb, 1),
        "plan_seconds": round(float(plan_s), 1),
        "child_wall_seconds": round(wall, 1),
        "rows_per_second": round(args.n / float(plan_s)),
        "peak_rss_mb": round(float(rss), 1),
        "largest_part": int(biggest),
        "smallest_part": int(smallest),
        "split_domains": int(split),
        "max_rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
