"""What the libcurl transport's socket opener costs a new connection, beside a bare socket.

Since the EMFILE fix (issue 11, third pass) libcurl opens every socket through
``CurlTransport._opener`` (so a refused ``socket()`` is said as ``too_many_open_files``),
not only under an address policy. A connection kept alive pays nothing; a new one pays
the opener's Python on top of the ``socket()`` libcurl made itself. Timed here: a bare
``socket()`` + close, and the opener (the socket, the room for pycurl's ``dup`` checked,
the close on the next turn of the loop), best of ``--rounds``, µs per call.

    python benchmarks/bench_curl_opener.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

BATCH = 200  # sockets opened between two turns of the loop (their closes run there)


async def _best(call: Callable[[], Any], batches: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(batches):
            for _ in range(BATCH):
                call()
            await asyncio.sleep(0)
        best = min(best, (time.perf_counter() - t0) / (batches * BATCH))
    return best * 1e6


async def main(rounds: int, batches: int) -> dict[str, float]:
    from aiograb import Limits
    from aiograb._http.curl_transport import CurlTransport

    transport = CurlTransport(Limits())
    transport._open()
    handle = SimpleNamespace(aiograb_blocked=None, aiograb_unopened=None)
    opener = transport._opener(handle, None)
    address = SimpleNamespace(
        family=socket.AF_INET, socktype=socket.SOCK_STREAM, protocol=0, addr=("127.0.0.1", 1)
    )
    try:
        bare = await _best(
            lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(), batches, rounds
        )
        ours = await _best(lambda: opener(0, address), batches, rounds)
    finally:
        await transport.aclose()
    return {"bare_socket_us": bare, "opener_us": ours, "extra_us": ours - bare}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=50)
    args = p.parse_args()
    print(json.dumps(asyncio.run(main(args.rounds, args.batches)), indent=1))
