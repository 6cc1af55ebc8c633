"""``aiograb crawl`` side by side with Scrapy on the same generated site, in one run.

The local test server runs in its own process (``aiograb.testing.ServerProcess``)
and serves the plain benchmark site: ``/plain/p/{i}.html`` for ``i < --pages``,
a binary tree of pages (links to ``2i+1``, ``2i+2`` and the parent), each with
five ``<img src>`` (``--pages 2000`` -> 10,000 images), every response delayed by
``--latency-ms``. Each round runs both crawlers as child processes from the same
seed into fresh folders, alternating which goes first. Scrapy runs from its own
venv (``--scrapy-python``) with ``benchmarks/scrapy_site_spider.py``: follow every
link on the host, every ``<img src>`` to ``FilesPipeline``, concurrency raised to
``-c``. Both obey robots.txt and keep no cookies; aiograb runs with
``--per-host 0``, Scrapy with ``CONCURRENT_REQUESTS_PER_DOMAIN = -c``.

Measured per child: wall time from spawn to exit (interpreter start and imports
included, for both), user + sys CPU and peak RSS (``os.wait4``), the server's CPU
over the same span, and what arrived: pages parsed and image files on disk.
**items/s** = (pages + images) / wall. Ratios are aiograb / Scrapy within a round,
then the median over rounds.

    python benchmarks/bench_crawl.py --pages 2000 --latency-ms 50 -c 256 --rounds 3

``--memory N`` instead crawls an N-page site with aiograb alone (``--pages-only``,
so the frontier and the graph grow but no image is written; no latency), sampling
its RSS every second, to show that memory does not grow with the site.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiograb.testing import ServerConfig, ServerProcess, plain_image_count

HERE = Path(__file__).resolve().parent
SPIDER = HERE / "scrapy_site_spider.py"
TICKS = os.sysconf("SC_CLK_TCK")
TARGET_SPEEDUP = 3.0


@dataclass
class Run:
    name: str
    round: int
    exit_code: int
    wall: float
    cpu: float
    peak_rss_mb: float
    server_cpu: float
    pages: int
    images: int

    @property
    def items_per_s(self) -> float:
        return (self.pages + self.images) / self.wall if self.wall else 0.0


def _proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _run(cmd: list[str], log: Path, server_pid: int, timeout: float) -> tuple[int, float, Any]:
    server0 = _proc_cpu(server_pid)
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                proc.kill()
            time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, (usage, _proc_cpu(server_pid) - server0)


def count_files(root: Path) -> int:
    return sum(len(files) for _dir, _dirs, files in os.walk(root))


def run_aiograb(seed: str, out: Path, args: argparse.Namespace, pid: int, n: int) -> Run:
    summary = out.parent / f"{out.name}-summary.json"
    cmd = [sys.executable, "-m", "aiograb", "crawl", seed, "-o", str(out)]
    cmd += ["-c", str(args.concurrency), "--per-host", "0", "-q", "--summary-json", str(summary)]
    code, wall, (usage, server_cpu) = _run(cmd, out.parent / "aiograb.log", pid, args.timeout)
    kinds = json.loads(summary.read_text())["kinds"] if summary.exists() else {}
    images = count_files(out) - len([p for p in out.iterdir() if p.is_file()])
    return Run(
        "aiograb",
        n,
        code,
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        server_cpu,
        kinds.get("page", {}).get("ok", 0),
        images,
    )


def run_scrapy(seed: str, out: Path, args: argparse.Namespace, pid: int, n: int) -> Run:
    cmd = [args.scrapy_python, str(SPIDER), seed, str(out), "-c", str(args.concurrency)]
    code, wall, (usage, server_cpu) = _run(cmd, out.parent / "scrapy.log", pid, args.timeout)
    stats_file = out / "stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return Run(
        "scrapy",
        n,
        code,
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        server_cpu,
        int(stats.get("pages_parsed", 0)),
        count_files(out / "full") if (out / "full").exists() else 0,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=2000)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("-c", "--concurrency", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scrapy-python", default="/work/venvs/scrapy/bin/python")
    p.add_argument("--tmp", default=None, help="folder for the outputs (e.g. /dev/shm)")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", type=Path, help="write every measurement here")
    p.add_argument("--memory", type=int, metavar="N", help="RSS over an N-page crawl, aiograb only")
    args = p.parse_args()
    if args.memory:
        return memory(args)
    if not Path(args.scrapy_python).exists():
        print(
            f"no Scrapy interpreter at {args.scrapy_python}: python3 -m venv /work/venvs/scrapy"
            " && /work/venvs/scrapy/bin/pip install scrapy",
            file=sys.stderr,
        )
        return 2
    runs: list[Run] = []
    config = ServerConfig(latency_ms=args.latency_ms, site_pages=args.pages)
    with ServerProcess(config, warm=True) as server:
        seed = server.url("/plain/p/0.html")
        print(
            f"site: {args.pages} pages, {plain_image_count(args.pages)} images, "
            f"{args.latency_ms:g} ms latency, -c {args.concurrency}; {seed}",
            flush=True,
        )
        for n in range(args.rounds):
            order = [run_aiograb, run_scrapy] if n % 2 == 0 else [run_scrapy, run_aiograb]
            for runner in order:
                work = Path(tempfile.mkdtemp(prefix="bench-crawl-", dir=args.tmp))
                try:
                    os.sync()
                    r = runner(seed, work / "out", args, server.pid, n)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                runs.append(r)
                print(
                    f"round {n} {r.name:8} exit {r.exit_code} {r.wall:6.1f} s "
                    f"{r.items_per_s:7.0f} items/s  pages {r.pages} images {r.images}  "
                    f"cpu {r.cpu:5.1f} s  rss {r.peak_rss_mb:5.0f} MB  "
                    f"server cpu {r.server_cpu:5.1f} s",
                    flush=True,
                )
    report(runs, args)
    return 0


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pages_done(journal: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=0.2) as db:
            row = db.execute("SELECT count(*) FROM items WHERE kind='page' AND state='ok'")
            return int(row.fetchone()[0])
    except sqlite3.Error:
        return -1


def memory(args: argparse.Namespace) -> int:
    n = args.memory
    config = ServerConfig(latency_ms=0, site_pages=n, record=False)
    samples: list[tuple[float, float, int]] = []
    with ServerProcess(config) as server, tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "aiograb", "crawl", server.url("/plain/p/0.html")]
        cmd += ["-o", str(out), "--pages-only", "--depth", "64", "--per-host", "0", "-q"]
        cmd += ["-c", str(args.concurrency)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        while proc.poll() is None and time.perf_counter() - t0 < args.timeout:
            time.sleep(1.0)
            try:
                rss = _rss_mb(proc.pid)
            except OSError:
                break
            done = _pages_done(out / "aiograb-journal.sqlite")
            samples.append((time.perf_counter() - t0, rss, done))
            print(f"{samples[-1][0]:6.0f} s  {rss:6.1f} MB  {done:>8} pages", flush=True)
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0].decode()
        wall = time.perf_counter() - t0
    print(output)
    print(f"{n} pages in {wall:.0f} s; RSS by pages done:")
    for frac in (0.1, 0.25, 0.5, 0.75, 1.0):
        hit = next((s for s in samples if s[2] >= frac * n), samples[-1] if samples else None)
        if hit:
            print(f"  {frac:4.0%}: {hit[1]:6.1f} MB at {hit[0]:.0f} s ({hit[2]} pages)")
    if args.json:
        args.json.write_text(json.dumps({"pages": n, "wall": wall, "samples": samples}) + "\n")
    return 0


def report(runs: list[Run], args: argparse.Namespace) -> None:
    by_round: dict[int, dict[str, Run]] = {}
    for r in runs:
        by_round.setdefault(r.round, {})[r.name] = r
    speed = [d["aiograb"].items_per_s / d["scrapy"].items_per_s for d in by_round.values()]
    rss = [d["aiograb"].peak_rss_mb / d["scrapy"].peak_rss_mb for d in by_round.values()]
    cpu = [d["aiograb"].cpu / d["scrapy"].cpu for d in by_round.values()]

    def med(name: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs if r.name == name)

    print()
    print("| | aiograb crawl | Scrapy | ratio (median of rounds) |")
    print("| --- | ---: | ---: | ---: |")
    for label, attr, ratios in (
        ("items/s (pages + images)", "items_per_s", speed),
        ("wall s", "wall", None),
        ("CPU s (user + sys)", "cpu", cpu),
        ("peak RSS MB", "peak_rss_mb", rss),
        ("server CPU s", "server_cpu", None),
    ):
        ratio = f"{statistics.median(ratios):.2f}×" if ratios else ""
        print(f"| {label} | {med('aiograb', attr):,.1f} | {med('scrapy', attr):,.1f} | {ratio} |")
    print(
        f"\nitems/s ratio per round: {', '.join(f'{s:.2f}' for s in speed)} "
        f"(target ≥ {TARGET_SPEEDUP}); RSS ratio per round: "
        f"{', '.join(f'{s:.2f}' for s in rss)} (target ≤ 1)"
    )
    if args.json:
        meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "args": vars(args)}
        data = {"meta": meta, "runs": [asdict(r) | {"items_per_s": r.items_per_s} for r in runs]}
        args.json.write_text(json.dumps(data, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
