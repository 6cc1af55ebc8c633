"""The default transport behind the seam: libcurl's multi interface driven by the event loop.

``CurlTransport`` implements the same ``Transport`` protocol as ``AiohttpTransport``
on pycurl. There is still one thread: libcurl's multi handles are driven by the loop
(``curl_multi.py``: the sockets libcurl asks for in one epoll set, a timer per handle,
``socket_action`` called back; a busy host spread over several handles,
``curl_lanes.py``). This module makes each request of options, headers, routes and
addresses, and turns a finished transfer into a response or an error. HTTP parsing,
TLS, decompression and connection reuse (HTTP/1.1 keep-alive, HTTP/2 over TLS)
happen in C; Python sees one call per body piece and one per finished transfer.

Differences from the aiohttp transport, none visible to the fetcher:

- a response is handed over on its first body bytes (or at its end), not right
  after its headers; a response that sends headers and then stalls therefore
  fails as a ``Timeout`` when it is opened rather than when it is read;
- a body is paused in libcurl (``CURL_WRITEFUNC_PAUSE``) when more than
  ``HIGH_WATER`` bytes wait to be read, so memory stays bounded;
- host names (a proxy's too) are looked up by c-ares on the loop (as with the
  aiohttp transport) and handed to libcurl (``CURLOPT_RESOLVE``), so libcurl's
  threaded resolver, a thread per lookup, never runs; the addresses are kept
  ``DNS_TTL`` seconds;
- a request whose reused connection turns out dead before any answer is sent once
  more on a new connection (``_again``); aiohttp sees the close and never reuses it.

What the two transports share rather than mirror: ``check_head`` refuses what no
transport may send; cookies are the aiohttp transport's jar (``CookiePolicy``, never
libcurl's cookie engine); through a ``socks5://`` proxy the target is resolved here
and its address (IPv4 first) handed to the proxy; with an address policy and any
proxy, the target's addresses are checked before the transfer starts, the
proxy's own never. libcurl's errors are mapped once (``curl_mapping.py``) into
the ``RequestError`` tree, in the aiohttp transport's words.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pycurl
from yarl import URL

from aiograb._core.config import Limits, Network, Timeouts
from aiograb._core.errors import BlockedAddress, ConnectError, ConnectionReset, ProxyError
from aiograb._http.answers import WATCH
from aiograb._http.base import COMMON_METHODS, AddressPolicy, check_head
from aiograb._http.curl_exchange import HIGH_WATER, CurlExchange, Easy
from aiograb._http.curl_mapping import curl_failure, is_ip
from aiograb._http.curl_multi import Multis
from aiograb._http.curl_network import CurlNetwork
from aiograb._http.network import Proxy

__all__ = ["DNS_TTL", "HIGH_WATER", "CurlTransport"]

DNS_TTL = 300.0  # seconds a looked-up host's addresses are reused, as aiohttp's connector

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_DIED = "Connection died"  # libcurl: "Connection died, tried 5 times before giving up"


class CurlTransport:
    """libcurl's multi handles on the running loop: one thread, connections reused in C.

    ``limits.concurrency`` caps the open connections of each multi handle (a lane:
    ``curl_lanes.py``; a destination with more than 64 transfers at once
    is spread over several); per-host limits are enforced by ``Politeness``, as with
    the aiohttp transport. With an ``address_policy``,
    every address is checked right before a socket is opened for it (through a
    proxy: the target's addresses, before the transfer starts).
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
        self._multis: Multis | None = None  # libcurl's multi handles, once a request opens them
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[Easy] = []
        self._active: dict[Any, CurlExchange] = {}
        # host -> (expiry in loop time, its addresses, as CURLOPT_RESOLVE writes them)
        self._dns: dict[str, tuple[float, tuple[str, ...], str]] = {}
        self._resolver: Any = None
        # The last read-only headers mapping checked and formatted (a fetcher's shared
        # defaults, the same object on every plain request: checked once, not per
        # request), and its fields.
        self._fields_of: Mapping[str, str] | None = None
        self._fields: tuple[str, ...] = ()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    def _open(self) -> Multis:
        if self._multis is None:
            self._loop = asyncio.get_running_loop()
            self._multis = Multis(self._loop, self._limits.concurrency, self._finish)
        return self._multis

    # -- libcurl → the request ---------------------------------------------------------------

    def _finish(self, handle: Any, failure: tuple[int, str] | None) -> None:
        exchange = self._active.pop(handle, None)
        if exchange is None:  # aborted meanwhile: already removed
            return
        easy = exchange.easy
        assert easy is not None
        assert self._multis is not None  # only they finish a transfer
        self._multis.remove(easy)
        error = None
        if failure is not None:
            if failure[1].startswith(_DIED) and not exchange.status and not easy.fresh:
                self._again(easy, exchange)
                return
            error = curl_failure(easy, *failure, exchange.url, easy.proxy, exchange.raw_headers)
        exchange.on_done(error)

    def _again(self, easy: Easy, exchange: CurlExchange) -> None:
        """Send once more on a new connection. libcurl does not check a connection used
        within the last second before reusing it, and retries a dead one 5 times: after
        a burst through a proxy that closes each connection (tinyproxy), every cached
        one is dead. Nothing of the response had arrived."""
        easy.fresh = True
        easy.curl.setopt(pycurl.FRESH_CONNECT, 1)
        exchange.raw_headers.clear()
        self._active[easy.curl] = exchange
        assert self._multis is not None
        self._multis.add(easy, easy.key)  # the same destination: the lane it fits in now

    # -- requests ----------------------------------------------------------------------------

    def _handle(self) -> Easy:
        if self._idle:
            return self._idle.pop()
        easy = Easy(pycurl.Curl())
        self._base_options(easy)
        return easy

    def _base_options(self, easy: Easy) -> None:
        handle = easy.curl
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PATH_AS_IS, 1)  # the URL as our normal form wrote it
        handle.setopt(pycurl.ACCEPT_ENCODING, "")  # every coding libcurl decodes
        easy.clear()
        self._net.configure(easy)
        if self._address_policy is None:  # our opener all the same: it says why none opened
            handle.setopt(pycurl.OPENSOCKETFUNCTION, self._opener(easy, None))

    def _method(self, easy: Easy, method: str, body: bytes | None, fields: list[str]) -> None:
        handle = easy.curl
        if easy.method != "GET":  # back to a plain GET handle
            handle.reset()
            self._base_options(easy)
        if method == "GET" and body is None:
            return
        easy.method = method
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
    ) -> CurlExchange:
        if headers is self._fields_of:  # read-only and checked already (see __init__)
            if method not in COMMON_METHODS and (bad := check_head(method, {}, url)):
                raise bad
            fields = list(self._fields)
        else:
            if (invalid := check_head(method, headers, url)) is not None:
                raise invalid  # libcurl would send it as it is
            fields = self._header_fields(headers)
        self._open()
        easy = self._handle()
        handle = easy.curl
        text = str(url)
        exchange = CurlExchange(self, easy, text)
        if (watch := WATCH.get()) is not None:  # a hedged first copy (answers.py)
            watch.exchange = exchange
        if self._net.cookies is not None:
            self._cookie_field(exchange, url, fields)
        self._method(easy, method, body, fields)
        if easy.timeouts is not timeouts:
            handle.setopt(pycurl.TIMEOUT_MS, int(timeouts.total * 1000))
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(timeouts.connect * 1000))
            easy.timeouts = timeouts
        handle.setopt(pycurl.URL, text)
        handle.setopt(pycurl.HTTPHEADER, fields)
        handle.setopt(pycurl.HEADERFUNCTION, exchange.raw_headers.append)
        handle.setopt(pycurl.WRITEFUNCTION, exchange.on_body)
        proxy = self._net.proxy(easy, url)
        easy.unopened = None
        if self._address_policy is not None:
            easy.blocked = None
            # Through a proxy, sockets go to the proxy: the target is checked in _start.
            host = url.host or "" if proxy is None else None
            handle.setopt(pycurl.OPENSOCKETFUNCTION, self._opener(easy, host))
        absolute = proxy is not None and not proxy.is_socks and url.scheme == "http"
        # The target as the normal form wrote it: libcurl's URL parser upper-cases %7e.
        handle.setopt(pycurl.REQUEST_TARGET, text if absolute else url.raw_path_qs)
        self._route(exchange, url, proxy)
        return exchange

    def _header_fields(self, headers: Mapping[str, str]) -> list[str]:
        """``headers`` as libcurl's fields (checked by the caller); kept for the next
        request when it sends the same mapping."""
        fields = [f"{k}: {v}" for k, v in headers.items()]
        if "User-Agent" not in headers and not any(k.lower() == "user-agent" for k in headers):
            fields.append("User-Agent:")  # not pycurl's own, as aiohttp sends none either
        if type(headers) is MappingProxyType:  # nobody can change it under us: keep them
            self._fields_of, self._fields = headers, tuple(fields)
        return fields

    def _cookie_field(self, exchange: CurlExchange, url: URL, fields: list[str]) -> None:
        """The jar's ``Cookie`` field for ``url`` (merged with the request's own, as the
        aiohttp transport does); the response's cookies go back to the jar."""
        cookies = self._net.cookies
        assert cookies is not None
        given = None
        for i, field in enumerate(fields):
            if field[:7].lower() == "cookie:":
                given = fields.pop(i)[7:].strip()
                break
        value = cookies.header(url, given)
        if value:
            fields.append(f"Cookie: {value}")
        exchange.cookies, exchange.target = cookies, url

    def _route(self, exchange: CurlExchange, url: URL, proxy: Proxy | None) -> None:
        """Start the transfer now, or (a host name to look up first) when it is entered.

        Our addresses are needed for a direct request and through ``socks5://``
        (CURLOPT_RESOLVE), and to check the target with an address policy; an IP
        literal is its own address. Else the proxy looks the name up itself. A
        proxy given by name is looked up here too, never by libcurl.
        """
        if proxy is not None and self._known(proxy.host) is None:
            exchange.resolve = url
        elif not self._needs_target(proxy):
            self._start(exchange, url, None)
        elif (entry := self._known(url.raw_host or "")) is not None:
            self._start(exchange, url, entry[1], entry[2])
        else:  # looked up on the loop by c-ares when the request is entered
            exchange.resolve = url

    def _needs_target(self, proxy: Proxy | None) -> bool:
        """Whether the target's addresses are ours to find: no proxy, ``socks5://``,
        or an address policy to check them with."""
        remote = proxy is not None and (not proxy.is_socks or proxy.remote_dns)
        return not remote or self._address_policy is not None

    def _known(self, host: str) -> tuple[float, tuple[str, ...], str] | None:
        """``host``'s addresses while they are fresh (an IP literal: kept, parsed once)."""
        entry = self._dns.get(host)
        if entry is None and is_ip(host):
            entry = self._dns[host] = (float("inf"), (host,), "")
        return entry if entry is not None and entry[0] > self.loop.time() else None

    def _start(
        self,
        exchange: CurlExchange,
        url: URL,
        addresses: tuple[str, ...] | None,
        resolve: str = "",
    ) -> None:
        """Hand the transfer to libcurl with the target's addresses (None: the proxy
        resolves it; ``resolve``: them as CURLOPT_RESOLVE writes them, "" for an IP
        literal); through a proxy, the address policy checks them first."""
        easy = exchange.easy
        assert easy is not None
        handle, proxy = easy.curl, easy.proxy
        host, port = url.raw_host or "", url.port or 0
        if proxy is not None and addresses is not None and self._address_policy is not None:
            try:
                for address in addresses:
                    self._address_policy(url.host or "", address)
            except BlockedAddress as exc:
                exchange.on_done(exc)  # raised when the request is entered; nothing sent
                return
        lines = []
        if proxy is None:
            if resolve:
                lines.append(f"{host}:{port}:{resolve}")
        else:
            if proxy.is_socks:  # the target as the proxy is told it: a name, or our address
                dest = host
                if not proxy.remote_dns and addresses is not None:
                    dest = min(addresses, key=lambda a: ":" in a)  # IPv4 first, as python-socks
                    if resolve:  # a name (an IP literal has no RESOLVE string)
                        lines.append(f"{host}:{port}:{_bracket(dest)}")
                easy.dest, easy.port = dest, port
            at = self._dns.get(proxy.host)
            if at is not None and at[2]:  # the proxy by name: the addresses we found
                lines.append(f"{proxy.host}:{proxy.port}:{at[2]}")
        if lines:
            handle.setopt(pycurl.RESOLVE, lines)
        self._active[handle] = exchange
        self._open().add(easy, (host, port) if proxy is None else (proxy.host, proxy.port))

    async def resolve_then_start(self, exchange: CurlExchange, url: URL) -> None:
        """Look the proxy's name and the target's up without a thread (c-ares on the
        loop), as needed, hand libcurl the addresses (``CURLOPT_RESOLVE``), so its
        threaded resolver never runs, and start."""
        exchange.resolve = None
        assert exchange.easy is not None
        proxy = exchange.easy.proxy
        if proxy is not None and self._known(proxy.host) is None:
            try:
                await self._lookup(proxy.host, proxy.port)
            except OSError as exc:
                raise ProxyError(
                    f"cannot resolve the proxy {proxy.host}: {exc.strerror or exc}",
                    url=exchange.url,
                ) from exc
        if not self._needs_target(proxy):
            self._open()
            self._start(exchange, url, None)
            return
        host = url.raw_host or ""
        entry = self._known(host)
        if entry is None:
            try:
                entry = await self._lookup(host, url.port or 0)
            except OSError as exc:
                raise ConnectError(
                    f"DNS lookup failed: {exc.strerror or exc}", url=exchange.url, code="dns_error"
                ) from exc
        self._open()
        self._start(exchange, url, entry[1], entry[2])

    async def _lookup(self, host: str, port: int) -> tuple[float, tuple[str, ...], str]:
        if self._resolver is None:
            from aiograb._http.resolver import ThreadlessResolver

            self._resolver = ThreadlessResolver()
        found = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        addresses = tuple(r["host"] for r in found)
        joined = ",".join(_bracket(a) for a in addresses)
        entry = self._dns[host] = (self.loop.time() + DNS_TTL, addresses, joined)
        return entry

    def _opener(self, easy: Easy, host: str | None) -> Any:
        """libcurl's socket opener: each address checked by the policy (``host``: the
        target's name; None: the socket goes to a proxy, or there is no policy: not
        checked). A socket the OS refuses (EMFILE) is kept for ``curl_failure``: libcurl's
        own opener would say only "Could not connect to server"."""
        policy = self._address_policy
        loop = self.loop

        def open_socket(_purpose: int, address: Any) -> Any:
            if host is not None and policy is not None:
                try:
                    policy(host, address.addr[0])
                except BlockedAddress as exc:
                    easy.blocked = exc
                    return pycurl.SOCKET_BAD
            try:
                sock = socket.socket(address.family, address.socktype, address.protocol)
            except OSError as exc:  # out of descriptors (EMFILE): curl_failure says so
                easy.unopened = exc
                return pycurl.SOCKET_BAD
            try:  # room for pycurl's dup() (whose failure it does not say): the lowest
                os.close(os.dup(sock.fileno()))  # free number, which its dup() takes next
            except OSError as exc:
                sock.close()
                easy.unopened = exc
                return pycurl.SOCKET_BAD
            # pycurl connects a dup() of it: this copy goes once the callback is over.
            loop.call_soon(sock.close)
            return sock

        return open_socket

    def abort(self, exchange: CurlExchange) -> None:
        """Drop an unfinished transfer (its connection is closed) and free its handle."""
        easy = exchange.easy
        if easy is not None and self._active.pop(easy.curl, None) is not None and self._multis:
            self._multis.remove(easy)
        self.release(exchange)

    def release(self, exchange: CurlExchange) -> None:
        easy = exchange.forget()
        if easy is None:
            return
        if easy.fresh:
            easy.fresh = False
            easy.curl.setopt(pycurl.FRESH_CONNECT, 0)
        if self._multis is None:
            easy.curl.close()
        else:
            self._idle.append(easy)

    async def aclose(self) -> None:
        multis, self._multis = self._multis, None
        if multis is None:
            return
        for exchange in list(self._active.values()):
            if exchange.easy is not None:
                multis.remove(exchange.easy)
            exchange.on_done(ConnectionReset("transport closed", url=exchange.url))
        self._active.clear()
        for easy in self._idle:
            easy.curl.close()
        self._idle.clear()
        multis.close()
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None


def _bracket(address: str) -> str:
    return f"[{address}]" if ":" in address else address
