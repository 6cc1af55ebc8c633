"""How long ``--dask local:N`` takes to have its cluster up, from a fresh interpreter.

Prints wall and this process's CPU at each step: the import of aiograb's Dask module,
``open_dask`` returning (the coordinator then writes the plan while the cluster starts),
the executor ready (cluster up), two trivial tasks, and the close. Run a few times: the
first run after boot also pays for the disk cache.

    python benchmarks/bench_dask_startup.py --workers 2
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()

    def mark(what: str) -> None:
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{what:<28} wall {wall:6.3f} s   own CPU {cpu:6.3f} s", flush=True)

    from aiograb._scale.dask import DaskTarget, open_dask

    mark("import aiograb._scale.dask")
    with open_dask(DaskTarget(local_workers=args.workers)) as run:
        mark("open_dask returned")
        executor = run.executor()
        mark("cluster up")
        pids = [f.result() for f in [executor.submit(os.getpid) for _ in range(args.workers)]]
        mark(f"{len(set(pids))} workers ran a task")
    mark("closed")


if __name__ == "__main__":
    main()
