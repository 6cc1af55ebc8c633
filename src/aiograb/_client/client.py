"""The async client: bounded, retried, deadline-aware HTTP fan-out in memory.

For a service that must call hundreds or thousands of endpoints per request::

    async with aiograb.open_client(limits=aiograb.Limits(concurrency=200)) as client:
        async for result in client.fetch_all(aiograb.Request(u) for u in urls):
            if result.ok:
                use(result.response.json())

It shares the engine's pieces (transport, per-host slots, retries, redirects,
limits) with ``aiograb get``; only the sink differs (memory, not files).
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from aiograb._core.clock import Clock, LoopClock
from aiograb._core.config import Limits, Network, RequestPolicy
from aiograb._core.errors import DeadlineExceeded, RequestError
from aiograb._core.models import Outcome, Request
from aiograb._fetch.fetcher import Fetcher
from aiograb._fetch.politeness import Politeness
from aiograb._http.aiohttp_transport import AiohttpTransport
from aiograb._http.base import Transport
from aiograb._store.sinks import MemorySink

__all__ = ["Client", "Response", "Result", "open_client"]

# Any content type, and X-Robots-Tag ignored: an API's answer is not a page to index.
CLIENT_POLICY = RequestPolicy(accept="any", disallowed_header_directives=())


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response held in memory."""

    status: int
    url: str
    headers: Mapping[str, str]
    content: bytes
    content_type: str | None
    attempts: int
    elapsed: float

    def text(self, encoding: str = "utf-8") -> str:
        return self.content.decode(encoding, errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass(frozen=True, slots=True)
class Result:
    """One request's result from ``fetch_all``: a response or an error, never both."""

    request: Request
    response: Response | None
    error: RequestError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _response(outcome: Outcome) -> Response:
    stored = outcome.stored
    return Response(
        status=outcome.status or 0,
        url=outcome.final_url or outcome.url,
        headers=outcome.headers,
        content=(stored.body or b"") if stored else b"",
        content_type=outcome.content_type,
        attempts=outcome.attempts,
        elapsed=outcome.elapsed,
    )


class Client:
    """Use through ``open_client``. Safe to share among many tasks of one loop."""

    def __init__(self, fetcher: Fetcher, limits: Limits) -> None:
        self._fetcher = fetcher
        self._limits = limits
        self._sink = MemorySink()

    async def fetch(self, request: Request | str) -> Response:
        """Fetch one request with the client's retries; raise ``RequestError`` on failure.

        >>> resp = await client.fetch("https://api.example.org/health")
        """
        result = await self._fetch(request)
        if result.error is not None:
            raise result.error
        assert result.response is not None
        return result.response

    async def _fetch(self, request: Request | str) -> Result:
        req = Request(request) if isinstance(request, str) else request
        outcome = await self._fetcher.fetch(req, self._sink, "")
        if outcome.ok:
            return Result(req, _response(outcome), None)
        return Result(req, None, outcome.error)

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
        loop = asyncio.get_running_loop()
        ends_at = None if deadline is None else loop.time() + deadline

        async def produce() -> None:
            if isinstance(requests, AsyncIterable):
                async for item in requests:
                    await todo.put(Request(item) if isinstance(item, str) else item)
            else:
                for item in requests:
                    await todo.put(Request(item) if isinstance(item, str) else item)
            for _ in range(n):  # one end-of-input marker per worker
                await todo.put(None)

        async def work() -> None:
            while (req := await todo.get()) is not None:
                remaining = None if ends_at is None else ends_at - loop.time()
                if remaining is not None and remaining <= 0:
                    result = Result(req, None, _late(req))
                else:
                    try:
                        async with asyncio.timeout(remaining):
                            result = await self._fetch(req)
                    except TimeoutError:
                        result = Result(req, None, _late(req))
                await results.put(result)

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
        runner = asyncio.create_task(run())
        try:
            while (result := await results.get()) is not None:
                yield result
            await runner
        finally:
            if not runner.done():
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner

    @property
    def retries(self) -> int:
        return self._fetcher.retries


def _late(req: Request) -> DeadlineExceeded:
    return DeadlineExceeded("the fetch_all deadline passed", url=req.url)


@asynccontextmanager
async def open_client(
    *,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    network: Network | None = None,
    cookies: str | os.PathLike[str] | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Client]:
    """Open a client: one connection pool, per-host slots and retry policy.

    ``policy`` defaults to accepting any content type and ignoring X-Robots-Tag
    (``accept="any", disallowed_header_directives=()``).
    ``network`` (TLS, proxy, cookies) replaces ``policy.network``; ``cookies``
    is a Netscape ``cookies.txt`` whose cookies are sent where they belong,
    and cookies set by responses are kept while the client is open::

        async with open_client(
            network=Network(ca_bundle="corp-ca.pem", proxy="http://127.0.0.1:3128"),
            cookies="cookies.txt",
        ) as client: ...
    """
    limits = limits or Limits()
    policy = policy or CLIENT_POLICY
    network = network or policy.network
    if cookies is not None:
        network = replace(network, cookies=os.fspath(cookies))
    clock = clock or LoopClock()
    own = transport is None
    transport = transport or AiohttpTransport(limits, network=network)
    try:
        yield Client(Fetcher(transport, Politeness(limits, clock), policy, clock), limits)
    finally:
        if own:
            await transport.aclose()
