"""The async client: bounded, retried, deadline-aware, tail-tolerant HTTP fan-out in memory.

For a service that must call hundreds or thousands of backends per request::

    async with aiograb.open_client(hedge=aiograb.Hedge(after="p95")) as client:
        results = await client.gather([aiograb.Request(u) for u in urls], deadline=1.0)
        for result in results:
            if result.ok:
                use(result.response.json())

It shares the engine's pieces (transport, retries, redirects, limits) with
``aiograb get``; only the sink differs (memory, not files). Unlike ``get``, it
has no per-host limit by default (a service calls its own backends), and
concurrent fan-outs share its slots fairly (see ``admission``).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sized
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from aiograb._client.admission import UNKNOWN, Admission, Lane
from aiograb._client.budget import ExtraBudget
from aiograb._client.calls import Call, Calls
from aiograb._core.clock import Clock, LoopClock
from aiograb._core.config import Budget, Hedge, Limits, Network, RequestPolicy
from aiograb._core.errors import DeadlineExceeded, RequestError, UsageError
from aiograb._core.models import Outcome, Request
from aiograb._fetch.fetcher import Fetcher
from aiograb._fetch.politeness import Politeness
from aiograb._http.base import Transport
from aiograb._http.default import make_transport

__all__ = ["SERVICE_LIMITS", "Client", "ClientStatistics", "Response", "Result", "open_client"]

# Any content type, and X-Robots-Tag ignored: an API's answer is not a page to index.
CLIENT_POLICY = RequestPolicy(accept="any", disallowed_header_directives=())
# A service calls its own backends, often one load-balanced name: only the total bounds it.
SERVICE_LIMITS = Limits(per_host=0)


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response held in memory."""

    status: int
    url: str
    headers: Mapping[str, str]
    content: bytes
    content_type: str | None
    attempts: int  # over every copy sent (retries and a hedge)
    elapsed: float
    hedge_won: bool = False  # the hedged copy answered first

    def text(self, encoding: str = "utf-8") -> str:
        return self.content.decode(encoding, errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass(frozen=True, slots=True)
class Result:
    """One request's result: a response or an error, never both."""

    request: Request
    response: Response | None
    error: RequestError | None
    attempts: int = 0  # requests sent for it (0 when refused before sending)
    hedged: bool = False  # a second copy was sent
    hedge_won: bool = False  # ... and answered first

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """Counters over the client's life (``Client.statistics()``)."""

    retries: int
    hedges: int
    hedge_wins: int
    budget_refused: int  # retries and hedges the budget did not allow
    in_flight: int


def _response(outcome: Outcome, call: Call) -> Response:
    stored = outcome.stored
    return Response(
        status=outcome.status or 0,
        url=outcome.final_url or outcome.url,
        headers=outcome.headers,
        content=(stored.body or b"") if stored else b"",
        content_type=outcome.content_type,
        attempts=call.attempts,
        elapsed=outcome.elapsed,
        hedge_won=call.hedge_won,
    )


def _result(req: Request, call: Call) -> Result:
    response = None
    if call.error is None and call.outcome is not None:
        response = _response(call.outcome, call)
    return Result(req, response, call.error, call.attempts, call.hedged, call.hedge_won)


def _as_request(item: Request | str) -> Request:
    return Request(item) if isinstance(item, str) else item


class Client:
    """Use through ``open_client``. Safe to share among many tasks of one loop."""

    def __init__(self, calls: Calls, fetcher: Fetcher, limits: Limits, budget: ExtraBudget) -> None:
        self._calls = calls
        self._fetcher = fetcher
        self._limits = limits
        self._budget = budget
        # Running fan-outs of fetch_all: the runner task and the queue its consumer reads.
        self._runners: dict[asyncio.Task[None], asyncio.Queue[Result | None]] = {}
        self._closed = False

    async def fetch(self, request: Request | str) -> Response:
        """Fetch one request with the client's retries (and hedge); raise ``RequestError``.

        >>> resp = await client.fetch("https://api.example.org/health")
        """
        result = await self._one(_as_request(request), Lane(1))
        if result.error is not None:
            raise result.error
        assert result.response is not None
        return result.response

    async def _one(self, req: Request, lane: Lane) -> Result:
        if self._closed:
            raise UsageError("the client is closed (used after open_client's block ended)")
        return _result(req, await self._calls.run(req, lane))

    async def _until(self, req: Request, lane: Lane, ends_at: float | None) -> Result:
        if ends_at is None:
            if self._closed:
                raise UsageError("the client is closed (used after open_client's block ended)")
            return _result(req, await self._calls.run(req, lane))
        remaining = ends_at - asyncio.get_running_loop().time()
        if remaining <= 0:
            return Result(req, None, _late(req))
        try:
            async with asyncio.timeout(remaining):
                return await self._one(req, lane)
        except TimeoutError:
            return Result(req, None, _late(req))

    def _ends_at(self, deadline: float | None) -> float | None:
        if deadline is None:
            return None
        if deadline < 0:
            raise UsageError("deadline must be >= 0 seconds")
        return asyncio.get_running_loop().time() + deadline

    async def gather(
        self,
        requests: Iterable[Request | str],
        *,
        deadline: float | None = None,
        fail_fast: bool = False,
        concurrency: int | None = None,
    ) -> list[Result]:
        """Fetch all ``requests``; their results in the same order.

        With ``deadline`` (seconds), requests not finished when it passes get a
        ``DeadlineExceeded`` error. With ``fail_fast``, the first failure cancels
        the requests still running or waiting and is raised (like Go's errgroup);
        the returned list then has no errors.

        >>> results = await client.gather([f"{api}/users/{i}" for i in ids], deadline=0.5)
        """
        todo = [_as_request(r) for r in requests]
        results: list[Result | None] = [None] * len(todo)
        lane, ends_at = Lane(len(todo)), self._ends_at(deadline)
        items = iter(enumerate(todo))

        async def work() -> None:
            for i, req in items:  # the workers share one iterator: no task per request
                result = results[i] = await self._until(req, lane, ends_at)
                if fail_fast and result.error is not None:
                    raise _Failed(result.error)

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(len(todo), concurrency or self._limits.concurrency)):
                    tg.create_task(work())
        except* _Failed as group:
            first = group.exceptions[0]
            assert isinstance(first, _Failed)
            raise first.error from None
        return [r for r in results if r is not None]

    async def fetch_all(
        self,
        requests: Iterable[Request | str] | AsyncIterable[Request | str],
        *,
        deadline: float | None = None,
        concurrency: int | None = None,
    ) -> AsyncIterator[Result]:
        """Fetch many requests, at most ``concurrency`` at once; yield results as they finish.

        ``requests`` is read lazily. With ``deadline`` (seconds), requests still
        running or not started when it passes are yielded with a
        ``DeadlineExceeded`` error, so every request gets exactly one result.
        """
        n = concurrency or self._limits.concurrency
        todo: asyncio.Queue[Request | None] = asyncio.Queue(maxsize=n)
        results: asyncio.Queue[Result | None] = asyncio.Queue(maxsize=n)
        size = len(requests) if isinstance(requests, Sized) else UNKNOWN
        lane, ends_at = Lane(size), self._ends_at(deadline)

        async def produce() -> None:
            if isinstance(requests, AsyncIterable):
                async for item in requests:
                    await todo.put(_as_request(item))
            else:
                for item in requests:
                    await todo.put(_as_request(item))
            for _ in range(n):  # one end-of-input marker per worker
                await todo.put(None)

        async def work() -> None:
            while (req := await todo.get()) is not None:
                await results.put(await self._until(req, lane, ends_at))

        async def run() -> None:
            failure: BaseException | None = None
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(produce())
                    for _ in range(n):
                        tg.create_task(work())
            except ExceptionGroup as group:  # the caller's iterable raised: hand it over as is
                failure = group.exceptions[0]
            await results.put(None)
            if failure is not None:
                raise failure

        # Not a TaskGroup around the yield: a consumer that stops early closes this
        # generator, and the runner is then cancelled and awaited here, never orphaned.
        # One that just stops iterating has its runner cancelled when the client closes.
        runner = asyncio.create_task(run())
        self._runners[runner] = results
        try:
            while (result := await results.get()) is not None:
                yield result
            if runner.cancelled() and self._closed:  # its client closed under a consumer
                raise UsageError("the client was closed while fetch_all was being read")
            await runner
        finally:
            self._runners.pop(runner, None)
            await _cancel(runner)

    async def aclose(self) -> None:
        """Cancel the fan-outs still running (their consumers stopped early). Idempotent."""
        self._closed = True
        runners, self._runners = self._runners, {}
        for runner, results in runners.items():
            await _cancel(runner)
            while not results.empty():  # wake a consumer still waiting in another task
                results.get_nowait()
            results.put_nowait(None)

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(
            retries=self._fetcher.retries,
            hedges=self._calls.hedges,
            hedge_wins=self._calls.hedge_wins,
            budget_refused=self._budget.refused,
            in_flight=self._calls.in_flight,
        )

    @property
    def retries(self) -> int:
        return self._fetcher.retries


class _Failed(Exception):
    """Carries ``gather(fail_fast=True)``'s first error out of its task group."""

    def __init__(self, error: RequestError) -> None:
        super().__init__(str(error))
        self.error = error


async def _cancel(task: asyncio.Task[None]) -> None:
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved: the consumer has gone, nobody else will
        return
    task.cancel()
    # The runner is being discarded (its consumer has gone, or the client closed): what it
    # ends with, a cancellation or the error a request saw as the client closed, has no one
    # to go to. It must not be logged as "never retrieved", nor raised into the consumer.
    try:
        await task
    except asyncio.CancelledError:
        if (me := asyncio.current_task()) is not None and me.cancelling():
            raise  # we are being cancelled ourselves: never swallow that
    except Exception:
        pass


def _late(req: Request) -> DeadlineExceeded:
    return DeadlineExceeded("the deadline passed", url=req.url)


@asynccontextmanager
async def open_client(
    *,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    hedge: Hedge | None = None,
    budget: Budget | float | None = None,
    network: Network | None = None,
    cookies: str | os.PathLike[str] | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Client]:
    """Open a client: one connection pool, fair admission, retries, optional hedging.

    ``limits`` defaults to ``SERVICE_LIMITS``: no per-host limit (also when
    ``Limits.per_host`` is left unset), only ``concurrency`` in flight in total.
    ``policy`` defaults to accepting any content type and ignoring X-Robots-Tag
    (``accept="any", disallowed_header_directives=()``). ``hedge`` sends a second
    copy of a slow idempotent request.
    ``budget`` caps retries and hedges together per host (default
    ``hedge.budget``, else 5 % of requests over 10 s).

    >>> async with open_client(hedge=Hedge(after="p95")) as client: ...

    ``network`` (TLS, proxy, cookies) replaces ``policy.network``; ``cookies``
    is a Netscape ``cookies.txt`` whose cookies are sent where they belong,
    and cookies set by responses are kept while the client is open::

        async with open_client(
            network=Network(ca_bundle="corp-ca.pem", proxy="http://127.0.0.1:3128"),
            cookies="cookies.txt",
        ) as client: ...
    """
    limits = limits or SERVICE_LIMITS
    if limits.per_host is None:  # unset: a service's default, not a crawler's
        limits = replace(limits, per_host=0)
    policy = policy or CLIENT_POLICY
    network = network or policy.network
    if cookies is not None:
        network = replace(network, cookies=os.fspath(cookies))
    clock = clock or LoopClock()
    if isinstance(budget, int | float):
        budget = Budget(ratio=float(budget))
    extra = ExtraBudget(budget or (hedge.extra_budget if hedge else Budget()), clock)
    own = transport is None
    transport = transport or make_transport(limits, network=network)
    fetcher = Fetcher(
        transport, Politeness(limits, clock), policy, clock, may_retry=extra.try_spend
    )
    calls = Calls(fetcher, Admission(limits.concurrency), extra, hedge)
    client = Client(calls, fetcher, limits, extra)
    try:
        yield client
    finally:
        try:
            await client.aclose()
        finally:
            if own:
                await transport.aclose()
