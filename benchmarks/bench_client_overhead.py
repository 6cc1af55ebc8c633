"""The client's own CPU per call, without a network: ``open_client().gather`` (plain, and
hedged with a delay no call reaches) over ``aiograb.testing.MockTransport``, beside a bare
``asyncio.gather`` over the same transport, alternating in one process. The difference is
what aiograb's layers cost (checks, budget, admission, fetcher, Result); ``--before TREE``
runs the same in a child with another source tree first on the path, for a ratio.

    python benchmarks/bench_client_overhead.py --width 1000 --rounds 10 --repeats 7
    python benchmarks/bench_client_overhead.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BODY = b'{"ok": 123}'


def _answer(_request: object) -> object:
    from aiograb.testing import MockResponse

    return MockResponse(200, {"Content-Type": "application/json"}, BODY)


async def _measure(width: int, rounds: int, repeats: int) -> dict[str, float]:
    from yarl import URL

    from aiograb import Hedge, Limits, open_client
    from aiograb._core.config import Timeouts
    from aiograb.testing import MockTransport

    transport = MockTransport(_answer)
    urls = [f"http://127.0.0.1:1/call?key={i}" for i in range(width)]
    timeouts = Timeouts()

    async def bare(url: str) -> bytes:
        async with transport.send(
            "GET", URL(url), headers={}, body=None, timeouts=timeouts
        ) as resp:
            return await resp.read_all()

    best = {"floor": float("inf"), "plain": float("inf"), "hedged": float("inf")}
    limits = Limits(concurrency=width)
    async with (
        open_client(limits=limits, transport=transport) as plain,
        open_client(limits=limits, transport=transport, hedge=Hedge(after=10.0)) as hedged,
    ):
        runs = {
            "floor": lambda: asyncio.gather(*(bare(u) for u in urls)),
            "plain": lambda: plain.gather(urls),
            "hedged": lambda: hedged.gather(urls),
        }
        for name in runs:  # warm-up
            await runs[name]()
        for _ in range(repeats):
            for name, fan in runs.items():
                c0 = time.process_time()
                for _ in range(rounds):
                    await fan()
                best[name] = min(best[name], (time.process_time() - c0) / (rounds * width) * 1e6)
    return best


def _run_in(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str((tree / "src").resolve()))
    cmd = [sys.executable, __file__, "--width", str(args.width), "--rounds", str(args.rounds),
           "--repeats", str(args.repeats), "--json-out"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--before", type=Path, help="another source tree, measured too")
    parser.add_argument("--json-out", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.json_out:
        print(json.dumps(uvloop.run(_measure(args.width, args.rounds, args.repeats))))
        return
    trees = {"this": Path(__file__).resolve().parents[1]}
    if args.before is not None:
        trees["before"] = args.before
    for name, tree in trees.items():
        best = _run_in(tree, args)
        over = {k: best[k] - best["floor"] for k in ("plain", "hedged")}
        print(
            f"{name:6} floor {best['floor']:.1f} µs/call; over it: plain {over['plain']:.1f}, "
            f"hedged {over['hedged']:.1f} µs/call (best of {args.repeats})"
        )


if __name__ == "__main__":
    main()
