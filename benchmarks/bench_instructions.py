"""Instructions per fan-out call, counted by valgrind's callgrind: an A/B that this
shared machine's swings in speed (1.5x within minutes) cannot blur.

``open_client`` (the default transport) runs W calls per round against the fan-out
benchmark's backend (in its own process, not counted), under ``valgrind
--tool=callgrind``, once with ``--short`` rounds and once with ``--long``; the
difference over the extra calls is what one call costs, start-up and warm-up excluded.
``PYTHONHASHSEED`` is fixed; two runs of the same tree agree to ~0.1 %. ``--before
TREE`` counts another source tree (``PYTHONPATH=TREE/src``) the same way, at the same
time, side by side (valgrind is slow: each count takes a minute or two, one core each).

    python benchmarks/bench_instructions.py --before /tmp/base
    python benchmarks/bench_instructions.py --hedge p95 --width 200

``--get`` counts ``aiograb get`` instead: ``--width`` distinct images per round from the
test server (``aiograb.testing.ServerProcess``, no added latency, its own process), the
files stored on tmpfs (``/dev/shm``), ``-c 500 --per-host 0``; the result is per file.

    python benchmarks/bench_instructions.py --get --width 1000 --short 1 --long 3 --before /tmp/base
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve()


async def _client(base_url: str, width: int, rounds: int, hedge: str) -> None:
    from aiograb import Hedge, Limits, open_client
    from aiograb.bench._fanout_child import round_urls

    spec = {"client": "instructions", "base_url": base_url, "width": width}
    chosen = None
    if hedge:
        chosen = Hedge(after=float(hedge) if hedge[0].isdigit() else hedge)
    async with open_client(limits=Limits(concurrency=width), hedge=chosen) as client:
        for r in ["warm0", "warm1", *range(rounds)]:
            await client.gather(round_urls(spec, r))


def _get(base_url: str, files: int) -> None:
    from aiograb._cli.main import main as cli
    from aiograb.testing import EXTENSIONS

    work = Path(tempfile.mkdtemp(prefix="aiograb-instructions-", dir="/dev/shm"))
    try:
        urls = work / "urls.txt"
        urls.write_text(
            "".join(
                f"{base_url}/img/{i}.{EXTENSIONS[i % len(EXTENSIONS)]}?size=thumb&latency_ms=0\n"
                for i in range(files)
            ),
            encoding="utf-8",
        )
        argv = ["get", str(urls), "-o", str(work / "out"), "-c", "500", "--per-host", "0", "-q"]
        if cli(argv) != 0:
            raise SystemExit("aiograb get failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def child(args: argparse.Namespace) -> None:
    """Under valgrind: the client alone (or ``aiograb get``)."""
    if args.get:
        _get(args.base_url, args.width * args.rounds)
        return
    from aiograb._core.loop import run_loop

    run_loop(_client(args.base_url, args.width, args.rounds, args.hedge))


def count(
    tree: Path | None, base_url: str, width: int, rounds: int, hedge: str, get: bool = False
) -> int:
    out = Path(tempfile.mkdtemp(prefix="aiograb-callgrind-")) / "cg.out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve() / "src")
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, str(HERE), "--child", "--base-url", base_url,
        "--width", str(width), "--rounds", str(rounds), "--hedge", hedge,
        *(["--get"] if get else []),
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    shutil.rmtree(out.parent, ignore_errors=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found.group(1))


def _backend(stack: contextlib.ExitStack, get: bool) -> str:
    """The server, in its own process until ``stack`` closes; returns its base URL."""
    if get:
        from aiograb.testing import ServerConfig, ServerProcess

        server = stack.enter_context(ServerProcess(ServerConfig(latency_ms=0)))
        return str(server.base_url)
    backend = subprocess.Popen(
        [sys.executable, "-m", "aiograb.bench._fanout_backend"], stdout=subprocess.PIPE, text=True
    )
    stack.callback(backend.terminate)
    assert backend.stdout is not None
    return f"http://127.0.0.1:{int(backend.stdout.readline().split()[1])}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=200)
    p.add_argument("--short", type=int, default=2, help="rounds of the first count")
    p.add_argument("--long", type=int, default=6, help="rounds of the second")
    p.add_argument("--hedge", default="", help="a Hedge(after=...): seconds or 'p95'")
    p.add_argument("--before", type=Path, help="also count this source tree")
    p.add_argument("--get", action="store_true", help="count aiograb get, per file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    with contextlib.ExitStack() as stack:
        base_url = _backend(stack, args.get)
        trees: dict[str, Path | None] = {"this tree": None}
        if args.before is not None:
            trees["before"] = args.before
        # The trees side by side, one count each at a time (one core each): how libcurl's
        # events batch depends a little on speed, so both see the same conditions.
        jobs = [(name, n) for n in (args.short, args.long) for name in trees]
        with ThreadPoolExecutor(len(trees)) as pool:
            counted = dict(
                zip(
                    jobs,
                    pool.map(
                        lambda job: count(
                            trees[job[0]], base_url, args.width, job[1], args.hedge, args.get
                        ),
                        jobs,
                    ),
                    strict=True,
                )
            )
    calls = (args.long - args.short) * args.width
    per_call = {
        name: (counted[(name, args.long)] - counted[(name, args.short)]) / calls for name in trees
    }
    setting = f"W = {args.width}, hedge {args.hedge or 'none'}"
    if args.get:
        setting = f"aiograb get, {args.short * args.width} and {args.long * args.width} files"
    what = "file" if args.get else "call"
    for name, n in per_call.items():
        print(f"{name}: {n:,.0f} instructions per {what} ({setting})")
    if "before" in per_call:
        print(f"this tree / before: {per_call['this tree'] / per_call['before']:.4f}")


if __name__ == "__main__":
    main()
