"""Two source trees of aiograb side by side, in one run: ``get`` and ``crawl`` before vs after.

Each round runs the same workload once with each tree (``PYTHONPATH=<tree>/src``, the same
interpreter and dependencies), alternating which goes first, against one test server in its
own process. Reported per workload: medians of files/s and CPU ms per item for both trees,
and the ratios after/before. Use it for refactors: a change that must not cost speed.

    git worktree add /tmp/before <commit>
    python benchmarks/bench_before_after.py --before /tmp/before --after . --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_get import count_files, measure, write_urls

from aiograb.testing import ServerConfig, ServerProcess


def _with_tree(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str((tree / "src").resolve())
    return env


def _run(cmd: list[str], tree: Path, log: Path, server_pid: int, timeout: float) -> Any:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_with_tree(tree))  # measure() starts the child with this environment
    try:
        return measure(tree.name, cmd, log, timeout=timeout, server_pid=server_pid)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def get_cmd(urls: Path, out: Path, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "aiograb", "get", str(urls), "-o", str(out),
        "-c", str(concurrency), "--per-host", "0", "-q",
    ]  # fmt: skip


def crawl_cmd(seed: str, out: Path, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "aiograb", "crawl", seed, "-o", str(out),
        "-c", str(concurrency), "--per-host", "0", "-q",
    ]  # fmt: skip


def startup(tree: Path, n: int) -> float:
    """Median wall seconds of ``aiograb --version`` over ``n`` runs."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "aiograb", "--version"],
            env=_with_tree(tree),
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    trees = {"before": args.before, "after": args.after}
    results: dict[str, Any] = {"get": [], "crawl": []}
    config = ServerConfig(latency_ms=args.latency_ms, site_pages=args.pages)
    with ServerProcess(config, warm=True) as server:
        urls = work / "urls.txt"
        write_urls(urls, server.base_url, args.n)
        seed = server.url("/plain/p/0.html")
        for r in range(args.rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for workload in ("get", "crawl"):
                row: dict[str, Any] = {}
                for who in order:
                    out = work / f"{workload}-{who}-{r}"
                    if workload == "get":
                        cmd = get_cmd(urls, out, args.concurrency)
                    else:
                        cmd = crawl_cmd(seed, out, args.concurrency)
                    os.sync()
                    log = work / f"{workload}-{who}-{r}.log"
                    m = _run(cmd, trees[who], log, server.pid, args.timeout)
                    if m.exit_code not in (0, 1):
                        raise SystemExit(f"{who} {workload} exited {m.exit_code}: {log}")
                    files = count_files(out)[0]
                    row[who] = {
                        "wall": m.wall,
                        "cpu": m.cpu,
                        "items": files,
                        "items_per_s": files / m.wall,
                        "cpu_ms_per_item": 1000 * m.cpu / max(files, 1),
                        "peak_threads": m.peak_threads,
                    }
                    print(
                        f"round {r + 1} {workload:5} {who:6} {m.wall:6.2f} s "
                        f"{files / m.wall:7.0f} items/s {1000 * m.cpu / max(files, 1):6.3f} "
                        f"CPU ms/item ({files} items)",
                        flush=True,
                    )
                results[workload].append(row)
    summary: dict[str, Any] = {}
    for workload, rows in results.items():
        s: dict[str, Any] = {}
        for who in trees:
            for k in ("items_per_s", "cpu_ms_per_item"):
                s[f"{who}_{k}"] = statistics.median(row[who][k] for row in rows)
        s["items_per_s_ratio"] = statistics.median(
            row["after"]["items_per_s"] / row["before"]["items_per_s"] for row in rows
        )
        s["cpu_per_item_ratio"] = statistics.median(
            row["after"]["cpu_ms_per_item"] / row["before"]["cpu_ms_per_item"] for row in rows
        )
        summary[workload] = s
    summary["startup_s"] = {who: startup(tree, args.startup_runs) for who, tree in trees.items()}
    return {"rounds": results, "median": summary}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True, help="a checkout of the old code")
    p.add_argument("--after", type=Path, default=Path("."), help="a checkout of the new code")
    p.add_argument("--n", type=int, default=5000, help="URLs for get (default %(default)s)")
    p.add_argument("--pages", type=int, default=500, help="pages of the crawled site")
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--startup-runs", type=int, default=15)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--tmp", type=Path, default=None, help="where outputs go (e.g. /dev/shm)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiograb-ba-", dir=args.tmp) as tmp:
        results = bench(args, Path(tmp))
    print(json.dumps(results["median"], indent=2))
    if args.json:
        doc = {"command": " ".join([Path(sys.executable).name, *sys.argv]), **results}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
