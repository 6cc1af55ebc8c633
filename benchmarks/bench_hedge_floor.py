"""What hedging can reach on this machine: bare pycurl with a fixed hedge delay, beside
aiograb's hedged client at the same delays, at one fan-out width (issue #12).

The fan-out benchmark's backend (its own process, 20 ms log-normal median, a 0.1 % tail
of 400 ms, a repeated key answered at the median) serves both. For each delay, each
client runs warm-up rounds and then ``--rounds`` endpoint requests of ``--width`` calls
in this process, clients alternating who goes first. Printed per client and delay:
endpoint p50/p99, CPU µs per call and the extra requests sent (%). aiograb's hedges stay
within its default budget (5 %); the bare floor has none.

    python benchmarks/bench_hedge_floor.py --width 1000 --rounds 8 --delays 0.06,0.12,p95
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiograb import Hedge, Limits, open_client
from aiograb._core.loop import run_loop
from aiograb.bench._fanout import _Backend, _env
from aiograb.bench._fanout_child import round_urls
from aiograb.bench._fanout_pycurl import BareCurl

Fan = Callable[[list[str]], Awaitable[int]]


@asynccontextmanager
async def _floor(cap: int, delay: float | str) -> AsyncIterator[tuple[Fan, Callable[[], int]]]:
    import asyncio

    assert isinstance(delay, float)
    curl = BareCurl(cap)

    async def fan(urls: list[str]) -> int:
        return sum(await asyncio.gather(*(curl.get(u, delay) for u in urls)))

    try:
        yield fan, lambda: curl.extra
    finally:
        curl.close()


@asynccontextmanager
async def _aiograb(cap: int, delay: float | str) -> AsyncIterator[tuple[Fan, Callable[[], int]]]:
    async with open_client(limits=Limits(concurrency=cap), hedge=Hedge(after=delay)) as client:

        async def fan(urls: list[str]) -> int:
            return sum(not r.ok for r in await client.gather(urls))

        yield fan, lambda: client.statistics().hedges


CLIENTS = {"pycurl-hedged": _floor, "aiograb-hedged": _aiograb}


async def _one(base: str, name: str, width: int, rounds: int, delay: float | str) -> dict[str, Any]:
    spec = {"base_url": base, "client": f"{name}-{delay}", "width": width}
    async with CLIENTS[name](min(width, 1000), delay) as (fan, extras):
        for k in range(2):
            await fan(round_urls(spec, f"warm{k}"))
        extra0, cpu0, latencies, errors = extras(), time.process_time(), [], 0
        for r in range(rounds):
            t0 = time.perf_counter()
            errors += await fan(round_urls(spec, r))
            latencies.append((time.perf_counter() - t0) * 1000)
        cpu = time.process_time() - cpu0
        extra = extras() - extra0
    latencies.sort()
    return {
        "client": name,
        "delay_ms": delay * 1000 if isinstance(delay, float) else delay,
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        "cpu_us_per_call": round(cpu / (width * rounds) * 1e6, 1),
        "extra_pct": round(extra / (width * rounds) * 100, 2),
        "errors": errors,
    }


def _delay(text: str) -> float | str:
    text = text.strip()
    return text if text.startswith("p") else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--delays", default="0.03,0.06,0.12")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # A percentile ("p95") is aiograb's adaptive delay: the floor has none, so only aiograb runs.
    delays = [_delay(d) for d in args.delays.split(",") if d.strip()]
    backend = _Backend(_env())
    rows: list[dict[str, Any]] = []

    async def run() -> None:
        for i, delay in enumerate(delays):
            names = list(CLIENTS) if i % 2 == 0 else list(reversed(CLIENTS))
            if isinstance(delay, str):
                names = ["aiograb-hedged"]
            for name in names:
                row = await _one(backend.base_url, name, args.width, args.rounds, delay)
                print(row, flush=True)
                rows.append(row)

    try:
        run_loop(run())
    finally:
        backend.close()
    print("\n| client | hedge after ms | p50 ms | p99 ms | CPU µs/call | extra % | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['client']} | {r['delay_ms']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['cpu_us_per_call']} | {r['extra_pct']} | {r['errors']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
