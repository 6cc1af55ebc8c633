"""One call of the client: checks, the retry budget, fair admission, hedging.

``Calls.run`` never raises for a per-request failure: it returns a ``Call``
with an error. Only cancellation (and bugs) propagate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from yarl import URL

from aiograb._client.admission import Admission, Lane
from aiograb._client.budget import ExtraBudget
from aiograb._client.hedging import race
from aiograb._client.latency import Latencies
from aiograb._core.config import Hedge
from aiograb._core.errors import InvalidRequest, InvalidURL, RequestError
from aiograb._core.models import Outcome, Request
from aiograb._core.urls import parse_url
from aiograb._fetch.fetcher import Fetcher
from aiograb._http.base import COMMON_METHODS, check_head
from aiograb._store.sinks import MemorySink

__all__ = ["Call", "Calls"]

_NO_HEADERS: dict[str, str] = {}


@dataclass(slots=True)
class Call:
    """What became of one request: its winning outcome, or an error before any."""

    outcome: Outcome | None
    error: RequestError | None
    attempts: int = 0
    hedged: bool = False  # a second copy was sent
    hedge_won: bool = False  # ... and answered first


def check_request(request: Request) -> RequestError | None:
    """Refuse, before admission, what no transport would send (``check_head``, the
    transports' own check, so the error is the same as theirs)."""
    if request.headers is None and request.method in COMMON_METHODS:
        return None  # the hot path of a fan-out
    return check_head(request.method, request.headers or _NO_HEADERS, request.url)


class Calls:
    """Runs single requests for the client over one fetcher and admission."""

    def __init__(
        self,
        fetcher: Fetcher,
        admission: Admission,
        budget: ExtraBudget,
        hedge: Hedge | None,
    ) -> None:
        self._fetcher = fetcher
        self._admission = admission
        self._budget = budget
        self._hedge = hedge
        self._sink = MemorySink()
        self._fixed = (
            hedge.after if hedge is not None and isinstance(hedge.after, float | int) else None
        )
        pct = hedge.percentile if hedge is not None else None
        self.latencies = Latencies(pct, hedge.min_samples) if hedge and pct else None
        self.hedges = 0  # hedges sent
        self.hedge_wins = 0

    @property
    def in_flight(self) -> int:
        return self._admission.in_use

    async def run(self, request: Request, lane: Lane) -> Call:
        try:
            url = parse_url(request.url)
        except InvalidURL as exc:
            return Call(None, exc)
        if (invalid := check_request(request)) is not None:
            return Call(None, invalid)
        host = url.host or ""
        self._budget.request(host)
        if self._hedge is not None and request.hedgeable:
            return await self._hedged(request, url, host, lane)
        await self._admission.acquire(lane)
        try:  # _holding, inlined: this is every plain call's path
            got: Outcome | RequestError = await self._fetcher.fetch(
                request, self._sink, "", url=url
            )
        except ValueError as exc:
            got = InvalidRequest(f"cannot send this request: {exc}", url=request.url)
        finally:
            self._admission.release()
        return _call(got)

    async def _holding(self, request: Request, url: URL) -> Outcome | RequestError:
        """Fetch under an admission slot already acquired; release it after."""
        try:
            return await self._fetcher.fetch(request, self._sink, "", url=url)
        except ValueError as exc:  # what the HTTP client refused to send
            return InvalidRequest(f"cannot send this request: {exc}", url=request.url)
        finally:
            self._admission.release()

    async def _backup(self, request: Request, url: URL, lane: Lane) -> Outcome | RequestError:
        await self._admission.acquire(lane, urgent=True)
        return await self._holding(request, url)

    def _delay(self, host: str) -> float:
        if self._fixed is not None:
            return float(self._fixed)
        assert self._hedge is not None
        assert self.latencies is not None
        threshold = self.latencies.threshold(host)
        return self._hedge.initial if threshold is None else threshold

    async def _hedged(self, request: Request, url: URL, host: str, lane: Lane) -> Call:
        loop = asyncio.get_running_loop()
        await self._admission.acquire(lane)
        t0 = loop.time()  # the hedge delay runs from the moment the request may start

        def may_hedge() -> bool:
            if not self._budget.try_spend(host):
                return False
            self.hedges += 1
            return True

        got, attempts, hedged, won = await race(
            lambda: self._holding(request, url),
            lambda: self._backup(request, url, lane),
            self._delay(host),
            may_hedge,
        )
        call = _call(got)
        if hedged:
            call.attempts, call.hedged, call.hedge_won = attempts, True, won
            self.hedge_wins += won
        if self.latencies is not None and call.error is None:
            self.latencies.observe(host, loop.time() - t0)
        return call


def _call(got: Outcome | RequestError) -> Call:
    if isinstance(got, RequestError):
        return Call(None, got, attempts=0)
    return Call(got, None if got.ok else got.error, attempts=got.attempts)
