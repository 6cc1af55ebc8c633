"""The fan-out benchmark's clients, each a function that runs one endpoint's W calls.

Every client gets the same URLs, the same cap on connections and a fresh process
(``_fanout_child``). ``httpx`` and ``requests`` come from the ``bench`` extra.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any

__all__ = ["ASYNC_CLIENTS", "CLIENTS", "DEFAULT_CLIENTS", "SYNC_CLIENTS", "available_clients"]

# A fan-out: W URLs in, the number of failed calls out.
AsyncFan = Callable[[list[str]], Awaitable[int]]
SyncFan = Callable[[list[str]], int]


@asynccontextmanager
async def _aiograb(cap: int, hedged: bool, transport: str = "curl") -> AsyncIterator[AsyncFan]:
    from aiograb import Hedge, Limits, open_client

    hedge = Hedge(after="p95") if hedged else None
    limits = Limits(concurrency=cap, transport=transport)
    async with open_client(limits=limits, hedge=hedge) as client:

        async def fan(urls: list[str]) -> int:
            return sum(not r.ok for r in await client.gather(urls))

        yield fan


@asynccontextmanager
async def aiograb_plain(cap: int) -> AsyncIterator[AsyncFan]:
    """``open_client()`` as a user gets it: the default transport (libcurl)."""
    async with _aiograb(cap, hedged=False) as fan:
        yield fan


@asynccontextmanager
async def aiograb_hedged(cap: int) -> AsyncIterator[AsyncFan]:
    async with _aiograb(cap, hedged=True) as fan:
        yield fan


@asynccontextmanager
async def aiograb_aiohttp(cap: int) -> AsyncIterator[AsyncFan]:
    """The same client over the other transport (``Limits(transport="aiohttp")``)."""
    async with _aiograb(cap, hedged=False, transport="aiohttp") as fan:
        yield fan


@asynccontextmanager
async def aiograb_aiohttp_hedged(cap: int) -> AsyncIterator[AsyncFan]:
    async with _aiograb(cap, hedged=True, transport="aiohttp") as fan:
        yield fan


@asynccontextmanager
async def aiohttp_gather(cap: int) -> AsyncIterator[AsyncFan]:
    """The baseline: ``asyncio.gather`` over one ``aiohttp.ClientSession``."""
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=cap)) as session:

        async def get(url: str) -> bool:
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    return resp.status != 200
            except aiohttp.ClientError:
                return True

        async def fan(urls: list[str]) -> int:
            return sum(await asyncio.gather(*(get(u) for u in urls)))

        yield fan


@asynccontextmanager
async def pycurl_multi(cap: int) -> AsyncIterator[AsyncFan]:
    """The floor under the libcurl transport (``_fanout_pycurl``)."""
    from aiograb.bench._fanout_pycurl import bare_curl

    async with bare_curl(cap) as fan:
        yield fan


@asynccontextmanager
async def pycurl_hedged(cap: int) -> AsyncIterator[AsyncFan]:
    """The floor with the simplest hedge: a second copy after ``FLOOR_HEDGE_S``."""
    from aiograb.bench._fanout_pycurl import FLOOR_HEDGE_S, bare_curl

    async with bare_curl(cap, FLOOR_HEDGE_S) as fan:
        yield fan


@asynccontextmanager
async def httpx_async(cap: int) -> AsyncIterator[AsyncFan]:
    import httpx

    limits = httpx.Limits(max_connections=cap, max_keepalive_connections=cap)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def get(url: str) -> bool:
            try:
                return (await client.get(url)).status_code != 200
            except httpx.HTTPError:
                return True

        async def fan(urls: list[str]) -> int:
            return sum(await asyncio.gather(*(get(u) for u in urls)))

        yield fan


@contextmanager
def requests_threads(cap: int) -> Iterator[SyncFan]:
    """A thread pool of ``cap`` threads, one ``requests.Session`` per thread."""
    import requests
    from requests.adapters import HTTPAdapter

    local = threading.local()

    def get(url: str) -> bool:
        session: Any = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
        try:
            return bool(session.get(url, timeout=60).status_code != 200)
        except requests.RequestException:
            return True

    with ThreadPoolExecutor(max_workers=cap) as pool:

        def fan(urls: list[str]) -> int:
            return sum(pool.map(get, urls))

        yield fan


ASYNC_CLIENTS: dict[str, Callable[[int], Any]] = {
    "aiograb": aiograb_plain,
    "aiograb-hedged": aiograb_hedged,
    "aiograb-aiohttp": aiograb_aiohttp,
    "aiograb-aiohttp-hedged": aiograb_aiohttp_hedged,
    "aiohttp": aiohttp_gather,
    "pycurl": pycurl_multi,
    "pycurl-hedged": pycurl_hedged,
    "httpx": httpx_async,
}
SYNC_CLIENTS: dict[str, Callable[[int], Any]] = {"threads": requests_threads}
CLIENTS = (*ASYNC_CLIENTS, *SYNC_CLIENTS)
# The five, and bare pycurl: the floor under aiograb's default transport. The
# aiohttp transport's two are asked for by name (--clients).
DEFAULT_CLIENTS = ("aiograb", "aiograb-hedged", "aiohttp", "pycurl", "httpx", "threads")
_NEEDS = {
    "httpx": "httpx",
    "threads": "requests",
    "pycurl": "pycurl",
    "pycurl-hedged": "pycurl",
}


def available_clients(names: tuple[str, ...] = CLIENTS) -> tuple[tuple[str, ...], list[str]]:
    """The clients that can run here, and a note for each one skipped."""
    import importlib.util

    ok, skipped = [], []
    for name in names:
        module = _NEEDS.get(name)
        if module is not None and importlib.util.find_spec(module) is None:
            skipped.append(f"{name}: needs {module} (pip install 'aiograb[bench]')")
        else:
            ok.append(name)
    return tuple(ok), skipped
