"""Instructions per fan-out call, counted by valgrind's callgrind: an A/B that this
shared machine's swings in speed (1.5x within minutes) cannot blur.

``open_client`` (the default transport) runs W calls per round against the fan-out
benchmark's backend (in its own process, not counted), under ``valgrind
--tool=callgrind``, once with ``--short`` rounds and once with ``--long``; the
difference over the extra calls is what one call costs, start-up and warm-up excluded.
``PYTHONHASHSEED`` is fixed; two runs of the same tree agree to ~0.1 %. ``--before
TREE`` counts another source tree (``PYTHONPATH=TREE/src``) the same way, at the same
time, side by side (valgrind is slow: each count takes a minute or two, one core each).

    python benchmarks/bench_instructions.py --before /tmp/base
    python benchmarks/bench_instructions.py --hedge p95 --width 200
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve()


async def _client(base_url: str, width: int, rounds: int, hedge: str) -> None:
    from aiograb import Hedge, Limits, open_client
    from aiograb.bench._fanout_child import round_urls

    spec = {"client": "instructions", "base_url": base_url, "width": width}
    chosen = None
    if hedge:
        chosen = Hedge(after=float(hedge) if hedge[0].isdigit() else hedge)
    async with open_client(limits=Limits(concurrency=width), hedge=chosen) as client:
        for r in ["warm0", "warm1", *range(rounds)]:
            await client.gather(round_urls(spec, r))


def child(args: argparse.Namespace) -> None:
    """Under valgrind: the client alone."""
    from aiograb._core.loop import run_loop

    run_loop(_client(args.base_url, args.width, args.rounds, args.hedge))


def count(tree: Path | None, base_url: str, width: int, rounds: int, hedge: str) -> int:
    out = Path(tempfile.mkdtemp(prefix="aiograb-callgrind-")) / "cg.out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve() / "src")
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, str(HERE), "--child", "--base-url", base_url,
        "--width", str(width), "--rounds", str(rounds), "--hedge", hedge,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    shutil.rmtree(out.parent, ignore_errors=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=200)
    p.add_argument("--short", type=int, default=2, help="rounds of the first count")
    p.add_argument("--long", type=int, default=6, help="rounds of the second")
    p.add_argument("--hedge", default="", help="a Hedge(after=...): seconds or 'p95'")
    p.add_argument("--before", type=Path, help="also count this source tree")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    backend = subprocess.Popen(
        [sys.executable, "-m", "aiograb.bench._fanout_backend"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert backend.stdout is not None
        base_url = f"http://127.0.0.1:{int(backend.stdout.readline().split()[1])}"
        trees: dict[str, Path | None] = {"this tree": None}
        if args.before is not None:
            trees["before"] = args.before
        # The trees side by side, one count each at a time (one core each): how libcurl's
        # events batch depends a little on speed, so both see the same conditions.
        jobs = [(name, n) for n in (args.short, args.long) for name in trees]
        with ThreadPoolExecutor(len(trees)) as pool:
            counted = dict(
                zip(
                    jobs,
                    pool.map(
                        lambda job: count(trees[job[0]], base_url, args.width, job[1], args.hedge),
                        jobs,
                    ),
                    strict=True,
                )
            )
    finally:
        backend.terminate()
    calls = (args.long - args.short) * args.width
    per_call = {
        name: (counted[(name, args.long)] - counted[(name, args.short)]) / calls for name in trees
    }
    setting = f"W = {args.width}, hedge {args.hedge or 'none'}"
    for name, n in per_call.items():
        print(f"{name}: {n:,.0f} instructions per call ({setting})")
    if "before" in per_call:
        print(f"this tree / before: {per_call['this tree'] / per_call['before']:.4f}")


if __name__ == "__main__":
    main()
