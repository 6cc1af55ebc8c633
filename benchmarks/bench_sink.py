"""The IO pool's cost to the event loop, without the network: FileSink alone, per file.

Each run is a child process (``PYTHONPATH=<tree>/src`` for ``--before``) that
stores ``--n`` bodies of ~20 KB through ``FileSink(io_threads=k)`` from
``--workers`` asyncio tasks (open, write, commit, ``await settle()``: what a
download's worker does after its body arrived), onto disk or tmpfs. Reported:
wall, the event-loop thread's own CPU (``time.thread_time`` in the loop: what
a download loses per file) and the process's CPU, per file, for every tree x
place x IO setting, in a rotating order. This is the loop's share that
``bench_io.py`` measures end to end under the noise of the network.

    python benchmarks/bench_sink.py --io-threads 0,1,2,4 --before /tmp/before --rounds 5
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

from bench_get import machine

CHILD = """\
import asyncio, os, sys, time
from aiograb._store.sinks import FileSink
root, n, workers, io = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = os.urandom(20_000)
sink = FileSink(root, io_threads=io)
sink.prepare()

async def worker(w: int) -> None:
    for i in range(w, n, workers):
        writer = sink.open(f"{i:032x}")
        writer.write(body)
        writer.commit("image/jpeg")
        await writer.settle()
        await asyncio.sleep(0)  # the next body arrives in a later turn of the loop

async def main() -> float:
    t = time.thread_time()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return time.thread_time() - t

c0, t0 = time.process_time(), time.perf_counter()
loop_cpu = asyncio.run(main())
sink.close()
print(time.perf_counter() - t0, loop_cpu, time.process_time() - c0)
"""


def _run(tree: Path | None, root: Path, args: argparse.Namespace, io: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str((tree / "src").resolve())) if tree else None
    cmd = [sys.executable, "-c", CHILD, str(root), str(args.n), str(args.workers), str(io)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=True)
    return [float(v) for v in done.stdout.split()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--workers", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--io-threads", default="0,1,2,4")
    p.add_argument("--before", type=Path)
    p.add_argument("--disk", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--tmpfs", type=Path, default=Path("/dev/shm"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    ios = [int(v) for v in args.io_threads.split(",")]
    trees: dict[str, Path | None] = {"": None}
    if args.before is not None:
        trees["before: "] = args.before
    configs = [(t, w, io) for t in trees for w in ("disk", "tmpfs") for io in ios]
    runs: dict[str, list[list[float]]] = {f"{t}{w} io={io}": [] for t, w, io in configs}
    for r in range(args.rounds):
        k = r % len(configs)
        for t, where, io in configs[k:] + configs[:k]:
            base = args.disk if where == "disk" else args.tmpfs
            root = Path(tempfile.mkdtemp(prefix="aiograb-bench-sink-", dir=base))
            try:
                wall, loop_cpu, cpu = _run(trees[t], root, args, io)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            name = f"{t}{where} io={io}"
            runs[name].append([wall, loop_cpu, cpu])
            us = 1e6 / args.n
            print(f"round {r}: {name:<22} wall {wall * us:6.1f} us/file  loop CPU "
                  f"{loop_cpu * us:6.1f} us/file  process CPU {cpu * us:6.1f} us/file",
                  flush=True)  # fmt: skip
    med = {
        k: {
            m: statistics.median(v[i] for v in vs) * 1e6 / args.n
            for i, m in enumerate(("wall_us", "loop_cpu_us", "cpu_us"))
        }
        for k, vs in runs.items()
    }
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "median_per_file": med,
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
