"""The fan-out benchmark's floor under aiograb's default transport: pycurl's multi
interface driven by the loop and nothing else — no checks, retries, budget, headers
kept or result objects — as a short script would drive it.

``pycurl`` is one ``gather`` of bare transfers; ``pycurl-hedged`` adds the simplest
hedge (a second copy after a fixed delay, the first answer wins), capped like aiograb's
default budget (extra copies ≤ 5 % of calls + 10, over the client's life: without a cap,
a loop short of CPU makes every call late, hedges every one and doubles its own work),
which shows what hedging can reach on a machine before any client's layers are paid for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["FLOOR_HEDGE_S", "BareCurl", "bare_curl"]

FLOOR_HEDGE_S = 0.12  # pycurl-hedged's delay: the best of a sweep at W=1000 on 2 cores
BUDGET, MIN_EXTRA = 0.05, 10  # extra copies at most BUDGET x calls + MIN_EXTRA


class BareCurl:
    """A multi handle on the running loop; ``get`` a URL, True when it failed."""

    def __init__(self, cap: int) -> None:
        import pycurl

        self._pycurl = pycurl
        self._loop = asyncio.get_running_loop()
        self._multi = multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, cap)
        multi.setopt(pycurl.M_MAXCONNECTS, cap)
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._watched: dict[int, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: dict[Any, asyncio.Future[bool]] = {}
        self._idle: list[Any] = []
        self.calls = 0
        self.extra = 0  # second copies sent

    def _collect(self) -> None:
        pycurl, multi = self._pycurl, self._multi
        while True:
            queued, ok, failed = multi.info_read()
            for handle in ok:
                self._settle(handle, handle.getinfo(pycurl.RESPONSE_CODE) != 200)
            for handle, _errno, _message in failed:
                self._settle(handle, True)
            if not queued:
                return

    def _settle(self, handle: Any, failed: bool) -> None:
        self._multi.remove_handle(handle)
        self._idle.append(handle)
        future = self._waiting.pop(handle)
        if not future.done():
            future.set_result(failed)

    def _act(self, fd: int, event: int) -> None:
        _, running = self._multi.socket_action(fd, event)
        if running < len(self._waiting):
            self._collect()

    def _on_socket(self, what: int, fd: int, _multi: Any, _socketp: Any) -> None:
        pycurl, loop = self._pycurl, self._loop
        before = self._watched.pop(fd, 0)
        if before & pycurl.POLL_IN:
            loop.remove_reader(fd)
        if before & pycurl.POLL_OUT:
            loop.remove_writer(fd)
        if what == pycurl.POLL_REMOVE:
            return
        if what & pycurl.POLL_IN:
            loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        if what & pycurl.POLL_OUT:
            loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        self._watched[fd] = what

    def _on_timer(self, ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        if ms >= 0:
            self._timer = self._loop.call_later(
                ms / 1000, self._act, self._pycurl.SOCKET_TIMEOUT, 0
            )

    def _start(self, url: str, future: asyncio.Future[bool]) -> Any:
        pycurl = self._pycurl
        handle = self._idle.pop() if self._idle else pycurl.Curl()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.WRITEFUNCTION, len)  # the body is read and dropped
        self._waiting[handle] = future
        self._multi.add_handle(handle)
        return handle

    def _drop(self, handle: Any, future: asyncio.Future[bool] | None = None) -> None:
        """Cancel ``handle``'s transfer if it still runs for ``future`` (None: for anyone).
        A handle that finished went back to the idle list and may run another call's
        transfer by now: that one is not ours to cancel."""
        owner = self._waiting.get(handle)
        if owner is not None and (future is None or owner is future):
            del self._waiting[handle]
            self._multi.remove_handle(handle)
            self._idle.append(handle)

    async def get(self, url: str, hedge_after: float | None = None) -> bool:
        future: asyncio.Future[bool] = self._loop.create_future()
        handles = [self._start(url, future)]
        self.calls += 1

        def second() -> None:
            if not future.done() and self.extra < BUDGET * self.calls + MIN_EXTRA:
                self.extra += 1
                handles.append(self._start(url, future))

        timer = self._loop.call_later(hedge_after, second) if hedge_after is not None else None
        try:
            return await future
        finally:
            if timer is not None:
                timer.cancel()
            for handle in handles:
                self._drop(handle, future)

    def close(self) -> None:
        pycurl, loop = self._pycurl, self._loop
        for fd, what in self._watched.items():
            if what & pycurl.POLL_IN:
                loop.remove_reader(fd)
            if what & pycurl.POLL_OUT:
                loop.remove_writer(fd)
        if self._timer is not None:
            self._timer.cancel()
        for handle in list(self._waiting):
            self._drop(handle)
        for handle in self._idle:
            handle.close()
        self._multi.close()


@asynccontextmanager
async def bare_curl(
    cap: int, hedge_after: float | None = None
) -> AsyncIterator[Callable[[list[str]], Awaitable[int]]]:
    """A fan-out over ``BareCurl``: W URLs in, the number of failed calls out."""
    curl = BareCurl(cap)

    async def fan(urls: list[str]) -> int:
        return sum(await asyncio.gather(*(curl.get(u, hedge_after) for u in urls)))

    try:
        yield fan
    finally:
        curl.close()
