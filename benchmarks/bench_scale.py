"""``--procs 2`` and ``--dask local:2`` against one process, on a CPU-bound workload, in one run.

nginx (from Debian) serves real images (the test server's JPEG/PNG/WebP/GIF,
written once to tmpfs) on 16 loopback addresses with no added latency; each
client is a child process writing to a fresh folder on tmpfs; one uncounted
one-process run of each tree warms the caches first; the rounds rotate
the order. Reported: files/s of each configuration (wall from spawn to exit,
planning and process start-up included) and the ratios to one process. The
reference "2 halves by hand" is what a perfect split costs here: two ordinary
one-process runs at once, each on the URLs of 8 of the 16 hosts.
img2dataset is run at 2 processes too when it is installed (it is not a
dependency: skipped otherwise). ``--before TREE`` also runs aiograb's three
configurations from another source tree (``PYTHONPATH=TREE/src``), in the
same rotation: before/after ratios from one run. nginx shares the machine's
cores, so each run also reports nginx's CPU and ``cpu_ceiling_ratio``: one
process's wall over (the run's CPU + nginx's) / cores, the ratio the run would
reach if every core were busy all along — what a 2-core machine allows.

    python benchmarks/bench_scale.py --n 20000 --rounds 2
    git archive main | tar -x -C /tmp/before
    python benchmarks/bench_scale.py --n 20000 --rounds 3 --before /tmp/before
    python benchmarks/bench_scale.py --n 64 --rounds 8 --configs "--procs 2"  # fixed costs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_get import aiograb_cmd, count_files, machine, measure

from aiograb.testing import EXTENSIONS, image_bytes

HOSTS = [f"127.0.0.{i}" for i in range(1, 17)]

NGINX_CONF = """\
worker_processes 2;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
user root;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp; uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
    types {{ image/jpeg jpg; image/png png; image/webp webp; image/gif gif; }}
    server {{
{listen}
        root {root}/www;
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nginx(root: Path, files: int) -> Iterator[tuple[int, int]]:
    """nginx serving ``files`` images under /img/ on every address of HOSTS: (pid, port)."""
    (root / "www" / "img").mkdir(parents=True)
    (root / "tmp").mkdir()
    for i in range(files):
        ext = EXTENSIONS[i % len(EXTENSIONS)]
        (root / "www" / "img" / f"{i}.{ext}").write_bytes(image_bytes(i, ext))
    port = free_port()
    listen = "\n".join(f"        listen {h}:{port} backlog=4096;" for h in HOSTS)
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, listen=listen))
    proc = subprocess.Popen(["nginx", "-c", str(root / "nginx.conf")], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex((HOSTS[-1], port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise SystemExit("nginx did not start: " + (root / "error.log").read_text())
        yield proc.pid, port
    finally:
        proc.terminate()
        proc.wait(10)


def nginx_cpu(master: int) -> float:
    """CPU seconds of nginx's worker processes so far (the master's own is ~0)."""
    from proctree import _parents, _proc_cpu

    total = 0.0
    for pid, ppid in _parents().items():
        if pid == master or ppid == master:
            with contextlib.suppress(OSError):
                total += _proc_cpu(pid)
    return total


def write_urls(path: Path, port: int, n: int, files: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            host, k = HOSTS[i % len(HOSTS)], (i // len(HOSTS)) % files
            fh.write(f"http://{host}:{port}/img/{k}.{EXTENSIONS[k % len(EXTENSIONS)]}\n")


def halves_cmd(work: Path, out: Path, concurrency: int) -> list[str]:
    """Two one-process runs at once (a shell waits for both), -c split between them."""
    runs = [
        " ".join(
            aiograb_cmd(
                work / f"half{h}.txt", out / f"h{h}", work / f"s{h}.json", concurrency // 2, []
            )
        )
        for h in (0, 1)
    ]
    return ["sh", "-c", f"{runs[0]} & {runs[1]} & wait"]


def img2dataset_cmd(urls: Path, out: Path) -> list[str] | None:
    if shutil.which("img2dataset") is None:
        return None
    return ["img2dataset", "--url_list", str(urls), "--output_folder", str(out),
            "--processes_count", "2", "--thread_count", "64", "--resize_mode", "no"]  # fmt: skip


CONFIGS: dict[str, list[str]] = {
    "one process": [],
    "--procs 2": ["--procs", "2"],
    "--dask local:2": ["--dask", "local:2"],
}
BEFORE = "before: "  # a config run with the --before tree


def _env(tree: Path | None) -> dict[str, str]:
    # albumentations (img2dataset's) would look for a newer version of itself online.
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    if tree is not None:
        env["PYTHONPATH"] = str((tree / "src").resolve())
    return env


def _command(name: str, work: Path, out: Path, urls: Path, concurrency: int) -> list[str]:
    if name.startswith("img2dataset"):
        cmd = img2dataset_cmd(urls, out)
        assert cmd is not None
        return cmd
    if name == "2 halves by hand":
        return halves_cmd(work, out, concurrency)
    flags = CONFIGS[name.removeprefix(BEFORE)]
    return aiograb_cmd(urls, out, work / "s.json", concurrency, flags)


def _split_halves(work: Path, urls: Path) -> None:
    lines = urls.read_text().splitlines(keepends=True)
    for half in (0, 1):  # hosts 1-8 and 9-16 (line i is on host i % 16)
        mine = [line for i, line in enumerate(lines) if i % 16 // 8 == half]
        (work / f"half{half}.txt").write_text("".join(mine))


def _names(args: argparse.Namespace, urls: Path, work: Path) -> list[str]:
    wanted = [c.strip() for c in args.configs.split(",")] if args.configs else None
    ours = [n for n in CONFIGS if wanted is None or n in wanted or n == "one process"]
    names = list(ours)
    if args.before is not None:
        names += [BEFORE + n for n in ours]
    if wanted is None or "halves" in wanted:
        names.append("2 halves by hand")
    if wanted is not None and "img2dataset" not in wanted:
        return names
    if img2dataset_cmd(urls, work) is None:
        print("img2dataset is not installed: skipped", flush=True)
    else:
        names.append("img2dataset 2 procs")
    return names


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=512)
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the uncounted one-process run of each tree before the rounds",
    )
    p.add_argument("--tmpfs", type=Path, default=Path("/dev/shm"))
    p.add_argument("--before", type=Path, help="also run aiograb's configs from this source tree")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--configs",
        help="only these, comma-separated: 'one process' (always kept: the ratios' base), "
        "'--procs 2', '--dask local:2', 'halves', 'img2dataset' (default: all)",
    )
    args = p.parse_args()
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    tree_rss: dict[str, list[float]] = {}
    server: dict[str, list[float]] = {}  # nginx's CPU during each run
    with tempfile.TemporaryDirectory(prefix="aiograb-bench-scale-", dir=args.tmpfs) as tmp:
        work = Path(tmp)
        with nginx(work / "nginx", files=max(1, args.n // len(HOSTS))) as (pid, port):
            urls = work / "urls.txt"
            write_urls(urls, port, args.n, max(1, args.n // len(HOSTS)))
            _split_halves(work, urls)
            names = _names(args, urls, work)
            # Not counted: a first run pays for what later ones find warm (the page cache
            # of the interpreter's and nginx's files), and round 0 starts with one process.
            for name in [n for n in names if n.endswith("one process") and args.warmup]:
                cmd = _command(name, work, work / "out", urls, args.concurrency)
                env = _env(args.before if name.startswith(BEFORE) else None)
                subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
                shutil.rmtree(work / "out", ignore_errors=True)
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    out = work / "out"
                    shutil.rmtree(out, ignore_errors=True)
                    cmd = _command(name, work, out, urls, args.concurrency)
                    env = _env(args.before if name.startswith(BEFORE) else None)
                    served0 = nginx_cpu(pid)
                    m = measure(name, cmd, work / "log", timeout=600, server_pid=pid, env=env)
                    served = nginx_cpu(pid) - served0
                    files, _ = count_files(out)
                    if m.exit_code != 0:
                        tail = (work / "log").read_text()[-2000:]
                        raise SystemExit(f"{name}: exit {m.exit_code}: {tail}")
                    walls.setdefault(name, []).append(m.wall)
                    cpus.setdefault(name, []).append(m.tree_cpu)
                    tree_rss.setdefault(name, []).append(m.peak_tree_rss_mb)
                    server.setdefault(name, []).append(served)
                    print(f"round {r}: {name:<24} {m.wall:6.2f} s {args.n / m.wall:7.0f} files/s "
                          f"({files} files, {m.tree_cpu:5.1f} s CPU, nginx {served:4.1f} s, "
                          f"{m.peak_tree_rss_mb:4.0f} MB RSS of the tree)", flush=True)  # fmt: skip
    med = {k: statistics.median(v) for k, v in walls.items()}
    rate = {k: args.n / v for k, v in med.items()}
    base = rate["one process"]
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "files_per_s": rate,
        "ratio_to_one_process": {k: v / base for k, v in rate.items()},
        "best_files_per_s": {k: args.n / min(v) for k, v in walls.items()},
        "median_cpu_s": {k: statistics.median(v) for k, v in cpus.items()},
        "median_tree_rss_mb": {k: statistics.median(v) for k, v in tree_rss.items()},
        "median_nginx_cpu_s": {k: statistics.median(v) for k, v in server.items()},
        # The most a run could do with every core busy: its CPU and nginx's over the cores
        # the machine has, as a ratio to one process's median wall.
        "cpu_ceiling_ratio": {
            k: med["one process"]
            / ((statistics.median(cpus[k]) + statistics.median(server[k])) / (os.cpu_count() or 1))
            for k in walls
        },
        "walls": walls,
    }
    if args.before is not None:
        result["ratio_before_one_process"] = {
            k: v / rate[BEFORE + "one process"] for k, v in rate.items() if k.startswith(BEFORE)
        }
        result["after_over_before"] = {n: rate[n] / rate[BEFORE + n] for n in CONFIGS if n in rate}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
