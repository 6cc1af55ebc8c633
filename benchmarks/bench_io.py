"""The IO pool: ``aiograb get`` onto disk and onto tmpfs, with and without IO threads, in one run.

The local test server runs in its own process with ``--latency-ms`` per
response; for each round, the four configurations (disk or tmpfs output,
``--io-threads 0`` or ``N``) run as child processes in a rotating order, each
into a fresh folder. Reported: files/s of each, and the disk/tmpfs ratio per
IO setting (1.0 = the disk costs nothing). Uses bench_get's measurement.

    python benchmarks/bench_io.py --n 4000 --concurrency 1000 --latency-ms 200 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_get import aiograb_cmd, count_files, machine, measure, write_urls

from aiograb.testing import ServerConfig, ServerProcess


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--latency-ms", type=float, default=200.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--io-threads", type=int, default=4)
    p.add_argument("--disk", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--tmpfs", type=Path, default=Path("/dev/shm"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    configs = [(where, io) for where in ("disk", "tmpfs") for io in (0, args.io_threads)]
    walls: dict[str, list[float]] = {f"{w} io={io}": [] for w, io in configs}
    cpus: dict[str, list[float]] = {k: [] for k in walls}
    with ServerProcess(ServerConfig(latency_ms=args.latency_ms), warm=True) as server:
        for r in range(args.rounds):
            for where, io in configs[r % 4 :] + configs[: r % 4]:
                base = args.disk if where == "disk" else args.tmpfs
                work = Path(tempfile.mkdtemp(prefix="aiograb-bench-io-", dir=base))
                try:
                    urls, out = work / "urls.txt", work / "out"
                    write_urls(urls, server.base_url, args.n)
                    cmd = aiograb_cmd(urls, out, work / "s.json", args.concurrency,
                                      ["--io-threads", str(io)])  # fmt: skip
                    m = measure(f"{where} io={io}", cmd, work / "log", timeout=300,
                                server_pid=server.pid)  # fmt: skip
                    files, _ = count_files(out)
                    if m.exit_code != 0 or files != args.n:
                        raise SystemExit(f"{m.name}: exit {m.exit_code}, {files} files")
                    walls[m.name].append(m.wall)
                    cpus[m.name].append(m.cpu)
                    print(f"round {r}: {m.name:<12} {m.wall:6.2f} s  {files / m.wall:7.0f} "
                          f"files/s  {m.cpu:5.2f} s CPU  threads {m.peak_threads}",
                          flush=True)  # fmt: skip
                finally:
                    shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "median_wall_s": med,
        "files_per_s": {k: args.n / v for k, v in med.items()},
        "median_cpu_s": {k: statistics.median(v) for k, v in cpus.items()},
        "best_wall_s": {k: min(v) for k, v in walls.items()},
        "walls": walls,
        "disk_over_tmpfs_wall": {
            f"io={io}": med[f"disk io={io}"] / med[f"tmpfs io={io}"] for io in (0, args.io_threads)
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
