"""The merged manifest of a parted run: two source trees side by side, in one run.

One ``aiograb get --procs 2`` run (of the "after" tree) over the local test
server makes a real parted output of ``--n`` rows; then each round times, in a
fresh child process per tree (``PYTHONPATH=<tree>/src``), rewriting
``OUT/manifest.jsonl`` from the parts the way the coordinator does at the end
of a run (the "after" tree is told every part finished, as ``run_parted`` does
when every task returned). Reported: seconds per tree (median), the ratio, and
whether both wrote the same bytes.

    git archive <commit> | tar -x -C /tmp/before
    python benchmarks/bench_merge.py --before /tmp/before --after . --n 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_get import aiograb_cmd, machine, write_urls

from aiograb.testing import ServerConfig, ServerProcess

CHILD = """\
import inspect, sys, time
from pathlib import Path
t0 = time.perf_counter()
from aiograb._scale.merge import write_merged_manifest
from aiograb._scale.plan import load_plan
out, target = Path(sys.argv[1]), Path(sys.argv[2])
t1 = time.perf_counter()
plan = load_plan(out)
kw = {}
if "fresh" in inspect.signature(write_merged_manifest).parameters:
    kw["fresh"] = [p.index for p in plan.parts]
c0 = time.process_time()
n = write_merged_manifest(plan, target, **kw)
print(n, time.perf_counter() - t1, time.process_time() - c0, t1 - t0)
"""


def _time_merge(tree: Path, out: Path, target: Path) -> tuple[int, float, float]:
    env = dict(os.environ, PYTHONPATH=str((tree / "src").resolve()))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(target)],
        env=env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    n, wall, cpu, _imports = done.stdout.split()
    return int(n), float(wall), float(cpu)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True, help="the baseline source tree")
    p.add_argument("--after", type=Path, default=Path(__file__).resolve().parent.parent)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tmp", type=Path, default=Path("/dev/shm"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    trees = {"before": args.before, "after": args.after}
    walls: dict[str, list[float]] = {k: [] for k in trees}
    cpus: dict[str, list[float]] = {k: [] for k in trees}
    same = True
    with tempfile.TemporaryDirectory(prefix="aiograb-bench-merge-", dir=args.tmp) as tmp:
        work = Path(tmp)
        urls, out = work / "urls.txt", work / "out"
        with ServerProcess(ServerConfig(), warm=True) as server:
            write_urls(urls, server.base_url, args.n)
            cmd = aiograb_cmd(urls, out, work / "s.json", 256, ["--procs", "2"])
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=600)
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for name in order:
                target = work / f"{name}.jsonl"
                n, wall, cpu = _time_merge(trees[name], out, target)
                if n != args.n:
                    raise SystemExit(f"{name}: {n} rows, not {args.n}")
                walls[name].append(wall)
                cpus[name].append(cpu)
                print(f"round {r}: {name:<6} {wall:6.3f} s wall {cpu:6.3f} s CPU", flush=True)
            same = (
                same and (work / "before.jsonl").read_bytes() == (work / "after.jsonl").read_bytes()
            )
        shutil.rmtree(out, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "rows": args.n,
        "median_wall_s": med,
        "median_cpu_s": {k: statistics.median(v) for k, v in cpus.items()},
        "before_over_after": med["before"] / med["after"],
        "same_bytes": same,
        "walls": walls,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
