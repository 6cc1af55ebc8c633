"""``aiograb bench``: its flags, and the call into ``aiograb.bench``.

Kept outside the bench package so that building the CLI does not import it.

Exit codes: 0 every run clean, 1 some request or run failed, 2 usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aiograb._cli.options import HelpFormatter
from aiograb._core.stats import ExitCode

__all__ = ["add_parser", "cmd_bench"]


_BENCH_EXAMPLES = """\
examples:
  aiograb bench                      # the standard suite, ~1-2 minutes, writes bench-report/
  aiograb bench --quick              # ~15 s, for CI and a first look
  aiograb bench --latency-ms 0,50,200 --concurrency 1,10,100,1000,5000 --n 5000 --out report/
  aiograb bench --peers              # also run curl --parallel, aria2c, img2dataset on PATH
  aiograb bench --quick --fanout     # also the service fan-out: aiograb (plain, hedged),
                                     # aiohttp, pycurl, httpx, threads+requests, W=100/300

Open OUT/report.html (self-contained) or OUT/report.md; every raw number is in
OUT/results.json. Needs matplotlib: pip install 'aiograb[bench]'.
exit codes: 0 every run clean, 1 some request or run failed, 2 usage error.
"""


def _number_list(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> tuple[float, ...] | tuple[int, ...]:
        try:
            values = tuple(kind(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a comma-separated list of {kind.__name__}s: {text!r}"
            ) from None
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        return values

    return parse


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure the sync, threads and async engines and draw a report",
        description="Measure why one event loop beats a thread pool for IO (and why CPU work "
        "belongs in a process pool): the local server in its own process, every engine as "
        "a child process, a report with plots.",
        epilog=_BENCH_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="the ~15 s suite (CI, a first look)")
    p.add_argument("--latency-ms", type=_number_list(float), help="server latencies, e.g. 0,50,200")
    p.add_argument(
        "--concurrency", type=_number_list(int), help="concurrencies, e.g. 1,10,100,1000"
    )
    p.add_argument("--n", type=int, help="requests per run before capping (default 5000)")
    p.add_argument(
        "--engines", type=lambda t: tuple(e.strip() for e in t.split(",") if e.strip()),
        help="engines to measure (default sync,threads,async)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, help="report folder (default bench-report)")
    p.add_argument(
        "--peers",
        action="store_true",
        help="also run curl --parallel, aria2c and img2dataset when found on PATH",
    )
    p.add_argument(
        "--fanout",
        action="store_true",
        help="also measure a service's fan-out (W backend calls per endpoint request) per "
        "client, with and without hedging: latency CDF, CPU per call, threads (~1-2 min)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        help="where the clients write their files (default /dev/shm, tmpfs, so the disk "
        "does not blur the network; give a folder on your disk to include it)",
    )
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from aiograb import bench

    bench.require_plotting()
    changes = {
        "out": args.out,
        "latencies_ms": args.latency_ms,
        "concurrencies": args.concurrency,
        "n": args.n,
        "engines": args.engines,
        "peers": args.peers or None,
        "workdir": args.workdir,
        "fanout": bench.quick_fanout() if args.fanout else None,
    }
    make = bench.quick_config if args.quick else bench.standard_config
    config = make(**{k: v for k, v in changes.items() if v is not None})
    results = bench.run_bench(config, log=lambda line: print(line, flush=True))
    command = " ".join(["aiograb", *args.argv])
    paths = bench.write_report(results, config.out, command=command)
    for figure in results["acceptance"]:
        if figure["met"] is not None:
            verdict = "met" if figure["met"] else "NOT met"
            print(
                f"{figure['name']}: {figure['measured']} (expected {figure['expected']}, {verdict})"
            )
    print(f"report: {paths['html']}  ({results['duration_s']:.0f} s, {results['errors']} errors)")
    return int(ExitCode.OK if results["errors"] == 0 else ExitCode.FAILED)
