"""aiograb beside its peers on one workload in one run (issue 13): curl, aria2c, img2dataset,
the bare aiohttp + uvloop script and aiograb (each transport), output on disk and on tmpfs.

The local test server runs in its own process (``aiograb.testing.ServerProcess``, adding
``--latency-ms`` before each response); the URL list names ``--n`` distinct images of the
``thumb`` size class (median ~14 KB). Each tool is a child process writing into a fresh
folder; CPU is user + sys from ``os.wait4``, peak RSS (``VmHWM``) and threads are polled
from ``/proc`` (``aiograb.bench._measure``). Every round runs every tool once per output
medium, and the order flips each round (A B C, C B A, ...), so that slow drifts of the
shared machine's load fall on every tool alike; the table gives medians over rounds and
the medians of the per-round ratios against curl and against the bare script.

    python benchmarks/bench_peers.py                       # 10,000 URLs, 3 rounds, disk + tmpfs
    python benchmarks/bench_peers.py --quick               # 2,000 URLs, 2 rounds
    python benchmarks/bench_peers.py --tools curl,aiograb --media tmpfs --rounds 5
    python benchmarks/bench_peers.py --tree before=/tmp/before --tools aiograb,aiograb@before
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
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiograb.bench._measure import cpu_seconds, measure_process
from aiograb.bench._peers import CURL_MAX_PARALLEL, Peer
from aiograb.testing import EXTENSIONS, POOL_SIZE, ServerConfig, ServerProcess

HERE = Path(__file__).resolve().parent
BARE = HERE / "bare_aiohttp.py"
BARE_PYCURL = HERE / "bare_pycurl.py"
SIZE = "thumb"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bin"}
MEDIA = {"disk": None, "tmpfs": Path("/dev/shm")}


@dataclass
class Run:
    """One tool, one round, one medium."""

    tool: str
    medium: str
    round: int
    exit_code: int
    wall: float
    user: float
    sys: float
    peak_rss_mb: float
    peak_threads: int
    files: int
    bytes: int
    server_cpu: float

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall if self.wall else 0.0

    @property
    def cpu_ms_per_file(self) -> float:
        return 1000 * self.cpu / self.files if self.files else float("inf")


# -- the tools -----------------------------------------------------------------------------

Command = Callable[[list[str], Path, Path, int], list[str]]  # (urls, urls file, out, c)


def _peer(name: str, binary: str | None = None) -> Command:
    def command(urls: list[str], _file: Path, out: Path, concurrency: int) -> list[str]:
        cmd = Peer(name, binary or name).command(urls, out, concurrency)
        if name == "img2dataset":  # as in the issue: 2 processes x 128 threads, 2 shards
            swap = {
                "--thread_count": "128",
                "--processes_count": "2",
                "--number_sample_per_shard": str(max(1, (len(urls) + 1) // 2)),
            }
            cmd = [
                f"{a.split('=')[0]}={swap[a.split('=')[0]]}" if a.split("=")[0] in swap else a
                for a in cmd
            ]
        return cmd

    return command


def _bare(_urls: list[str], file: Path, out: Path, concurrency: int) -> list[str]:
    return [sys.executable, str(BARE), str(file), str(out), "--concurrency", str(concurrency)]


def _bare_pycurl_with(*extra: str) -> Command:
    def command(_urls: list[str], file: Path, out: Path, concurrency: int) -> list[str]:
        return [
            sys.executable, str(BARE_PYCURL), str(file), str(out),
            "--concurrency", str(concurrency), *extra,
        ]  # fmt: skip

    return command


def _aiograb(*extra: str, tree: Path | None = None) -> Command:
    # Another source tree runs with its src first on the path (same interpreter and deps).
    prefix = ["env", f"PYTHONPATH={tree.resolve() / 'src'}"] if tree is not None else []

    def command(_urls: list[str], file: Path, out: Path, concurrency: int) -> list[str]:
        return [
            *prefix, sys.executable, "-m", "aiograb", "get", str(file), "-o", str(out),
            "-c", str(concurrency), "--per-host", "0", "-q", *extra,
        ]  # fmt: skip

    return command


def _has_pycurl() -> bool:
    try:
        import pycurl  # noqa: F401
    except ImportError:
        return False
    return True


def available_tools(img2dataset: str = "img2dataset") -> dict[str, Command]:
    """Every tool this machine can run, in the table's order."""
    tools: dict[str, Command] = {}
    if shutil.which("curl"):
        tools["curl"] = _peer("curl")
    tools["bare"] = _bare
    # "aiograb" is the aiohttp transport (named: the default is libcurl's since #13)
    flag = _transport_flag()
    tools["aiograb"] = _aiograb("--transport", "aiohttp") if flag else _aiograb()
    if _has_pycurl() and flag:
        tools["aiograb-curl"] = _aiograb("--transport", "curl")
        # Every file stored by the loop itself, never by the IO pool (as the bare scripts do).
        tools["aiograb-curl-loop"] = _aiograb("--transport", "curl", "--io-threads", "0")
    if _has_pycurl():
        tools["bare-pycurl"] = _bare_pycurl_with()
        # The ladder from that floor to aiograb (bare_pycurl.py): a coroutine per file,
        # then also the hash, the type check and the rename into place.
        tools["bare-pycurl-tasks"] = _bare_pycurl_with("--tasks")
        tools["bare-pycurl-safe"] = _bare_pycurl_with("--tasks", "--safe")
        # ... and the journal's rows and the manifest: every guarantee, plainly.
        tools["bare-pycurl-journal"] = _bare_pycurl_with("--tasks", "--safe", "--journal")
    if shutil.which("aria2c"):
        tools["aria2c"] = _peer("aria2c")
    if shutil.which(img2dataset):
        tools["img2dataset"] = _peer("img2dataset", img2dataset)
    return tools


def _transport_flag() -> bool:
    """Whether this checkout's ``aiograb get`` has ``--transport``."""
    done = subprocess.run(
        [sys.executable, "-m", "aiograb", "get", "--help"], capture_output=True, text=True
    )
    return "--transport" in done.stdout


# -- one run -------------------------------------------------------------------------------


def count_files(root: Path) -> tuple[int, int]:
    """(files, bytes) of complete bodies under ``root``: image suffixes, non-empty, no
    aria2 partial marker; journals, manifests and img2dataset's metadata do not count."""
    n = size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        names = set(filenames)
        for f in filenames:
            if os.path.splitext(f)[1].lower() not in IMAGE_SUFFIXES or f + ".aria2" in names:
                continue
            st = os.stat(os.path.join(dirpath, f))
            if st.st_size:
                n += 1
                size += st.st_size
    return n, size


def run_tool(
    tool: str,
    command: Command,
    urls: list[str],
    urls_file: Path,
    out: Path,
    *,
    medium: str,
    rnd: int,
    args: argparse.Namespace,
    server_pid: int,
) -> Run:
    out.mkdir(parents=True)
    cmd = command(urls, urls_file, out, args.concurrency)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    os.sync()  # the previous run's dirty pages are not this run's cost
    server0 = cpu_seconds(server_pid)
    stats = measure_process(cmd, timeout=args.timeout, env=env)
    files, size = count_files(out)
    run = Run(
        tool=tool,
        medium=medium,
        round=rnd,
        exit_code=stats.exit_code,
        wall=stats.wall_s,
        user=stats.user_s,
        sys=stats.sys_s,
        peak_rss_mb=stats.peak_rss_mb,
        peak_threads=stats.peak_threads,
        files=files,
        bytes=size,
        server_cpu=cpu_seconds(server_pid) - server0,
    )
    flag = "" if files == len(urls) else f"  <-- {files:,} of {len(urls):,} files"
    print(
        f"  r{rnd} {medium:5} {tool:12} {run.wall:6.2f} s {run.files_per_s:6.0f} files/s  "
        f"CPU {run.cpu:5.2f} s ({run.user:.2f}u+{run.sys:.2f}s) {run.cpu_ms_per_file:.3f} ms/file"
        f"  RSS {run.peak_rss_mb:5.1f} MB  thr {run.peak_threads:3}  srv {run.server_cpu:4.1f} s"
        f"  exit {run.exit_code}{flag}",
        flush=True,
    )
    if files < len(urls) * 0.99:
        tail = "\n".join(stats.stderr.splitlines()[-10:])
        print(f"    {tool} stderr tail:\n{tail}", flush=True)
    return run


def warm_server(base_url: str) -> None:
    """Fetch every pool picture of the workload once, so no run pays the server's Pillow."""
    for i in range(POOL_SIZE * len(EXTENSIONS)):
        url = f"{base_url}/img/{i}.{EXTENSIONS[i % len(EXTENSIONS)]}?size={SIZE}&latency_ms=0"
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()


# -- the table -----------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def summarize(runs: list[Run], tools: Sequence[str], medium: str) -> list[dict[str, Any]]:
    """Per tool: medians over rounds, and medians of the per-round ratios vs curl and bare."""
    mine = [r for r in runs if r.medium == medium]
    by = {(r.tool, r.round): r for r in mine}
    rounds = sorted({r.round for r in mine})
    rows = []
    for tool in tools:
        own = [r for r in mine if r.tool == tool]
        if not own:
            continue
        row: dict[str, Any] = {
            "tool": tool,
            "files_per_s": statistics.median(r.files_per_s for r in own),
            "cpu_ms_per_file": statistics.median(r.cpu_ms_per_file for r in own),
            "user_ms_per_file": statistics.median(1000 * r.user / max(r.files, 1) for r in own),
            "sys_ms_per_file": statistics.median(1000 * r.sys / max(r.files, 1) for r in own),
            "peak_rss_mb": max(r.peak_rss_mb for r in own),
            "peak_threads": max(r.peak_threads for r in own),
            "files_min": min(r.files for r in own),
        }
        for ref in ("curl", "bare"):
            both = [n for n in rounds if (ref, n) in by and (tool, n) in by]
            pairs = [(by[tool, n], by[ref, n]) for n in both]
            if pairs:
                row[f"speed_vs_{ref}"] = statistics.median(
                    _ratio(a.files_per_s, b.files_per_s) for a, b in pairs
                )
                row[f"cpu_vs_{ref}"] = statistics.median(
                    _ratio(a.cpu_ms_per_file, b.cpu_ms_per_file) for a, b in pairs
                )
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]], medium: str, n: int) -> None:
    print(f"\n{medium}: medians over rounds; ratios are medians of per-round ratios")
    print(
        "| client | files/s | CPU ms/file (user+sys) | RSS MB | threads "
        "| files/s vs curl | CPU/file vs curl | files/s vs bare | CPU/file vs bare |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratios = " | ".join(
            f"{r[k]:.2f}" if k in r else "–"
            for k in ("speed_vs_curl", "cpu_vs_curl", "speed_vs_bare", "cpu_vs_bare")
        )
        short = "" if r["files_min"] == n else f" ({r['files_min']:,} of {n:,} files)"
        print(
            f"| {r['tool']}{short} | {r['files_per_s']:,.0f} | {r['cpu_ms_per_file']:.3f} "
            f"({r['user_ms_per_file']:.3f}+{r['sys_ms_per_file']:.3f}) | "
            f"{r['peak_rss_mb']:.0f} | {r['peak_threads']} | {ratios} |"
        )


# -- main ----------------------------------------------------------------------------------


def bench(args: argparse.Namespace, tools: dict[str, Command]) -> list[Run]:
    runs: list[Run] = []
    with ServerProcess(ServerConfig(latency_ms=args.latency_ms)) as server:
        warm_server(server.base_url)
        urls = [
            f"{server.base_url}/img/{i}.{EXTENSIONS[i % len(EXTENSIONS)]}?size={SIZE}"
            for i in range(args.n)
        ]
        print(
            f"server {server.base_url} (pid {server.pid}), {args.latency_ms:g} ms latency; "
            f"{args.n:,} URLs ({SIZE} images), concurrency {args.concurrency}, "
            f"{args.rounds} rounds, media {','.join(args.media)}, tools {','.join(tools)}",
            flush=True,
        )
        if "curl" in tools and args.concurrency > CURL_MAX_PARALLEL:
            print(f"note: curl clamps --parallel-max to {CURL_MAX_PARALLEL}", flush=True)
        with tempfile.TemporaryDirectory(prefix="aiograb-peers-", dir=args.tmp) as disk_tmp:
            for rnd in range(1, args.rounds + 1):
                order = list(tools) if rnd % 2 else list(reversed(tools))
                print(f"round {rnd}: load {os.getloadavg()[0]:.1f}", flush=True)
                for medium in args.media:
                    base = MEDIA[medium] or Path(disk_tmp)
                    with tempfile.TemporaryDirectory(prefix="aiograb-peers-", dir=base) as tmp:
                        work = Path(tmp)
                        urls_file = work / "urls.txt"
                        urls_file.write_text("".join(u + "\n" for u in urls))
                        for tool in order:
                            run = run_tool(
                                tool, tools[tool], urls, urls_file, work / tool,
                                medium=medium, rnd=rnd, args=args, server_pid=server.pid,
                            )  # fmt: skip
                            runs.append(run)
                            if medium == "tmpfs":  # RAM: free it now
                                shutil.rmtree(work / tool, ignore_errors=True)
                    # Disk outputs go only with the run's folder: on ext4, creating files
                    # right after many deletions costs the next tool kernel CPU.
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="URLs (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=500)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="2,000 URLs, 2 rounds")
    p.add_argument("--media", default="disk,tmpfs", help="disk, tmpfs or both (default)")
    p.add_argument("--tools", default="", help="comma-separated subset (default: all found)")
    p.add_argument(
        "--img2dataset",
        default="img2dataset",
        help="its command, e.g. from its own venv: /work/venvs/img2dataset/bin/img2dataset",
    )
    p.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also run aiograb from another source tree (before/after), as aiograb@NAME",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="kill a tool after this")
    p.add_argument("--tmp", type=Path, default=None, help="where the disk folders go")
    p.add_argument("--json", type=Path, help="write every run and the tables here")
    args = p.parse_args()
    if args.quick:
        args.n, args.rounds = 2_000, 2
    args.media = [m for m in args.media.split(",") if m]
    unknown = set(args.media) - set(MEDIA)
    if unknown:
        p.error(f"unknown medium {sorted(unknown)}; expected disk, tmpfs")
    tools = available_tools(args.img2dataset)
    for spec in args.tree:
        name, _, path = spec.partition("=")
        for tool in [t for t in tools if t.startswith("aiograb")]:
            extra = ("--transport", "curl" if tool == "aiograb-curl" else "aiohttp")
            tools[f"{tool}@{name}"] = _aiograb(*extra, tree=Path(path))
    if args.tools:
        wanted = args.tools.split(",")
        missing = [t for t in wanted if t not in tools]
        if missing:
            p.error(f"not available here: {missing}; found {list(tools)}")
        tools = {t: tools[t] for t in wanted}
    t0 = time.perf_counter()
    runs = bench(args, tools)
    tables = {m: summarize(runs, list(tools), m) for m in args.media}
    for medium, rows in tables.items():
        print_table(rows, medium, args.n)
    print(f"\n{time.perf_counter() - t0:.0f} s in all")
    if args.json:
        doc = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "src_modified": bool(_git("status", "--porcelain", "src")),
            "nproc": os.cpu_count(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "tables": tables,
            "runs": [asdict(r) for r in runs],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"results: {args.json}")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True)
    return done.stdout.strip()


if __name__ == "__main__":
    main()
