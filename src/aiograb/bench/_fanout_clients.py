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
    """A floor for the libcurl transport: pycurl's multi interface on the loop, nothing
    else (no checks, retries, journal of attempts or headers kept), as a 60-line script
    would drive it."""
    import pycurl

    loop = asyncio.get_running_loop()
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, cap)
    multi.setopt(pycurl.M_MAXCONNECTS, cap)
    watched: dict[int, int] = {}
    timer: list[asyncio.TimerHandle | None] = [None]
    waiting: dict[Any, asyncio.Future[bool]] = {}
    idle: list[Any] = []

    def collect() -> None:
        while True:
            queued, ok, failed = multi.info_read()
            for handle in ok:
                multi.remove_handle(handle)
                waiting.pop(handle).set_result(handle.getinfo(pycurl.RESPONSE_CODE) != 200)
            for handle, _errno, _message in failed:
                multi.remove_handle(handle)
                waiting.pop(handle).set_result(True)
            if not queued:
                return

    def act(fd: int, event: int) -> None:
        _, running = multi.socket_action(fd, event)
        if running < len(waiting):
            collect()

    def on_socket(what: int, fd: int, _multi: Any, _socketp: Any) -> None:
        before = watched.pop(fd, 0)
        if before & pycurl.POLL_IN:
            loop.remove_reader(fd)
        if before & pycurl.POLL_OUT:
            loop.remove_writer(fd)
        if what == pycurl.POLL_REMOVE:
            return
        if what & pycurl.POLL_IN:
            loop.add_reader(fd, act, fd, pycurl.CSELECT_IN)
        if what & pycurl.POLL_OUT:
            loop.add_writer(fd, act, fd, pycurl.CSELECT_OUT)
        watched[fd] = what

    def on_timer(ms: int) -> None:
        if timer[0] is not None:
            timer[0].cancel()
        timer[0] = None if ms < 0 else loop.call_later(ms / 1000, act, pycurl.SOCKET_TIMEOUT, 0)

    multi.setopt(pycurl.M_SOCKETFUNCTION, on_socket)
    multi.setopt(pycurl.M_TIMERFUNCTION, on_timer)

    async def get(url: str) -> bool:
        handle = idle.pop() if idle else pycurl.Curl()
        chunks: list[bytes] = []
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.WRITEFUNCTION, chunks.append)
        future: asyncio.Future[bool] = loop.create_future()
        waiting[handle] = future
        multi.add_handle(handle)
        try:
            return await future
        finally:
            idle.append(handle)

    async def fan(urls: list[str]) -> int:
        return sum(await asyncio.gather(*(get(u) for u in urls)))

    try:
        yield fan
    finally:
        for fd, what in watched.items():
            if what & pycurl.POLL_IN:
                loop.remove_reader(fd)
            if what & pycurl.POLL_OUT:
                loop.remove_writer(fd)
        if timer[0] is not None:
            timer[0].cancel()
        for handle in idle:
            handle.close()
        multi.close()


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
