"""Issue 10 item 7: where off-loop parsing pays, and the loop's lag while crawling big pages.

``python benchmarks/bench_parse_off_loop.py`` prints three tables:

1. the threshold: for normal pages of growing size, the loop time of parsing inline
   vs the loop time of sending the body to a worker (pickling, the socket, decoding the
   answer) and the wall time of the round trip; then how long a ``<div>`` nest of
   each size holds the loop inline (what a body under the threshold can cost at worst);
2. a real crawl (a local aiohttp server, ``crawl_async``) of a 5 MB page (the seed;
   its links are recorded, not followed: ``max_depth=0``), with a probe task measuring
   how late the loop wakes a 10 ms sleeper until the run's end phase (graph and manifest
   exports, timed apart) begins: inline
   (``parse_off_loop_bytes`` larger than the page, as before) vs off the loop (default).
   Pages: a 5 MB normal page, a 50k-deep ``<div>`` nest (0.5 MB: inline it takes ~7 s;
   a deeper one takes minutes inline) and the 5 MB nest (off the loop only, cut by
   ``parse_timeout``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from aiograb import CrawlOptions, Limits, RequestPolicy, RetryPolicy, Timeouts
from aiograb._crawl import run as run_module
from aiograb._crawl.api import crawl_async
from aiograb._crawl.parsework import ParseOptions, ParsePool, parse
from aiograb._store.graph import write_graph

POLICY = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=120, connect=5))


DENSE = '<p>some text of a paragraph, {i}</p><a href="/p{i}">p</a><img src="/i{i}.png" alt="a">'
TEXT = "<p>" + "a sentence of plain text in a paragraph, " * 40 + '<a href="/p{i}">p</a></p>'


def normal_page(size: int, item: str = DENSE) -> bytes:
    parts, n, i = ["<html><body>"], 12, 0
    while n < size:
        piece = item.format(i=i)
        parts.append(piece)
        n += len(piece)
        i += 1
    return "".join(parts).encode()


def nested(depth: int) -> bytes:
    return ("<div>" * depth + "</div>" * depth).encode()


async def threshold(sizes: list[int], rounds: int) -> None:
    opts = ParseOptions()
    pool = ParsePool(opts, off_loop=0, timeout=60)
    try:
        await pool.parse("page", normal_page(1000), None)  # start the workers
        print("| page | inline parse (loop) | off-loop: loop CPU | off-loop: wall |")
        print("| --- | --- | --- | --- |")
        for size, (name, item) in itertools.product(sizes, (("links", DENSE), ("text", TEXT))):
            body = normal_page(size, item)
            inline, loop, wall = [], [], []
            for _ in range(rounds):
                t = time.perf_counter()
                parse("page", body, None, opts)
                inline.append(time.perf_counter() - t)
                t, cpu = time.perf_counter(), time.thread_time()
                await pool.parse("page", body, None)
                wall.append(time.perf_counter() - t)
                loop.append(time.thread_time() - cpu)  # CPU of this thread: the loop's cost
            ms = [f"{statistics.median(x) * 1e3:.2f} ms" for x in (inline, loop, wall)]
            print(f"| {size // 1024} KiB {name} | {' | '.join(ms)} |")
    finally:
        pool.close()


def hostile(sizes: list[int]) -> None:
    """How long a ``<div>`` nest of each size holds the loop when parsed inline."""
    print("\n| nest of `<div>` | depth | inline parse (loop) |")
    print("| --- | --- | --- |")
    for size in sizes:
        depth = size // 11
        t = time.perf_counter()
        parse("page", nested(depth), None, ParseOptions())
        print(f"| {size // 1024} KiB | {depth:,} | {(time.perf_counter() - t) * 1e3:.0f} ms |")


async def lag_crawl(page: bytes, off_loop: int, parse_timeout: float) -> tuple[float, float, str]:
    async def handle(request: web.Request) -> web.Response:
        if request.path == "/big":
            return web.Response(body=page, content_type="text/html")
        return web.Response(body=b"x", content_type="image/png")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    lags: list[float] = []
    done = asyncio.Event()
    end_phase: list[float] = []  # when run_crawl began writing the graph and manifest

    def timed_graph(*args: Any) -> None:
        end_phase.append(time.perf_counter())
        write_graph(*args)

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            if not end_phase:  # a wake-up after the end phase began is not counted
                lags.append(time.perf_counter() - t - 0.01)

    options = CrawlOptions(
        max_depth=0, pages_only=True, parse_off_loop_bytes=off_loop, parse_timeout=parse_timeout
    )
    try:
        run_module.write_graph = timed_graph  # type: ignore[assignment]
        with tempfile.TemporaryDirectory() as out:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(probe())
                t = time.perf_counter()
                try:
                    await crawl_async(
                        [base + "/big"], Path(out), options=options, limits=Limits(), policy=POLICY
                    )
                finally:
                    done.set()
                took = time.perf_counter() - t
                ending = time.perf_counter() - end_phase[0]
            rows = (Path(out) / "manifest.jsonl").read_text()
    finally:
        run_module.write_graph = write_graph
        await runner.cleanup()
    state = "parse_timeout" if "parse_timeout" in rows else "ok"
    return max(lags), took - ending, f"{state}; end phase {ending:.2f} s"


async def lags(parse_timeout: float) -> None:
    big, default = 10**9, CrawlOptions().parse_off_loop_bytes
    cases = [
        ("5 MB normal page", normal_page(5 * 1024 * 1024), True),
        ("50k-deep <div> nest (0.5 MB)", nested(50_000), True),
        ("450k-deep <div> nest (5 MB)", nested(450_000), False),
    ]
    print(
        "\n| page | inline: max lag / crawl time | off the loop: max lag / crawl time | lag ratio |"
    )
    print("| --- | --- | --- | --- |")
    for name, page, with_inline in cases:
        before = "not run (minutes)"
        off_lag, off_took, state = await lag_crawl(page, default, parse_timeout)
        ratio = ""
        if with_inline:
            in_lag, in_took, in_state = await lag_crawl(page, big, parse_timeout)
            before = f"{in_lag * 1e3:.0f} ms / {in_took:.2f} s ({in_state})"
            ratio = f"**{in_lag / max(off_lag, 1e-4):.0f}x**"
        after = f"{off_lag * 1e3:.1f} ms / {off_took:.2f} s ({state})"
        print(f"| {name} | {before} | {after} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parse-timeout", type=float, default=10.0)
    args = parser.parse_args()
    sizes = [4 * 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024]
    asyncio.run(threshold(sizes, args.rounds))
    hostile([16 * 1024, 32 * 1024, 64 * 1024, 128 * 1024, 256 * 1024])
    asyncio.run(lags(args.parse_timeout))


if __name__ == "__main__":
    main()
