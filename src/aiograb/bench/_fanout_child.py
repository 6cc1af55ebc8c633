"""One fan-out benchmark client in its own process: ``python -m aiograb.bench._fanout_child
SPEC RESULT``. SPEC is JSON (client, base_url, width, rounds, warmup, cap); RESULT gets
each endpoint request's latency and the CPU seconds of the measured rounds."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiograb.bench._fanout_clients import ASYNC_CLIENTS, SYNC_CLIENTS
from aiograb.bench._fanout_model import round_keys

__all__ = ["main", "round_urls"]


def round_urls(spec: dict[str, Any], r: int | str) -> list[str]:
    base, ns = spec["base_url"], spec["client"]
    return [f"{base}/call?key={k}&ns={ns}" for k in round_keys(spec["width"], r)]


class _Rounds:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.latencies: list[float] = []
        self.errors = 0
        self.cpu_s = 0.0
        self.peak_threads = 0

    def plan(self) -> list[tuple[int | str, list[str], bool]]:
        warm: list[tuple[int | str, list[str], bool]] = [
            (f"warm{k}", round_urls(self.spec, f"warm{k}"), False)
            for k in range(self.spec["warmup"])
        ]
        return warm + [(r, round_urls(self.spec, r), True) for r in range(self.spec["rounds"])]

    def record(self, t0: float, c0: float, errors: int, measured: bool) -> None:
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        self.peak_threads = max(self.peak_threads, threading.active_count())
        if measured:
            self.latencies.append(elapsed)
            self.cpu_s += cpu
            self.errors += errors

    def result(self) -> dict[str, Any]:
        return {
            "latencies_s": self.latencies,
            "errors": self.errors,
            "cpu_s": self.cpu_s,
            "python_threads": self.peak_threads,
        }


async def _run_async(rounds: _Rounds, make: Callable[[int], Any]) -> None:
    async with make(rounds.spec["cap"]) as fan:
        call: Callable[[list[str]], Awaitable[int]] = fan
        for _r, urls, measured in rounds.plan():
            t0, c0 = time.perf_counter(), time.process_time()
            rounds.record(t0, c0, await call(urls), measured)


def _run_sync(rounds: _Rounds, make: Callable[[int], Any]) -> None:
    with make(rounds.spec["cap"]) as fan:
        for _r, urls, measured in rounds.plan():
            t0, c0 = time.perf_counter(), time.process_time()
            rounds.record(t0, c0, fan(urls), measured)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    rounds = _Rounds(spec)
    name = spec["client"]
    if name in SYNC_CLIENTS:
        _run_sync(rounds, SYNC_CLIENTS[name])
    else:
        from aiograb._core.loop import run_loop

        run_loop(_run_async(rounds, ASYNC_CLIENTS[name]))
    Path(argv[1]).write_text(json.dumps(rounds.result()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
