"""What ``Outcome.timing`` costs per URL: always set (as shipped) vs only when asked.

``Attempts`` (the retry loop shared by both fetchers) makes a ``Timing`` for
every URL and stamps it with ``perf_counter()`` three times. The alternative is
a flag threaded from the bench to every fetcher, saving those steps when no
timeline is wanted. This measures, in one run and alternating, the real
``Attempts`` lifecycle of one successful URL (begin, first byte, succeeded,
finish) against the same lifecycle with the timing steps left out, and reports
the difference in ns per URL (compare: about 350 us of CPU per file in
``bench_get.py``).

    python benchmarks/bench_outcome_timing.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit

from yarl import URL

from aiograb._core.config import RequestPolicy
from aiograb._core.models import Outcome, Request
from aiograb._fetch.fetcher import Attempts, FetchRules

RULES = FetchRules(RequestPolicy())
REQUEST = Request("http://127.0.0.1/img/1.png")
URL_ = URL(REQUEST.url)


class Untimed:
    """``Attempts`` as it would be without its ``Timing`` (the same steps otherwise)."""

    __slots__ = ("_done", "_rules", "_t0", "method", "outcome", "url")

    def __init__(self, rules: FetchRules, request: Request, url: URL, now: float) -> None:
        self._rules, self._t0, self._done = rules, now, False
        self.method = request.method.upper()
        self.outcome = Outcome(url=request.url, started=time.time())
        self.url = url

    def begin(self) -> bool:
        if self._done:
            return False
        self.outcome.attempts += 1
        return True

    def succeeded(self) -> None:
        self.outcome.ok, self.outcome.error, self._done = True, None, True

    def finish(self, now: float) -> Outcome:
        self.outcome.elapsed = now - self._t0
        return self.outcome


def with_timing() -> None:
    run = Attempts(RULES, REQUEST, URL_, 0.0)
    run.begin()
    run.timing.first_byte = time.perf_counter()
    run.succeeded()
    run.finish(1.0)


def without_timing() -> None:
    run = Untimed(RULES, REQUEST, URL_, 0.0)
    run.begin()
    run.succeeded()
    run.finish(1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--number", type=int, default=200_000)
    args = p.parse_args()
    ns: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.rounds):
        for name, fn in (("with", with_timing), ("without", without_timing)):
            ns[name].append(
                min(timeit.repeat(fn, number=args.number, repeat=3)) / args.number * 1e9
            )
    w, wo = statistics.median(ns["with"]), statistics.median(ns["without"])
    print(f"Attempts lifecycle, with Timing: {w:.0f} ns/URL; without: {wo:.0f} ns/URL")
    print(f"difference: {w - wo:.0f} ns/URL; ratio {w / wo:.2f}")


if __name__ == "__main__":
    main()
