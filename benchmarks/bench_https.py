"""HTTPS bulk download from nginx on loopback: ``aiograb get`` vs ``curl --parallel`` vs
the bare aiohttp + uvloop script, with keep-alive and with a new connection per request.

nginx (Debian's) serves N small images written with ``aiograb.testing.image_bytes``
into a temporary folder, over TLS with a throwaway CA (trustme) and a certificate
for 127.0.0.1. It runs as one process (``master_process off``), so its CPU is
measured too. Session resumption is off on the server (no tickets, no cache), so
"new connection" means a full TLS handshake per file for every client. Each client
is a child process measured like ``bench_get.py`` does (wall, user+sys CPU from
``wait4``, peak threads); the order of the clients rotates between rounds.

    python benchmarks/bench_https.py --n 10000 --concurrency 64 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trustme

from aiograb.testing import EXTENSIONS, image_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_get import (
    BARE,
    Measurement,
    _check_exit,
    aiograb_cmd,
    count_files,
    machine,
    measure,
)

MODES = ("keepalive", "new-connection")
CLIENTS = ("aiograb", "bare", "curl")


def write_site(root: Path, n: int) -> list[str]:
    root.mkdir(parents=True)
    names = []
    for i in range(n):
        name = f"{i}.{EXTENSIONS[i % len(EXTENSIONS)]}"
        (root / name).write_bytes(image_bytes(i, EXTENSIONS[i % len(EXTENSIONS)]))
        names.append(name)
    return names


def write_tls(folder: Path) -> tuple[Path, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(paths[0]))
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(str(paths[1]), append=i > 0)
    cert.private_key_pem.write_to_path(str(paths[2]))
    return paths


def start_nginx(folder: Path, root: Path, cert: Path, key: Path, keepalive: bool) -> Any:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    folder.mkdir(parents=True)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = " ".join(
        f"{k}_temp_path {folder}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "nginx.conf").write_text(
        f"""daemon off;
master_process off;
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    {temp}
    types {{ image/jpeg jpg; image/png png; image/webp webp; image/gif gif; }}
    access_log off;
    keepalive_timeout {"65" if keepalive else "0"};
    keepalive_requests 1000000;
    ssl_session_tickets off;
    ssl_session_cache off;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [nginx, "-c", str(folder / "nginx.conf"), "-p", str(folder), "-e", str(folder / "e.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("nginx did not start: " + (folder / "e.log").read_text()) from None
            time.sleep(0.05)


def run_client(
    name: str, urls: Path, names: list[str], base: str, ca: Path, work: Path, c: int, pid: int
) -> Measurement:
    out, log = work / f"{name}-out", work / f"{name}.log"
    if name == "aiograb":
        summary = work / "aiograb-summary.json"
        cmd = aiograb_cmd(urls, out, summary, c, ["--ca-bundle", str(ca), "--proxy", ""])
    elif name == "bare":
        cmd = [sys.executable, str(BARE), str(urls), str(out), "--concurrency", str(c)]
    else:
        out.mkdir()
        config = work / "curl.cfg"
        config.write_text("".join(f'url = "{base}/{n}"\noutput = "{out}/{n}"\n' for n in names))
        curl = shutil.which("curl") or "curl"
        cmd = [curl, "--parallel", "--parallel-max", str(min(c, 300)), "--http1.1"]
        cmd += ["--cacert", str(ca), "-s", "-S", "-K", str(config)]
    m = measure(name, cmd, log, timeout=600, server_pid=pid)
    _check_exit(m, log)
    m.files, m.bytes = count_files(out)
    return m


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        raise SystemExit("needs Debian's nginx (apt-get install nginx-light)")
    # The bare script trusts what OpenSSL's default paths say: point them at the CA.
    results: dict[str, Any] = {"machine": machine(), "args": vars(args) | {"json": None}}
    with tempfile.TemporaryDirectory(prefix="bench-https-") as tmp:
        work = Path(tmp)
        names = write_site(work / "www", args.n)
        ca, cert, key = write_tls(work)
        os.environ["SSL_CERT_FILE"] = str(ca)
        for mode in args.modes.split(","):
            nginx, port = start_nginx(
                work / f"nginx-{mode}", work / "www", cert, key, mode == MODES[0]
            )
            base = f"https://127.0.0.1:{port}"
            urls = work / f"urls-{mode}.txt"
            urls.write_text("".join(f"{base}/{n}\n" for n in names))
            try:
                for r in range(args.rounds):
                    order = CLIENTS[r % 3 :] + CLIENTS[: r % 3]
                    round_dir = work / f"{mode}-{r + 1}"
                    round_dir.mkdir()
                    row: dict[str, Any] = {"loadavg": os.getloadavg()}
                    for name in order:
                        os.sync()
                        m = run_client(
                            name, urls, names, base, ca, round_dir, args.concurrency, nginx.pid
                        )
                        row[name] = m.row() | {"server_cpu_ms_per_file": _per(m.server_cpu, m)}
                        print(
                            f"{mode:15} {name:8} {m.files:6} files {m.wall:6.2f} s "
                            f"{m.files_per_s:8.0f}/s  client {m.cpu_ms_per_file:.3f} ms CPU/file  "
                            f"nginx {_per(m.server_cpu, m):.3f} ms/file  threads {m.peak_threads}",
                            flush=True,
                        )
                    for peer in ("bare", "curl"):
                        a, b = row["aiograb"], row[peer]
                        row[f"vs_{peer}"] = {
                            "files_per_s": _ratio(a["files_per_s"], b["files_per_s"]),
                            "cpu_per_file": _ratio(a["cpu_ms_per_file"], b["cpu_ms_per_file"]),
                        }
                    print(
                        f"{mode:15} ratios aiograb/bare {row['vs_bare']}, "
                        f"aiograb/curl {row['vs_curl']}",
                        flush=True,
                    )
                    results.setdefault(mode, []).append(row)
            finally:
                nginx.terminate()
                nginx.wait(timeout=10)
            if args.json:  # before the clean-up of ~70,000 files
                args.json.write_text(json.dumps(results, indent=2) + "\n")


def _per(cpu_seconds: float, m: Measurement) -> float:
    return 1000 * cpu_seconds / m.files if m.files else float("nan")


if __name__ == "__main__":
    main()
