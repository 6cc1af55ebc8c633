"""``aiograb get`` side by side with a bare aiohttp + uvloop script, on one machine.

The local test server runs in its own process (``aiograb.testing.ServerProcess``);
each client runs as a child process into a fresh temporary folder, and the rounds
alternate which client goes first. For each child it records wall time, CPU
(user + sys from ``os.wait4``), peak RSS (the child's ``VmHWM``, and the sum over
its process tree), peak OS threads (by polling ``/proc/<pid>/task``) and the
files that arrived. See benchmarks/README.md.

    python benchmarks/bench_get.py --n 10000 --concurrency 500 --latency-ms 50 --rounds 3
    python benchmarks/bench_get.py --million --million-seconds 540
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from proctree import ProcessTree

from aiograb.testing import EXTENSIONS, ServerConfig, ServerProcess

HERE = Path(__file__).resolve().parent
BARE = HERE / "bare_aiohttp.py"
JOURNAL = "aiograb-journal.sqlite"
POLL_SECONDS = 0.02
TICKS = os.sysconf("SC_CLK_TCK")

TARGETS = {
    "files_per_s_ratio": 1.0,
    "cpu_per_file_ratio": 1.0,
    "peak_rss_mb": 120.0,
    "peak_threads": 2,
    "million_peak_rss_mb": 200.0,
}


@dataclass
class Measurement:
    """One child process, start to exit."""

    name: str
    exit_code: int
    wall: float  # seconds from spawn to exit
    user: float
    sys: float
    peak_rss_mb: float  # the child's own VmHWM (not ru_maxrss: see proctree.py)
    peak_threads: int  # max len(/proc/<pid>/task) over the polls
    server_cpu: float = 0.0  # CPU seconds the server spent during this run
    files: int = 0  # files found in the output folder afterwards
    bytes: int = 0
    ok: int = 0  # what the client says it stored
    interrupted_at: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    series: list[dict[str, float]] = field(default_factory=list)  # sampled over time
    peak_tree_rss_mb: float = 0.0  # the sum of every process of its tree's VmHWM
    tree_cpu: float = 0.0  # user + sys of the whole tree (ProcessTree.cpu_seconds)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall if self.wall else 0.0

    @property
    def cpu_ms_per_file(self) -> float:
        return 1000 * self.cpu / self.files if self.files else float("inf")

    def row(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("series", "summary")}
        d |= {
            "cpu": self.cpu,
            "files_per_s": self.files_per_s,
            "cpu_ms_per_file": self.cpu_ms_per_file,
        }
        return d


# -- measuring one child ---------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    """user + sys CPU seconds of a live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _journal_rows(path: Path) -> tuple[int, int]:
    """(rows ingested, rows done) in an aiograb journal another process is writing."""
    if not path.exists():
        return 0, 0
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        ) as db:
            total = db.execute("SELECT max(id) FROM items").fetchone()[0] or 0
            done = db.execute("SELECT count(*) FROM items WHERE state != 'pending'").fetchone()[0]
            return int(total), int(done)
    except sqlite3.Error:
        return -1, -1


def measure(
    name: str,
    cmd: list[str],
    log: Path,
    *,
    timeout: float,
    server_pid: int,
    interrupt_after: float | None = None,
    journal: Path | None = None,
    series_every: float = 1.0,
    env: dict[str, str] | None = None,
) -> Measurement:
    """Run ``cmd`` to its end; poll threads and RSS every 20 ms; SIGINT it after
    ``interrupt_after`` seconds, SIGKILL it after ``timeout`` seconds."""
    server0 = _proc_cpu(server_pid)
    with log.open("wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    tree = ProcessTree(proc.pid)
    peak_threads, series, next_sample = 0, [], 0.0
    interrupted_at: float | None = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        now = time.perf_counter() - t0
        if pid:
            break
        peak_threads = max(peak_threads, _threads(proc.pid))
        tree.poll(now)
        if now >= next_sample:
            sample = {"t": round(now, 2), "rss_mb": round(_rss_mb(proc.pid), 1)}
            if journal is not None:
                sample["rows_ingested"], sample["rows_done"] = _journal_rows(journal)
            series.append(sample)
            next_sample = now + series_every
        if interrupt_after is not None and interrupted_at is None and now >= interrupt_after:
            proc.send_signal(signal.SIGINT)
            interrupted_at = now
        if now >= timeout:
            proc.kill()
        time.sleep(POLL_SECONDS)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Measurement(
        name=name,
        exit_code=proc.returncode,
        wall=now,
        user=usage.ru_utime,
        sys=usage.ru_stime,
        peak_rss_mb=tree.own_mb,
        peak_tree_rss_mb=tree.tree_mb,
        tree_cpu=tree.cpu_seconds(usage.ru_utime + usage.ru_stime),
        peak_threads=peak_threads,
        server_cpu=_proc_cpu(server_pid) - server0,
        interrupted_at=interrupted_at,
        series=series,
    )


def count_files(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root``, not counting aiograb's journal, manifest, lock and temp."""
    n = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        top = Path(dirpath) == root
        for f in filenames:
            if top and (f.startswith((JOURNAL, "manifest.jsonl")) or f == "aiograb.lock"):
                continue
            n += 1
            size += os.stat(os.path.join(dirpath, f)).st_size
    return n, size


def _check_exit(m: Measurement, log: Path) -> None:
    """A client that crashed measured nothing: stop with the end of its output."""
    if m.exit_code in (0, 1, 130):  # all ok, some URLs failed, interrupted
        return
    tail = log.read_text(errors="replace").splitlines()[-15:]
    raise SystemExit(f"{m.name} exited with {m.exit_code}:\n" + "\n".join(tail))


# -- the two clients --------------------------------------------------------------------


def run_bare(urls: Path, work: Path, args: argparse.Namespace, server_pid: int) -> Measurement:
    out = work / "bare-out"
    cmd = [sys.executable, str(BARE), str(urls), str(out), "--concurrency", str(args.concurrency)]
    m = measure("bare", cmd, work / "bare.log", timeout=args.timeout, server_pid=server_pid)
    _check_exit(m, work / "bare.log")
    m.files, m.bytes = count_files(out)
    tail = (work / "bare.log").read_text().split()
    m.ok = int(tail[1]) if len(tail) >= 4 and tail[0] == "ok" else 0
    return m


def aiograb_cmd(
    urls: Path, out: Path, summary: Path, concurrency: int, extra: list[str]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "aiograb",
        "get",
        str(urls),
        "-o",
        str(out),
        "-c",
        str(concurrency),
        "--per-host",
        "0",
        "-q",
        "--summary-json",
        str(summary),
        *extra,
    ]


def run_aiograb(
    urls: Path,
    work: Path,
    args: argparse.Namespace,
    server_pid: int,
    *,
    extra: tuple[str, ...] = (),
    interrupt_after: float | None = None,
    series_every: float = 1.0,
) -> Measurement:
    out, summary = work / "aiograb-out", work / "aiograb-summary.json"
    cmd = aiograb_cmd(urls, out, summary, args.concurrency, [*args.aiograb_arg, *extra])
    m = measure(
        "aiograb",
        cmd,
        work / "aiograb.log",
        timeout=args.timeout,
        server_pid=server_pid,
        interrupt_after=interrupt_after,
        journal=out / JOURNAL if interrupt_after is not None else None,
        series_every=series_every,
    )
    _check_exit(m, work / "aiograb.log")
    m.files, m.bytes = count_files(out)
    if summary.exists():
        m.summary = json.loads(summary.read_text())
        m.ok = m.summary.get("ok", 0)
    return m


# -- the two benchmarks ------------------------------------------------------------------


def write_urls(path: Path, base_url: str, n: int, route: str = "img") -> None:
    with path.open("w") as fh:
        for i in range(n):
            if route == "img":
                fh.write(f"{base_url}/img/{i}.{EXTENSIONS[i % len(EXTENSIONS)]}\n")
            else:
                fh.write(f"{base_url}/file/{i}.bin?bytes={route}\n")


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def bench_10k(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    urls = work / "urls.txt"
    rounds: list[dict[str, Any]] = []
    with ServerProcess(ServerConfig(latency_ms=args.latency_ms), warm=True) as server:
        write_urls(urls, server.base_url, args.n)
        print(
            f"server {server.base_url} (pid {server.pid}), {args.latency_ms:g} ms latency; "
            f"{args.n:,} URLs, concurrency {args.concurrency}, {args.rounds} rounds",
            flush=True,
        )
        for r in range(args.rounds):
            order = ("bare", "aiograb") if r % 2 == 0 else ("aiograb", "bare")
            result: dict[str, Any] = {
                "round": r + 1,
                "order": list(order),
                "loadavg": os.getloadavg(),
            }
            # Outputs stay until the end: on an ext4 without a journal (this machine's),
            # creating a file right after many deletions costs far more kernel CPU
            # (ext4 skips recently deleted inodes one by one), whoever runs next.
            round_dir = work / f"round{r + 1}"
            round_dir.mkdir()
            for name in order:
                os.sync()  # the previous run's dirty pages are not this run's cost
                fn = run_bare if name == "bare" else run_aiograb
                m = fn(urls, round_dir, args, server.pid)
                result[name] = m.row() | ({"summary": m.summary} if m.summary else {})
                _print_row(r + 1, m, args.n)
            b, a = result["bare"], result["aiograb"]
            result["files_per_s_ratio"] = _ratio(a["files_per_s"], b["files_per_s"])
            result["cpu_per_file_ratio"] = _ratio(a["cpu_ms_per_file"], b["cpu_ms_per_file"])
            # User CPU alone: the kernel's file-creation cost varies run to run (see README).
            result["user_cpu_ratio"] = _ratio(
                a["user"] / max(a["files"], 1), b["user"] / max(b["files"], 1)
            )
            print(
                f"  round {r + 1}: aiograb/bare files/s x{result['files_per_s_ratio']:.3f}, "
                f"CPU/file x{result['cpu_per_file_ratio']:.3f}",
                flush=True,
            )
            rounds.append(result)
    return {"rounds": rounds, "median": _medians(rounds, args.n)}


def _medians(rounds: list[dict[str, Any]], n: int) -> dict[str, Any]:
    keys = (
        "wall",
        "files_per_s",
        "cpu",
        "user",
        "sys",
        "cpu_ms_per_file",
        "peak_rss_mb",
        "peak_threads",
        "server_cpu",
    )
    med: dict[str, Any] = {
        who: {k: statistics.median(r[who][k] for r in rounds) for k in keys}
        for who in ("bare", "aiograb")
    }
    for who in ("bare", "aiograb"):
        med[who]["max_peak_rss_mb"] = max(r[who]["peak_rss_mb"] for r in rounds)
        med[who]["max_peak_threads"] = max(r[who]["peak_threads"] for r in rounds)
        med[who]["all_files_arrived"] = all(r[who]["files"] == n for r in rounds)
    med["files_per_s_ratio"] = statistics.median(r["files_per_s_ratio"] for r in rounds)
    med["cpu_per_file_ratio"] = statistics.median(r["cpu_per_file_ratio"] for r in rounds)
    med["user_cpu_ratio"] = statistics.median(r["user_cpu_ratio"] for r in rounds)
    a = med["aiograb"]
    med["targets"] = {
        "files_per_s_ratio>=1.0": med["files_per_s_ratio"] >= TARGETS["files_per_s_ratio"],
        "cpu_per_file_ratio<=1.0": med["cpu_per_file_ratio"] <= TARGETS["cpu_per_file_ratio"],
        "peak_rss_mb<=120": a["max_peak_rss_mb"] <= TARGETS["peak_rss_mb"],
        "peak_threads<=2": a["max_peak_threads"] <= TARGETS["peak_threads"],
        "all_files_arrived": med["aiograb"]["all_files_arrived"],
    }
    return med


def bench_million(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    urls = work / "urls-1m.txt"
    route = "img" if args.million_route == "img" else args.million_route
    with ServerProcess(ServerConfig(latency_ms=0.0), warm=True) as server:
        write_urls(urls, server.base_url, args.million_n, route)
        print(
            f"server {server.base_url}, 0 ms latency; {args.million_n:,} URLs "
            f"({urls.stat().st_size / 1e6:.0f} MB list), SIGINT after "
            f"{args.million_seconds:g} s if not done",
            flush=True,
        )
        os.sync()
        m = run_aiograb(
            urls,
            work,
            args,
            server.pid,
            extra=("--accept", "any"),
            interrupt_after=args.million_seconds,
            series_every=5.0,
        )
    _print_row(1, m, args.million_n)
    counts = m.summary.get("counts", {})
    rss = [s["rss_mb"] for s in m.series if s["rss_mb"]]
    half = len(rss) // 2
    result = {
        "run": m.row() | {"summary": m.summary},
        "series": m.series,
        "rows_journaled": sum(counts.values()),
        "rows_done": counts.get("ok", 0) + counts.get("failed", 0),
        "route": route,
        "rss_first_half_max_mb": max(rss[:half], default=0.0),
        "rss_second_half_max_mb": max(rss[half:], default=0.0),
        "target_peak_rss_mb<=200": m.peak_rss_mb <= TARGETS["million_peak_rss_mb"],
    }
    print(
        f"  journaled {result['rows_journaled']:,} rows, {result['rows_done']:,} done; "
        f"peak RSS {m.peak_rss_mb:.1f} MB (max sampled RSS first half "
        f"{result['rss_first_half_max_mb']:.1f} MB, second half "
        f"{result['rss_second_half_max_mb']:.1f} MB)",
        flush=True,
    )
    return result


# -- output ---------------------------------------------------------------------------------


def _print_row(r: int, m: Measurement, n: int) -> None:
    flag = "" if m.files == n else f"  <-- {m.files:,} of {n:,} files"
    print(
        f"  round {r} {m.name:8} wall {m.wall:7.2f} s  {m.files_per_s:7.0f} files/s  "
        f"CPU {m.cpu:6.2f} s ({m.user:.2f} u + {m.sys:.2f} s) = "
        f"{m.cpu_ms_per_file:.3f} ms/file  RSS {m.peak_rss_mb:6.1f} MB  "
        f"threads {m.peak_threads}  server CPU {m.server_cpu:.1f} s  exit {m.exit_code}"
        f"{flag}",
        flush=True,
    )


def print_table(med: dict[str, Any]) -> None:
    b, a = med["bare"], med["aiograb"]
    print("\nmedian over rounds      bare    aiograb   aiograb/bare")
    rows = [
        ("files/s", "files_per_s", "{:.0f}"),
        ("wall s", "wall", "{:.2f}"),
        ("CPU s (user+sys)", "cpu", "{:.2f}"),
        ("  user s", "user", "{:.2f}"),
        ("  sys s", "sys", "{:.2f}"),
        ("CPU ms/file", "cpu_ms_per_file", "{:.3f}"),
        ("peak RSS MB", "peak_rss_mb", "{:.1f}"),
        ("peak OS threads", "peak_threads", "{:.0f}"),
        ("server CPU s", "server_cpu", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        print(
            f"{label:18} {fmt.format(b[key]):>9} {fmt.format(a[key]):>10} "
            f"{_ratio(a[key], b[key]):>10.3f}"
        )
    print(
        f"paired ratios (median of per-round): files/s x{med['files_per_s_ratio']:.3f}, "
        f"CPU/file x{med['cpu_per_file_ratio']:.3f} (user CPU/file x{med['user_cpu_ratio']:.3f})"
    )
    for target, met in med["targets"].items():
        print(f"  {'met    ' if met else 'NOT met'} {target}")


def machine() -> dict[str, Any]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("aiohttp", "uvloop", "aiograb")},
        "aiograb_commit": _git("rev-parse", "--short", "HEAD"),
        "src_modified": bool(_git("status", "--porcelain", "src")),
    }


def _git(*args: str) -> str:
    """Read-only git queries, so that a result names the code it measured."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=HERE.parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="URLs (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=500)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timeout", type=float, default=600.0, help="kill a child after this")
    p.add_argument(
        "--aiograb-arg",
        action="append",
        default=[],
        help="extra argument for aiograb get (repeatable), e.g. --aiograb-arg=--no-uvloop",
    )
    p.add_argument(
        "--million",
        action="store_true",
        help="instead: the memory run, aiograb only, over --million-n URLs",
    )
    p.add_argument("--million-n", type=int, default=1_000_000)
    p.add_argument(
        "--million-seconds",
        type=float,
        default=540.0,
        help="SIGINT the million run after this many seconds if it is not done",
    )
    p.add_argument(
        "--million-route",
        default="img",
        help="'img' (images as in the 10k run) or a body size N for /file/{i}.bin?bytes=N",
    )
    p.add_argument("--tmp", type=Path, default=None, help="where the temporary folders go")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    if args.million:
        args.timeout = max(args.timeout, args.million_seconds + 300)
    info = machine()
    print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    with tempfile.TemporaryDirectory(prefix="aiograb-bench-", dir=args.tmp) as tmp:
        work = Path(tmp)
        if args.million:
            results = {"million": bench_million(args, work)}
        else:
            results = bench_10k(args, work)
            print_table(results["median"])
    command = " ".join([Path(sys.executable).name, *sys.argv])
    doc = {
        "command": command,
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        **results,
    }
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"results: {args.json}")


if __name__ == "__main__":
    main()
