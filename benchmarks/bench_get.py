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
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import JOURNAL, Measurement, count_files, machine, measure

from aiograb.testing import EXTENSIONS, ServerConfig, ServerProcess

HERE = Path(__file__).resolve().parent
BARE = HERE / "bare_aiohttp.py"

TARGETS = {
    "files_per_s_ratio": 1.0,
    "cpu_per_file_ratio": 1.0,
    "peak_rss_mb": 120.0,
    "peak_threads": 2,
    "million_peak_rss_mb": 200.0,
}


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
