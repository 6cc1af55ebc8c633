"""One request of the curl transport: its easy handle, the body buffer libcurl fills
and the reader drains, and the ``ResponseStream`` the fetcher sees.

The transport (``curl_transport.py``) owns the multi handle and calls ``on_body`` and
``on_done`` from inside ``socket_action``; this side is what the fetcher awaits.
"""

from __future__ import annotations

import asyncio
import select
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import pycurl
from yarl import URL

from aiograb._core.config import Timeouts
from aiograb._core.errors import BlockedAddress, RequestError
from aiograb._http.answers import ANSWERING, SILENT, UNKNOWN, WAITING
from aiograb._http.base import Headers, make_headers
from aiograb._http.curl_lanes import Lane
from aiograb._http.curl_mapping import parse_head
from aiograb._http.network import Proxy

if TYPE_CHECKING:  # cookies.py imports aiohttp (its jar): only a run with a cookie file needs it
    from aiograb._http.cookies import CookiePolicy

__all__ = ["HIGH_WATER", "CurlExchange", "Easy", "Owner"]

HIGH_WATER = 1024 * 1024  # body bytes buffered before libcurl is paused

_PAUSE: int = pycurl.WRITEFUNC_PAUSE
_PRETRANSFER, _ACTIVESOCKET = pycurl.PRETRANSFER_TIME_T, pycurl.ACTIVESOCKET
_POLLIN = select.POLLIN
_NO_HEADERS = make_headers()


class Owner(Protocol):
    """What an exchange asks of its transport (``CurlTransport``)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    async def resolve_then_start(self, exchange: CurlExchange, url: URL) -> None: ...

    def abort(self, exchange: CurlExchange) -> None: ...

    def release(self, exchange: CurlExchange) -> None: ...


class Easy:
    """An easy handle and what the transport keeps beside it for its next requests.

    Plain slots, not attributes set on the pycurl object: pycurl looks an attribute up
    through its own constants first, ~0.3 µs a read, and a request reads them ~8 times.
    """

    __slots__ = (
        "blocked",
        "curl",
        "dest",
        "fresh",
        "key",
        "lane",
        "load",
        "method",
        "port",
        "proxy",
        "timeouts",
        "unopened",
    )

    def __init__(self, curl: Any) -> None:
        self.curl = curl
        self.lane: Lane | None = None  # the multi handle it is in, while it is in one
        self.key: object = None  # its destination, and that destination's load by lane
        self.load: list[int] = []
        self.clear()

    def clear(self) -> None:
        """What a fresh (or ``reset``) handle has: a GET, no options kept beside it."""
        self.method = "GET"
        self.timeouts: Timeouts | None = None  # the ones its TIMEOUT options are set from
        self.blocked: BlockedAddress | None = None  # the address policy refused its socket
        self.unopened: OSError | None = None  # the OSError of a socket our opener could not open
        self.fresh = False  # sent again on a new connection (``_again``)
        self.dest, self.port = "", 0  # the target named to a SOCKS proxy
        self.proxy: Proxy | None = None  # the route its PROXY option is set to


class CurlExchange:
    """One request on one easy handle: the body buffer the loop fills and the reader drains.

    It is also the ``ResponseStream`` (``status``, ``headers``, ``url``, reads) and
    the ``async with`` of ``send``. With a cookie jar (``cookies``), the response's
    ``Set-Cookie`` fields are kept as soon as its head is known.
    """

    __slots__ = (
        "_chunks",
        "_error",
        "_finished",
        "_head",
        "_paused",
        "_transport",
        "_waiter",
        "buffered",
        "cookies",
        "easy",
        "headers",
        "raw_headers",
        "resolve",
        "status",
        "target",
        "url",
    )

    def __init__(self, transport: Owner, easy: Easy, url: str) -> None:
        self._transport = transport
        self.easy: Easy | None = easy  # None once handed back (``forget``)
        self.raw_headers: list[bytes] = []
        self._chunks: list[bytes] = []
        self._error: RequestError | None = None
        self._finished = False
        self._paused = False
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.resolve: URL | None = None  # a host name to look up first
        self.cookies: CookiePolicy | None = None  # the jar the response's cookies go to
        self.target: URL | None = None  # the request's URL, for the jar
        self.buffered = 0
        self.status = 0
        self.headers: Headers = _NO_HEADERS
        self.url = url

    # -- called by libcurl (inside socket_action) and by the transport -------------------

    def on_body(self, data: bytes) -> int | None:
        if not self.status:
            self._ready()
        if self.buffered >= HIGH_WATER:
            self._paused = True
            return _PAUSE  # libcurl keeps ``data`` and hands it over again on unpause
        self._chunks.append(data)
        self.buffered += len(data)
        self._wake()
        return None

    def on_done(self, error: RequestError | None) -> None:
        self._finished = True
        self._error = error
        if not self.status and error is None:
            self._ready()
        head = self._head
        if head is not None and not head.done():
            head.set_result(None)
        self._wake()

    def _ready(self) -> None:
        self.status, self.headers = parse_head(self.raw_headers)
        if self.cookies is not None and self.target is not None:
            self.cookies.keep(self.headers, self.target)
        head = self._head
        if head is not None and not head.done():
            head.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        if self._paused:
            self._paused = False
            assert self.easy is not None
            self.easy.curl.pause(pycurl.PAUSE_CONT)  # may deliver data right here
            if self._chunks or self._finished:
                return
        self._waiter = self._transport.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def forget(self) -> Easy | None:
        """Drop the buffers and hand back the easy handle (None if already given back)."""
        easy, self.easy = self.easy, None
        self._chunks = []
        self.raw_headers = []
        return easy

    def answer_state(self) -> int:
        """Where the answer stands (``answers.py``): begun (a head read), bytes waiting in
        its socket, sent with nothing to read, or unknown (not sent yet)."""
        if self._finished:  # failed: a retry (or nothing) follows, and no answer came
            return SILENT if self._error is not None else ANSWERING
        if self.status or self.raw_headers:
            return ANSWERING
        easy = self.easy
        if easy is None or easy.lane is None:
            return UNKNOWN  # a name being looked up
        curl = easy.curl
        if not curl.getinfo(_PRETRANSFER):
            return UNKNOWN  # connecting, or not yet driven by the loop
        fd = curl.getinfo(_ACTIVESOCKET)
        if fd < 0:
            return UNKNOWN
        poller = select.poll()
        poller.register(fd, _POLLIN)
        # Readable also when the bytes are another stream's (HTTP/2): the hedge waits.
        return WAITING if poller.poll(0) else SILENT

    # -- the async context manager --------------------------------------------------------

    async def __aenter__(self) -> CurlExchange:
        if self.resolve is not None:
            try:
                await self._transport.resolve_then_start(self, self.resolve)
            except BaseException:
                self._transport.release(self)
                raise
        if not self.status and not self._finished:
            self._head = self._transport.loop.create_future()
            try:
                await self._head
            except BaseException:
                self._transport.abort(self)
                raise
        if self._error is not None and not self.status:
            self._transport.release(self)
            raise self._error
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._finished:
            self._transport.release(self)
        else:
            self._transport.abort(self)

    # -- ResponseStream --------------------------------------------------------------------

    async def read_chunk(self) -> bytes:
        while not self._chunks and not self._finished:
            await self._wait()
        if self._chunks:
            data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks.clear()
            self.buffered = 0
            return data
        if self._error is not None:
            raise self._error
        return b""

    async def read_all(self) -> bytes:
        while not self._finished:
            await self._wait()
        if self._error is not None:
            raise self._error
        data = b"".join(self._chunks)
        self._chunks.clear()
        self.buffered = 0
        return data
