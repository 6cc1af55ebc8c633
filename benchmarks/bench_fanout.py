"""The service fan-out (issue #12): one endpoint request = W backend calls, side by side.

The backend runs in its own process (``aiograb.bench._fanout_backend``): a bare asyncio
HTTP/1.1 server whose latency per call is reproducible — log-normal around a 20 ms
median, a 0.1 % tail of 400 ms, and a repeated request for the same key "lands on
another replica" and takes the median. Each client runs in a fresh child process per
W (``aiograb.bench._fanout_child``); within a W the clients take turns going first.

Clients: ``aiograb`` (``open_client().gather``, the default transport: libcurl),
``aiograb-hedged`` (``Hedge(after="p95")``, default 5 % budget), ``aiohttp`` (bare
``asyncio.gather`` over one ``ClientSession``), ``pycurl`` (bare pycurl multi on the loop:
the floor under aiograb's transport), ``httpx`` (``AsyncClient`` + ``asyncio.gather``),
``threads`` (a ``ThreadPoolExecutor`` with one ``requests.Session`` per thread); on request
``aiograb-aiohttp`` and ``aiograb-aiohttp-hedged`` (the aiohttp transport). All capped at
min(W, --max-cap) connections. Reported per client and W: endpoint p50/p99, overhead
over the slowest call, CPU µs per call, extra requests, peak OS threads, peak RSS.

    python benchmarks/bench_fanout.py                         # W=100/1000/5000, 40/20/5 rounds
    python benchmarks/bench_fanout.py --widths 100,1000 --rounds 20,10 --json fanout.json

Needs the bench extra for httpx and requests: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiograb.bench._fanout import FanoutSpec, fanout_table, run_fanout
from aiograb.bench._fanout_clients import CLIENTS, DEFAULT_CLIENTS


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=_ints, default=(100, 1000, 5000))
    parser.add_argument("--rounds", type=_ints, default=(40, 20, 5))
    parser.add_argument(
        "--clients", default=",".join(DEFAULT_CLIENTS), help=f"of {', '.join(CLIENTS)}"
    )
    parser.add_argument("--max-cap", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args()
    spec = FanoutSpec(
        widths=args.widths,
        rounds=args.rounds,
        clients=tuple(c.strip() for c in args.clients.split(",") if c.strip()),
        max_cap=args.max_cap,
    )
    results = run_fanout(spec, log=lambda line: print(line, flush=True))
    print()
    print(fanout_table(results))
    print()
    for figure in results["acceptance"]:
        verdict = {True: "met", False: "NOT met", None: ""}[figure["met"]]
        print(f"{figure['name']}: {figure['measured']} (target {figure['expected']}) {verdict}")
    print(f"\n{results['duration_s']} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
