"""An aggregator service: each incoming request fans out to W backend calls.

Two implementations of the same endpoint, ``GET /aggregate?id=ID&w=W``:

- ``aiograb``: an ``aiohttp.web`` app; one ``aiograb.open_client`` for the process
  (opened in the app's cleanup context), ``client.gather(urls, deadline=...)`` per request;
- ``threads``: the classic design — a ``ThreadingHTTPServer`` (a thread per incoming
  request) and a shared ``ThreadPoolExecutor`` of ``requests`` sessions for the calls.

The load test starts the fan-out benchmark's backend (``aiograb.bench._fanout_backend``:
log-normal 20 ms median, a 0.1 % tail of 400 ms), then each service in turn in its own
process, drives M concurrent incoming requests at it, and reports endpoint p50/p99,
the service's CPU per backend call, its peak OS threads and peak RSS::

    python examples/aggregator.py loadtest --m 50 --w 200 --requests 4
    python examples/aggregator.py serve --impl aiograb --backend http://127.0.0.1:8080 --port 8000

``threads`` needs ``requests`` (pip install 'aiograb[bench]').
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

import aiograb

DEADLINE_S = 10.0  # per incoming request


def backend_urls(backend: str, request_id: str, width: int, impl: str) -> list[str]:
    return [f"{backend}/call?key={request_id}-{i}&ns={impl}" for i in range(width)]


# --- the aiograb service ----------------------------------------------------------------


def aiograb_app(backend: str, cap: int, hedge: bool) -> web.Application:
    client_key = web.AppKey("client", aiograb.Client)

    async def open_backend_client(app: web.Application) -> AsyncIterator[None]:
        limits = aiograb.Limits(concurrency=cap)
        hedging = aiograb.Hedge(after="p95") if hedge else None
        async with aiograb.open_client(limits=limits, hedge=hedging) as client:
            app[client_key] = client
            yield

    async def aggregate(request: web.Request) -> web.Response:
        width = int(request.query.get("w", "200"))
        urls = backend_urls(backend, request.query["id"], width, "aiograb")
        results = await request.app[client_key].gather(urls, deadline=DEADLINE_S)
        ok = sum(r.ok for r in results)
        return web.json_response({"ok": ok, "failed": width - ok})

    app = web.Application()
    app.cleanup_ctx.append(open_backend_client)
    app.router.add_get("/aggregate", aggregate)
    return app


# --- the same endpoint with threads and requests -----------------------------------------


def threads_server(backend: str, cap: int, port: int) -> ThreadingHTTPServer:
    import requests

    local = threading.local()
    pool = ThreadPoolExecutor(max_workers=cap)

    def call(url: str) -> bool:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            return bool(session.get(url, timeout=DEADLINE_S).status_code == 200)
        except requests.RequestException:
            return False

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            width = int(query.get("w", ["200"])[0])
            urls = backend_urls(backend, query["id"][0], width, "threads")
            ok = sum(pool.map(call, urls))
            body = json.dumps({"ok": ok, "failed": width - ok}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 1024
    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve(args: argparse.Namespace) -> None:
    if args.impl == "threads":
        server = threads_server(args.backend, args.cap, args.port)
        print(f"port {server.server_address[1]}", flush=True)
        server.serve_forever()
        return

    async def main() -> None:
        runner = web.AppRunner(aiograb_app(args.backend, args.cap, args.hedge), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
        await site.start()
        print(f"port {runner.addresses[0][1]}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    from aiograb._core.loop import run_loop

    run_loop(main())


# --- the load test ------------------------------------------------------------------------


def _start(cmd: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    words = proc.stdout.readline().split()
    if len(words) != 2:
        proc.kill()
        raise SystemExit(f"could not start: {' '.join(cmd)}")
    return proc, int(words[1])


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def _proc_stat(pid: int) -> tuple[float, int, float]:
    """CPU seconds, OS threads, peak RSS (MB) of a running process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    threads = len(os.listdir(f"/proc/{pid}/task"))
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) / 1024
    return cpu, threads, rss


async def _drive(port: int, impl: str, m: int, width: int, per_client: int) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    timeout = aiohttp.ClientTimeout(total=120)
    conn = aiohttp.TCPConnector(limit=m)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:

        async def incoming(j: int) -> None:
            for k in range(per_client):
                url = f"http://127.0.0.1:{port}/aggregate?id={impl}-{j}-{k}&w={width}"
                t0 = time.perf_counter()
                async with session.get(url) as resp:
                    body = await resp.json()
                latencies.append(time.perf_counter() - t0)
                if body["failed"]:
                    print(f"  {impl}: {body['failed']} of {width} backend calls failed")

        async with asyncio.TaskGroup() as tg:
            for j in range(m):
                tg.create_task(incoming(j))
    return latencies


def _measure(args: argparse.Namespace, backend: str, impl: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "serve", "--impl", impl, "--backend", backend]
    cmd += ["--cap", str(args.cap), "--port", "0"] + (["--hedge"] if args.hedge else [])
    proc, port = _start(cmd)
    try:
        asyncio.run(_drive(port, impl + "-warm", args.m, args.w, 1))  # connections, pools
        cpu0, _threads, _rss = _proc_stat(proc.pid)
        peak_threads = 0
        done = threading.Event()

        def poll() -> None:
            nonlocal peak_threads
            while not done.wait(0.05):
                peak_threads = max(peak_threads, _proc_stat(proc.pid)[1])

        poller = threading.Thread(target=poll)
        poller.start()
        t0 = time.perf_counter()
        lat = asyncio.run(_drive(port, impl, args.m, args.w, args.requests))
        wall = time.perf_counter() - t0
        done.set()
        poller.join()
        cpu1, _threads, rss = _proc_stat(proc.pid)
    finally:
        _stop(proc)
    calls = args.m * args.w * args.requests
    lat.sort()
    return {
        "impl": impl,
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 1),
        "cpu_us_per_call": round((cpu1 - cpu0) / calls * 1e6, 1),
        "peak_threads": peak_threads,
        "peak_rss_mb": round(rss, 1),
        "endpoint_requests": len(lat),
        "wall_s": round(wall, 1),
    }


def loadtest(args: argparse.Namespace) -> None:
    backend_cmd = [sys.executable, "-m", "aiograb.bench._fanout_backend", "--port", "0"]
    backend, port = _start(backend_cmd)
    rows = []
    try:
        for impl in args.impls.split(","):
            row = _measure(args, f"http://127.0.0.1:{port}", impl)
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        _stop(backend)
    print(f"\nM={args.m} concurrent incoming requests x {args.requests}, W={args.w} calls each")
    print("| service | p50 ms | p99 ms | CPU µs/backend call | OS threads | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['impl']} | {r['p50_ms']} | {r['p99_ms']} | {r['cpu_us_per_call']} | "
            f"{r['peak_threads']} | {r['peak_rss_mb']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run one implementation of the service")
    s.add_argument("--impl", choices=("aiograb", "threads"), default="aiograb")
    s.add_argument("--backend", required=True, help="base URL of the backend")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--cap", type=int, default=1000, help="backend calls in flight at most")
    s.add_argument("--hedge", action="store_true", help="aiograb: hedge at the p95 latency")
    t = sub.add_parser("loadtest", help="start the backend and both services; measure them")
    t.add_argument("--m", type=int, default=50, help="concurrent incoming requests")
    t.add_argument("--w", type=int, default=200, help="backend calls per incoming request")
    t.add_argument("--requests", type=int, default=4, help="requests per incoming client")
    t.add_argument("--cap", type=int, default=1000, help="backend calls in flight at most")
    t.add_argument("--hedge", action="store_true", help="aiograb: hedge at the p95 latency")
    t.add_argument("--impls", default="aiograb,threads")
    args = parser.parse_args()
    serve(args) if args.command == "serve" else loadtest(args)


if __name__ == "__main__":
    main()
