"""Where ``aiograb get`` stores its files on each folder given: on the loop or by the IO
pool (``Placement`` in ``_store/sinks.py``), and what the stores on the loop took.

A real ``run_get`` in this process (the test server in its own, 200 ms of latency,
``-c 1000``, 2 IO threads), with ``Placement.observe`` wrapped to keep each store's wall
time. Prints, per folder and run: the files the pool stored, the stores timed on the
loop (median, p90, p99 µs), and the window of stores before each change of mind.

    python benchmarks/bench_placement.py --n 4000 /dev/shm /tmp /mnt/ext4j
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from aiograb import Limits
from aiograb._core.loop import run_loop
from aiograb._get.download import run_get
from aiograb._get.sources import InputRow
from aiograb._store import sinks
from aiograb.testing import ServerConfig, ServerProcess

Log = list[tuple[float, bool, bool]]  # (µs, on the loop before, after)


def traced(log: Log) -> None:
    observe = sinks.Placement.observe

    def wrapper(self: sinks.Placement, seconds: float) -> None:
        before = self.inline
        observe(self, seconds)
        log.append((seconds * 1e6, before, self.inline))

    sinks.Placement.observe = wrapper  # type: ignore[method-assign]


def report(folder: Path, pooled: int, log: Log) -> None:
    times = sorted(t for t, _, _ in log)
    q = lambda f: times[min(len(times) - 1, int(f * len(times)))] if times else 0.0  # noqa: E731
    print(
        f"{folder}: {pooled:,} files by the pool, {len(log):,} stores on the loop: "
        f"median {q(0.5):.0f} µs, p90 {q(0.9):.0f}, p99 {q(0.99):.0f}"
    )
    for i in [i for i, (_, a, b) in enumerate(log) if a != b][:3]:
        window = [round(t) for t, _, _ in log[max(0, i - sinks.Placement.WINDOW + 1) : i + 1]]
        print(f"  {'to the pool' if log[i][1] else 'back to the loop'} after store {i}: {window}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--runs", type=int, default=2)
    args = p.parse_args()
    log: Log = []
    traced(log)
    with ServerProcess(ServerConfig(latency_ms=200), warm=True) as server:
        for _ in range(args.runs):
            for folder in args.folders:
                log.clear()
                with tempfile.TemporaryDirectory(dir=folder) as out:
                    rows = [
                        InputRow(line=i, url=f"{server.base_url}/img/{i}.jpg")
                        for i in range(args.n)
                    ]
                    limits = Limits(concurrency=1000, per_host=0)
                    summary = run_loop(run_get(rows, out, limits=limits, io_threads=2))
                report(folder, summary.files_by_io_pool, log)


if __name__ == "__main__":
    main()
