"""The IO pool: ``aiograb get`` onto disk and onto tmpfs, with and without IO threads, in one run.

The local test server runs in its own process with ``--latency-ms`` per
response; for each round, every configuration (disk or tmpfs output, each
``--io-threads`` setting) runs as a child process, in a rotating order, each
into a fresh folder. Reported: files/s of each, and the disk/tmpfs ratio per
IO setting (1.0 = the disk costs nothing). Uses bench_get's measurement.
``--io-threads 0,1,2,4`` compares several settings; ``--before TREE`` also runs
each from another source tree (``PYTHONPATH=TREE/src``) in the same rotation.

    python benchmarks/bench_io.py --n 4000 --concurrency 1000 --latency-ms 200 --rounds 3
    python benchmarks/bench_io.py --io-threads 0,1,2,4 --before /tmp/before --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_get import aiograb_cmd, count_files, machine, measure, write_urls

from aiograb.testing import ServerConfig, ServerProcess


def _io_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a list like 0,1,2,4, not {text!r}") from None
    return values


def _configs(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(tree, where, io) for every run of a round: tree is "" (this one) or "before"."""
    trees = [""] + (["before"] if args.before is not None else [])
    return [(t, w, io) for t in trees for w in ("disk", "tmpfs") for io in args.io_threads]


def _name(tree: str, where: str, io: int) -> str:
    return f"{tree + ': ' if tree else ''}{where} io={io}"


def _one(
    args: argparse.Namespace, server: Any, config: tuple[str, str, int], kept: list[Path]
) -> Any:
    """One run into a fresh folder, kept (in ``kept``) until every round is over: on an
    ext4 without a journal, creating files right after thousands were deleted costs far
    more kernel CPU (``bench_fs_create.py``), so deleting a round's output before the
    next would measure that instead of the disk."""
    tree, where, io = config
    base = args.disk if where == "disk" else args.tmpfs
    work = Path(tempfile.mkdtemp(prefix="aiograb-bench-io-", dir=base))
    kept.append(work)
    env = dict(os.environ, PYTHONPATH=str((args.before / "src").resolve())) if tree else None
    urls, out = work / "urls.txt", work / "out"
    write_urls(urls, server.base_url, args.n)
    cmd = aiograb_cmd(urls, out, work / "s.json", args.concurrency, ["--io-threads", str(io)])
    m = measure(_name(*config), cmd, work / "log", timeout=300, server_pid=server.pid, env=env)
    files, _ = count_files(out)
    if m.exit_code != 0 or files != args.n:
        raise SystemExit(f"{m.name}: exit {m.exit_code}, {files} files")
    pooled = json.loads((work / "s.json").read_text()).get("files_by_io_pool")
    if pooled is not None:  # a tree that measures where files go (Placement)
        print(f"  {m.name}: {pooled:,} of {files:,} files stored by the IO pool", flush=True)
    return m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--latency-ms", type=float, default=200.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--io-threads", type=_io_list, default=[0, 4], metavar="N,N,...",
                   help="the IO settings to compare (default 0,4)")  # fmt: skip
    p.add_argument("--before", type=Path, help="also run every setting from this source tree")
    p.add_argument("--disk", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--tmpfs", type=Path, default=Path("/dev/shm"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    configs = _configs(args)
    walls: dict[str, list[float]] = {_name(*c): [] for c in configs}
    cpus: dict[str, list[float]] = {k: [] for k in walls}
    kept: list[Path] = []
    try:
        with ServerProcess(ServerConfig(latency_ms=args.latency_ms), warm=True) as server:
            for r in range(args.rounds):
                k = r % len(configs)
                for config in configs[k:] + configs[:k]:
                    m = _one(args, server, config, kept)
                    walls[m.name].append(m.wall)
                    cpus[m.name].append(m.cpu)
                    print(f"round {r}: {m.name:<22} {m.wall:6.2f} s  {args.n / m.wall:7.0f} "
                          f"files/s  {m.cpu:5.2f} s CPU  threads {m.peak_threads}",
                          flush=True)  # fmt: skip
    finally:
        for work in kept:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    ratio = {
        _name(t, "disk", io).replace("disk ", ""): med[_name(t, "disk", io)]
        / med[_name(t, "tmpfs", io)]
        for t, w, io in configs
        if w == "disk"
    }
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "median_wall_s": med,
        "files_per_s": {k: args.n / v for k, v in med.items()},
        "median_cpu_s": {k: statistics.median(v) for k, v in cpus.items()},
        "best_wall_s": {k: min(v) for k, v in walls.items()},
        "walls": walls,
        "disk_over_tmpfs_wall": ratio,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
