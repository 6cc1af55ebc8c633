"""A second transport behind the seam: libcurl's multi interface driven by the event loop.

``CurlTransport`` implements the same ``Transport`` protocol as ``AiohttpTransport``
on pycurl (``pip install 'aiograb[curl]'``). There is still one thread: libcurl
tells the loop which sockets to watch (``CURLMOPT_SOCKETFUNCTION`` →
``loop.add_reader``/``add_writer``) and when to wake it (``CURLMOPT_TIMERFUNCTION``
→ ``loop.call_later``), and the loop calls ``socket_action`` back. HTTP parsing,
TLS, decompression and connection reuse (HTTP/1.1 keep-alive, HTTP/2 over TLS)
happen in C; Python sees one call per body piece and one per finished transfer.

Differences from the aiohttp transport, none visible to the fetcher:

- a response is handed over on its first body bytes (or at its end), not right
  after its headers; a response that sends headers and then stalls therefore
  fails as a ``Timeout`` when it is opened rather than when it is read;
- a body is paused in libcurl (``CURL_WRITEFUNC_PAUSE``) when more than
  ``HIGH_WATER`` bytes wait to be read, so memory stays bounded;
- host names are looked up by c-ares on the loop (as with the aiohttp transport)
  and handed to libcurl (``CURLOPT_RESOLVE``), so libcurl's threaded resolver,
  a thread per lookup, never runs; the addresses are kept ``DNS_TTL`` seconds.

libcurl's errors are mapped once, here, into the ``RequestError`` tree.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import pycurl
from yarl import URL

from aiograb._core.config import Limits, Network, Timeouts
from aiograb._core.errors import (
    BadEncoding,
    BlockedAddress,
    ConnectError,
    ConnectionReset,
    RequestError,
)
from aiograb._http.aiohttp_transport import AddressPolicy
from aiograb._http.base import Headers, make_headers
from aiograb._http.curl_mapping import bad_encoding, is_ip, parse_head, translate_curl
from aiograb._http.curl_network import CurlNetwork

__all__ = ["DNS_TTL", "HIGH_WATER", "CurlTransport"]

HIGH_WATER = 1024 * 1024  # body bytes buffered before libcurl is paused
DNS_TTL = 300.0  # seconds a looked-up host's addresses are reused, as aiohttp's connector

_POLL_IN, _POLL_OUT, _POLL_REMOVE = pycurl.POLL_IN, pycurl.POLL_OUT, pycurl.POLL_REMOVE
_CSELECT_IN, _CSELECT_OUT = pycurl.CSELECT_IN, pycurl.CSELECT_OUT
_PAUSE: int = pycurl.WRITEFUNC_PAUSE
_NO_HEADERS = make_headers()
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})


class _Exchange:
    """One request on one easy handle: the body buffer the loop fills and the reader drains.

    It is also the ``ResponseStream`` (``status``, ``headers``, ``url``, reads) and
    the ``async with`` of ``send``.
    """

    __slots__ = (
        "_chunks",
        "_error",
        "_finished",
        "_handle",
        "_head",
        "_paused",
        "_raw_headers",
        "_resolve",
        "_transport",
        "_waiter",
        "buffered",
        "headers",
        "status",
        "url",
    )

    def __init__(self, transport: CurlTransport, handle: Any, url: str) -> None:
        self._transport = transport
        self._handle = handle
        self._raw_headers: list[bytes] = []
        self._chunks: list[bytes] = []
        self._error: RequestError | None = None
        self._finished = False
        self._paused = False
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._resolve: tuple[str, int] | None = None  # a host name to look up first
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
        self.status, self.headers = parse_head(self._raw_headers)
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
            self._handle.pause(pycurl.PAUSE_CONT)  # may deliver data right here
            if self._chunks or self._finished:
                return
        self._waiter = self._transport.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- the async context manager --------------------------------------------------------

    async def __aenter__(self) -> _Exchange:
        if self._resolve is not None:
            try:
                await self._transport.resolve_then_start(self, *self._resolve)
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


class CurlTransport:
    """libcurl's multi handle on the running loop: one thread, connections reused in C.

    ``limits.concurrency`` caps the open connections; per-host limits are enforced
    by ``Politeness``, as with the aiohttp transport. With an ``address_policy``,
    every address is checked right before a socket is opened for it.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        network: Network | None = None,
        address_policy: AddressPolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._limits = limits
        self._net = CurlNetwork(network or Network(), environ)
        self._address_policy = address_policy
        self._multi: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None  # uvloop's call_later(0) is a plain Handle
        self._deadline = 0.0  # loop time the timer fires at
        self._fds: dict[int, int] = {}
        self._idle: list[Any] = []
        self._active: dict[Any, _Exchange] = {}
        # host -> (expiry in loop time, addresses for CURLOPT_RESOLVE; None: an IP literal)
        self._dns: dict[str, tuple[float, str | None]] = {}
        self._resolver: Any = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _open(self) -> Any:
        if self._multi is None:
            self._loop = asyncio.get_running_loop()
            multi = pycurl.CurlMulti()
            multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
            multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
            multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, self._limits.concurrency)
            multi.setopt(pycurl.M_MAXCONNECTS, self._limits.concurrency)
            self._multi = multi
        return self._multi

    # -- libcurl → loop --------------------------------------------------------------------

    def _on_socket(self, what: int, fd: int, _multi: Any, _socketp: Any) -> None:
        loop = self.loop
        before = self._fds.get(fd, 0)
        if what == _POLL_REMOVE:
            if before & _POLL_IN:
                loop.remove_reader(fd)
            if before & _POLL_OUT:
                loop.remove_writer(fd)
            self._fds.pop(fd, None)
            return
        if what & _POLL_IN and not before & _POLL_IN:
            loop.add_reader(fd, self._on_ready, fd, _CSELECT_IN)
        elif before & _POLL_IN and not what & _POLL_IN:
            loop.remove_reader(fd)
        if what & _POLL_OUT and not before & _POLL_OUT:
            loop.add_writer(fd, self._on_ready, fd, _CSELECT_OUT)
        elif before & _POLL_OUT and not what & _POLL_OUT:
            loop.remove_writer(fd)
        self._fds[fd] = what

    def _on_timer(self, ms: int) -> None:
        # libcurl moves its deadline many times per transfer: a timer that fires no later
        # than the new one is kept (firing early is harmless; it saves a TimerHandle a call).
        timer = self._timer
        if ms < 0:
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        loop = self.loop
        deadline = loop.time() + ms / 1000
        if timer is not None:
            if self._deadline <= deadline:
                return
            timer.cancel()
        self._deadline = deadline
        self._timer = loop.call_later(ms / 1000, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _on_ready(self, fd: int, event: int) -> None:
        self._act(fd, event)

    def _act(self, fd: int, event: int) -> None:
        if self._multi is None:
            return
        _, running = self._multi.socket_action(fd, event)
        if running < len(self._active):
            self._collect()

    def _collect(self) -> None:
        multi = self._multi
        while True:
            queued, ok, failed = multi.info_read()
            for handle in ok:
                self._finish(handle, None)
            for handle, errno, message in failed:
                self._finish(handle, (errno, message))
            if not queued:
                return

    def _finish(self, handle: Any, failure: tuple[int, str] | None) -> None:
        exchange = self._active.pop(handle, None)
        if exchange is None:  # aborted meanwhile: already removed
            return
        self._multi.remove_handle(handle)
        error = handle.aiograb_blocked if failure is not None else None
        if failure is not None and error is None:
            os_errno = handle.getinfo(pycurl.OS_ERRNO)
            error = translate_curl(
                failure[0], failure[1], exchange.url, os_errno, proxied=handle.aiograb_proxied
            )
            if isinstance(error, BadEncoding):  # said as the aiohttp transport says it
                error = bad_encoding(exchange.url, exchange._raw_headers)
        exchange.on_done(error)

    # -- requests ----------------------------------------------------------------------------

    def _handle(self) -> Any:
        if self._idle:
            return self._idle.pop()
        handle = pycurl.Curl()
        self._base_options(handle)
        return handle

    def _base_options(self, handle: Any) -> None:
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PATH_AS_IS, 1)  # the URL as our normal form wrote it
        handle.setopt(pycurl.ACCEPT_ENCODING, "")  # every coding libcurl decodes
        self._net.configure(handle)
        handle.aiograb_method = "GET"
        handle.aiograb_timeouts = None
        handle.aiograb_blocked = None
        handle.aiograb_proxied = False

    def _method(self, handle: Any, method: str, body: bytes | None, fields: list[str]) -> None:
        if handle.aiograb_method != "GET":  # back to a plain GET handle
            handle.reset()
            self._base_options(handle)
            handle.aiograb_timeouts = None
        if method == "GET" and body is None:
            return
        handle.aiograb_method = method
        if method == "HEAD":
            handle.setopt(pycurl.NOBODY, 1)
            return
        if body is not None or method not in _NO_BODY_METHODS:
            handle.setopt(pycurl.POSTFIELDSIZE, len(body or b""))
            handle.setopt(pycurl.POSTFIELDS, body or b"")
            fields.append("Expect:")  # no 100-continue round trip
            if not any(f[:13].lower() == "content-type:" for f in fields):
                fields.append("Content-Type:")  # not libcurl's form type
        if method != "POST":
            handle.setopt(pycurl.CUSTOMREQUEST, method)

    def send(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> _Exchange:
        multi = self._open()
        handle = self._handle()
        text = str(url)
        exchange = _Exchange(self, handle, text)
        fields = [f"{k}: {v}" for k, v in headers.items()]
        if "User-Agent" not in headers and not any(k.lower() == "user-agent" for k in headers):
            fields.append("User-Agent:")  # not pycurl's own, as aiohttp sends none either
        self._method(handle, method, body, fields)
        if handle.aiograb_timeouts is not timeouts:
            handle.setopt(pycurl.TIMEOUT_MS, int(timeouts.total * 1000))
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(timeouts.connect * 1000))
            handle.aiograb_timeouts = timeouts
        handle.setopt(pycurl.URL, text)
        handle.setopt(pycurl.HTTPHEADER, fields)
        handle.setopt(pycurl.HEADERFUNCTION, exchange._raw_headers.append)
        handle.setopt(pycurl.WRITEFUNCTION, exchange.on_body)
        if self._address_policy is not None:
            handle.aiograb_blocked = None
            handle.setopt(pycurl.OPENSOCKETFUNCTION, self._opener(handle, url.host or ""))
        host = url.raw_host or ""
        entry = self._dns.get(host)
        if entry is None and is_ip(host):
            entry = self._dns[host] = (float("inf"), None)
        proxy = self._net.proxy(handle, url)
        handle.aiograb_proxied = proxy is not None
        if proxy is not None and (not proxy.is_socks or proxy.remote_dns):
            entry = (float("inf"), None)  # the proxy looks the name up
        absolute = proxy is not None and not proxy.is_socks and url.scheme == "http"
        # The target as the normal form wrote it: libcurl's URL parser upper-cases %7e.
        handle.setopt(pycurl.REQUEST_TARGET, text if absolute else url.raw_path_qs)
        if entry is not None and entry[0] > self.loop.time():
            if entry[1] is not None:
                handle.setopt(pycurl.RESOLVE, [f"{host}:{url.port}:{entry[1]}"])
            self._active[handle] = exchange
            multi.add_handle(handle)
        else:  # looked up on the loop by c-ares when the request is entered
            exchange._resolve = (host, url.port or 0)
        return exchange

    async def resolve_then_start(self, exchange: _Exchange, host: str, port: int) -> None:
        """Look ``host`` up without a thread (c-ares on the loop), hand libcurl the
        addresses (``CURLOPT_RESOLVE``), so its threaded resolver never runs, and start."""
        exchange._resolve = None
        if self._resolver is None:
            from aiograb._http.resolver import ThreadlessResolver

            self._resolver = ThreadlessResolver()
        try:
            found = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        except OSError as exc:
            raise ConnectError(
                f"DNS lookup failed: {exc.strerror or exc}", url=exchange.url, code="dns_error"
            ) from exc
        addresses = ",".join(f"[{r['host']}]" if ":" in r["host"] else r["host"] for r in found)
        self._dns[host] = (self.loop.time() + DNS_TTL, addresses)
        handle = exchange._handle
        handle.setopt(pycurl.RESOLVE, [f"{host}:{port}:{addresses}"])
        self._active[handle] = exchange
        self._open().add_handle(handle)

    def _opener(self, handle: Any, host: str) -> Any:
        policy = self._address_policy
        assert policy is not None
        loop = self.loop

        def open_socket(_purpose: int, address: Any) -> Any:
            try:
                policy(host, address.addr[0])
            except BlockedAddress as exc:
                handle.aiograb_blocked = exc
                return pycurl.SOCKET_BAD
            sock = socket.socket(address.family, address.socktype, address.protocol)
            # pycurl connects a dup() of it: this copy goes once the callback is over.
            loop.call_soon(sock.close)
            return sock

        return open_socket

    def abort(self, exchange: _Exchange) -> None:
        """Drop an unfinished transfer (its connection is closed) and free its handle."""
        handle = exchange._handle
        if self._active.pop(handle, None) is not None and self._multi is not None:
            self._multi.remove_handle(handle)
        self.release(exchange)

    def release(self, exchange: _Exchange) -> None:
        handle = exchange._handle
        if handle is None:
            return
        exchange._handle = None
        exchange._chunks = []
        exchange._raw_headers = []
        if self._multi is None:
            handle.close()
        else:
            self._idle.append(handle)

    async def aclose(self) -> None:
        multi, self._multi = self._multi, None
        if multi is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle, exchange in list(self._active.items()):
            multi.remove_handle(handle)
            exchange.on_done(ConnectionReset("transport closed", url=exchange.url))
        self._active.clear()
        for fd, what in self._fds.items():
            if what & _POLL_IN:
                self.loop.remove_reader(fd)
            if what & _POLL_OUT:
                self.loop.remove_writer(fd)
        self._fds.clear()
        for handle in self._idle:
            handle.close()
        self._idle.clear()
        multi.close()
        self._net.close()
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None
