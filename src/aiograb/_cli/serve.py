"""``aiograb serve`` (the local test server) and ``aiograb demo`` (a download from it)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from aiograb._cli.options import HelpFormatter, add_output_options
from aiograb._core.errors import UsageError
from aiograb._core.stats import ExitCode

__all__ = ["add_demo_parser", "add_serve_parser", "cmd_demo", "cmd_serve"]


def add_serve_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the local test image server (tests, demo, bench)",
        description="Serve deterministic images and fault routes on loopback. "
        "See the README for its routes.",
        epilog="example:\n  aiograb serve --port 8080 --latency-ms 100",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    p.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default %(default)s)"
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay before every response, in ms (default 0)",
    )
    p.add_argument(
        "--bandwidth-kbps",
        type=float,
        default=0.0,
        help="pace every body at this many KB/s; 0 = unlimited (default)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images (default 0)")
    p.set_defaults(func=cmd_serve)


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="start the local server and download thousands of images",
        description="Start the local image server in a subprocess with ~100 ms "
        "latency and download its images at high concurrency. "
        "Needs no network.",
        epilog="example:\n  aiograb demo -n 5000 -c 1000",
        formatter_class=HelpFormatter,
    )
    p.add_argument("-n", type=int, default=3000, help="images to download (default %(default)s)")
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=500,
        help="requests in flight (default %(default)s)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="server latency per response (default %(default)s)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("aiograb-demo"),
        help="output folder, emptied first if it holds an earlier demo (default %(default)s)",
    )
    add_output_options(p)
    p.set_defaults(func=cmd_demo)


def cmd_serve(args: argparse.Namespace) -> int:
    from aiograb.testing import ServerConfig, serve

    serve(
        args.host,
        args.port,
        ServerConfig(
            latency_ms=args.latency_ms, bandwidth_kbps=args.bandwidth_kbps, seed=args.seed
        ),
    )
    return int(ExitCode.OK)


def cmd_demo(args: argparse.Namespace) -> int:
    from aiograb._cli.get import run_download
    from aiograb._core.config import Limits, RequestPolicy
    from aiograb._store.journal import JOURNAL_NAME
    from aiograb.testing import ServerConfig, ServerProcess

    out: Path = args.out
    if out.exists():
        if not (out / JOURNAL_NAME).exists():
            raise UsageError(f"{out} exists and is not an earlier demo's output; pick another -o")
        shutil.rmtree(out)
    exts = ("jpg", "png", "webp", "gif")
    limits = Limits(concurrency=args.concurrency, per_host=0)
    with ServerProcess(ServerConfig(latency_ms=args.latency_ms), warm=True) as server:
        print(
            f"local image server: {server.base_url} ({args.latency_ms:g} ms latency per "
            f"response); downloading {args.n} images, {args.concurrency} in flight, "
            "on one event-loop thread",
            flush=True,
        )
        urls = (f"{server.base_url}/img/{i}.{exts[i % 4]}" for i in range(args.n))
        code = run_download(args, urls, limits, RequestPolicy(), expected=args.n)
    print(f"files: {out}/  manifest: {out / 'manifest.jsonl'}")
    return code
