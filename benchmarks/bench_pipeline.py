"""The image pipeline end to end, side by side: aiograb vs img2dataset, and loop responsiveness.

``--mode dataset`` (default): the same URL list, served by the local test server
(``aiograb.testing.ServerProcess``: ``/img/{n}.jpg?size=medium``, 0.1-0.5 MB JPEGs,
500-1000 px), is turned into a WebDataset of 256 px JPEGs (keep-ratio, quality 90,
shards of 1000) by

- aiograb: ``aiograb get URLS -o OUT --resize keep-ratio --image-size 256 --encode jpg
  --quality 90 --format webdataset --shard-size 1000 --workers 2 --dedup none``
  (``--dedup none``: the server has 64 distinct pictures, and img2dataset does not dedup);
- img2dataset (its own venv): ``img2dataset --url_list URLS --output_format webdataset
  --image_size 256 --resize_mode keep_ratio --encode_quality 90 --processes_count 2
  --thread_count 64 --number_sample_per_shard 1000``.

Each run is a child process; we record wall time from spawn to exit, the samples in its
shards (counted with ``tarfile``) and the peak RSS of its whole process tree (the sum of
VmRSS over the child and all its descendants, polled every 50 ms). Rounds alternate
which side goes first; ratios are per round, medians over rounds are reported.

``--mode loop``: is the event loop still free while the CPU stage works? ``aiograb get``
of small images (10-50 KB), 50 in flight at 100 ms server latency (so at most ~500
files/s: the network, not the CPU, sets the pace), without a CPU stage and with
``--verify`` (every image decoded in 2 worker processes, which keep up: the pool is
not saturated); the files/s of the two should differ by at most 10 %.

    .venv/bin/python benchmarks/bench_pipeline.py --mode dataset --n 5000 --rounds 3
    .venv/bin/python benchmarks/bench_pipeline.py --mode loop --n 10000 --rounds 3
    .venv/bin/python benchmarks/bench_pipeline.py --mode baseline \
        --baseline-python /work/main/.venv/bin/python --n 5000 --rounds 3

``--mode baseline``: the loop mode's download without a CPU stage, this checkout vs
another one (``--baseline-python``): the engine's hook for the stage must cost nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from aiograb.testing import ServerConfig, ServerProcess

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss_mb(root: int) -> float:
    tree, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            continue
    return total / 2**20


def run_child(cmd: list[str], log: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd`` (its output to ``log``: a pipe left unread could block it)."""
    with log.open("wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        peak = 0.0
        while True:
            # wait4: the child's rusage includes every descendant it reaped (workers).
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{cmd[:3]} exited {proc.returncode}: {tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "peak_tree_rss_mb": peak, "exit": proc.returncode}


def count_samples(out: Path) -> int:
    n = 0
    for shard in out.rglob("*.tar"):
        with tarfile.open(shard) as tar:
            n += sum(1 for m in tar.getmembers() if m.name.endswith(".jpg"))
    return n


def dataset_commands(side: str, urls: Path, out: Path, args: argparse.Namespace) -> list[str]:
    if side == "aiograb":
        return [
            sys.executable, "-m", "aiograb", "get", str(urls), "-o", str(out), "-q",
            "-c", str(args.concurrency), "--per-host", "0", "--retries", "0",
            "--resize", "keep-ratio", "--image-size", "256", "--encode", "jpg",
            "--quality", "90", "--format", "webdataset", "--shard-size", "1000",
            "--workers", str(args.workers), "--dedup", "none",
        ]  # fmt: skip
    return [
        args.peer, "--url_list", str(urls), "--input_format", "txt",
        "--output_folder", str(out), "--output_format", "webdataset",
        "--image_size", "256", "--resize_mode", "keep_ratio", "--encode_quality", "90",
        "--processes_count", str(args.workers), "--thread_count", str(args.concurrency),
        "--number_sample_per_shard", "1000", "--retries", "0", "--timeout", "30",
        "--enable_wandb", "False", "--distributor", "multiprocessing",
    ]  # fmt: skip


def loop_commands(side: str, urls: Path, out: Path, args: argparse.Namespace) -> list[str]:
    python = args.baseline_python if side == "baseline" else sys.executable
    cmd = [
        python, "-m", "aiograb", "get", str(urls), "-o", str(out), "-q",
        "-c", str(args.concurrency), "--per-host", "0", "--retries", "0",
    ]  # fmt: skip
    if side == "with-cpu-stage":
        cmd += ["--verify", "--workers", str(args.workers), "--dedup", "none"]
    return cmd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=("dataset", "loop", "baseline"), default="dataset")
    p.add_argument(
        "--baseline-python",
        help="--mode baseline: the python of another checkout (e.g. main's .venv) whose "
        "'aiograb get' without a CPU stage is compared with this one's",
    )
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--latency-ms", type=float, default=None)
    p.add_argument("--peer", default="/work/venvs/img2dataset/bin/img2dataset")
    p.add_argument("--tmp", default=None, help="where outputs go (default: system temp)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    dataset = args.mode == "dataset"
    args.concurrency = args.concurrency or (64 if dataset else 50)
    latency = args.latency_ms if args.latency_ms is not None else (20.0 if dataset else 100.0)
    sides = ("aiograb", "img2dataset") if dataset else ("no-cpu-stage", "with-cpu-stage")
    if args.mode == "baseline":
        sides = ("no-cpu-stage", "baseline")
    commands = dataset_commands if dataset else loop_commands
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
    rounds: list[dict[str, Any]] = []
    with (
        ServerProcess(ServerConfig(latency_ms=latency)) as srv,
        tempfile.TemporaryDirectory(dir=args.tmp) as tmp,
    ):
        query = "?size=medium" if dataset else ""
        urls = Path(tmp) / "urls.txt"
        urls.write_text("".join(f"{srv.base_url}/img/{i}.jpg{query}\n" for i in range(args.n)))
        # Warm the server's picture cache so that no run pays for drawing.
        warm = Path(tmp) / "warm"
        run_child(loop_commands("no-cpu-stage", urls, warm, args), Path(tmp) / "warm.log", env)
        subprocess.run(["rm", "-rf", str(warm)], check=True)
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            result: dict[str, Any] = {}
            for side in order:
                out = Path(tmp) / f"{side}-{r}"
                os.sync()
                m = run_child(commands(side, urls, out, args), Path(tmp) / f"{side}.log", env)
                m["items"] = count_samples(out) if dataset else count_files(out)
                m["items_per_s"] = m["items"] / m["wall"]
                m["items_per_cpu_s"] = m["items"] / m["cpu"]
                result[side] = m
                subprocess.run(["rm", "-rf", str(out)], check=True)
                print(
                    f"round {r + 1} {side}: {m['items']} in {m['wall']:.1f} s = "
                    f"{m['items_per_s']:.0f}/s, CPU {m['cpu']:.1f} s "
                    f"({m['items_per_cpu_s']:.0f}/CPU-s), "
                    f"peak tree RSS {m['peak_tree_rss_mb']:.0f} MB",
                    flush=True,
                )
            a, b = (result[s] for s in sides)
            result["speed_ratio"] = a["items_per_s"] / b["items_per_s"]
            result["cpu_efficiency_ratio"] = a["items_per_cpu_s"] / b["items_per_cpu_s"]
            result["rss_ratio"] = a["peak_tree_rss_mb"] / b["peak_tree_rss_mb"]
            rounds.append(result)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    for name in ("speed_ratio", "cpu_efficiency_ratio", "rss_ratio"):
        values = [x[name] for x in rounds]
        report[f"median_{name}"] = statistics.median(values)
        listed = ", ".join(f"{v:.2f}" for v in values)
        print(f"median {sides[0]}/{sides[1]} {name}: {statistics.median(values):.2f} ({listed})")
    if args.json:
        report["rounds"] = rounds
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def count_files(out: Path) -> int:
    return sum(1 for p in out.glob("??/*") if p.is_file())


if __name__ == "__main__":
    main()
