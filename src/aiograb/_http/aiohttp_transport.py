"""The single seam between aiograb and its HTTP client (aiohttp).

``AiohttpTransport`` implements ``_http.base.Transport``: the fetcher asks it to
``send`` one request and reads the body in chunks; it never sees an aiohttp
object or exception. Every foreign error is translated here, once, into the
``RequestError`` tree (most specific first).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from aiograb._core.config import Limits, Network, Timeouts
from aiograb._core.errors import (
    NO_DESCRIPTORS,
    BadEncoding,
    ConnectError,
    ConnectionReset,
    InvalidURL,
    ProtocolError,
    ProxyError,
    RequestError,
    Timeout,
    TLSCertificateError,
    TLSError,
    Truncated,
    socket_error,
)
from aiograb._http.base import AddressPolicy, Headers, ResponseStream, Transport, check_head
from aiograb._http.cookies import cookie_jar, read_cookies
from aiograb._http.network import Proxy, ProxyRoutes, cert_reason, ssl_context, ssl_reason
from aiograb._http.resolver import ThreadlessResolver

# AddressPolicy, ResponseStream and Transport live in _http.base; re-exported for older imports.
__all__ = ["AddressPolicy", "AiohttpTransport", "ResponseStream", "Transport", "translate"]

CHUNK = 64 * 1024


def translate(exc: BaseException, url: str) -> BaseException:
    """The aiograb error for an aiohttp or OS error, most specific first.

    Returns ``exc`` itself when it is ours already or foreign to the network.
    """
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLSCertificateError(
            f"TLS certificate not accepted: {cert_reason(exc.certificate_error)}", url=url
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return TLSError(f"TLS handshake failed: {ssl_reason(exc.os_error)}", url=url)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return ProxyError(f"cannot connect to the proxy: {exc.os_error}", url=url)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        error = ProxyError(f"the proxy refused: HTTP {exc.status} {exc.message}", url=url)
        error.retryable = exc.status >= 500
        return error
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ConnectError(f"DNS lookup failed: {exc.os_error}", url=url, code="dns_error")
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return ConnectError("connection refused", url=url, code="connect_refused")
        if isinstance(exc.os_error, TimeoutError):
            return Timeout("connect timed out", url=url)
        if exc.os_error.errno in NO_DESCRIPTORS:  # the socket was never opened
            return socket_error(exc.os_error.errno, exc.os_error.strerror or "", url)
        return ConnectError(f"cannot connect: {exc.os_error}", url=url)
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.SocketTimeoutError):
        return Timeout(str(exc) or "timed out", url=url)
    if isinstance(exc, TimeoutError):
        return Timeout("deadline exceeded (timeouts.total)", url=url)
    if isinstance(exc, aiohttp.ClientPayloadError):
        # aiohttp keeps the connection error only in the message when the peer
        # reset the connection mid-body (a clean close leaves it out).
        if _caused_by(exc, ConnectionResetError) or "ConnectionResetError" in str(exc):
            return ConnectionReset("connection reset while reading the body", url=url)
        text = _root_message(exc)
        if "content-encoding" in text.lower():  # aiohttp's ContentEncodingError, as text
            encoding = text.rsplit(":", 1)[-1].strip() or "its Content-Encoding"
            return BadEncoding(
                f"the body is not {encoding} although the response's Content-Encoding says so",
                url=url,
            )
        return Truncated(f"body ended early: {text}", url=url)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectionReset("server closed the connection", url=url, code="server_disconnected")
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidURL(f"invalid URL: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientResponseError) and "Please install" in str(exc.message):
        # A Content-Encoding aiohttp cannot decode here (br without the Brotli package).
        return BadEncoding(
            f"the body is in an encoding this installation cannot decode: {_one_line(exc.message)}",
            url=url,
        )
    if isinstance(exc, aiohttp.ClientResponseError):  # malformed status line or headers
        return ProtocolError(f"bad HTTP response: {_one_line(exc.message)}", url=url)
    if isinstance(exc, aiohttp.ClientOSError | ConnectionResetError | BrokenPipeError):
        if isinstance(exc, ConnectionResetError) or _caused_by(exc, ConnectionResetError):
            return ConnectionReset("connection reset by peer", url=url)
        return ConnectError(f"network error: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientError):
        return ProtocolError(f"{type(exc).__name__}: {_one_line(exc)}", url=url)
    return exc


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_message(exc: BaseException) -> str:
    """The innermost cause's message, on one line, without aiohttp's "400, message:"."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return _one_line(re.sub(r"^\d{3}, message:", "", str(text)))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class _Stream:
    __slots__ = ("_resp", "_url", "headers", "status", "url")

    def __init__(self, resp: aiohttp.ClientResponse, url: str) -> None:
        self._resp = resp
        self._url = url
        self.status = resp.status
        self.headers: Headers = resp.headers
        self.url = str(resp.url)

    async def read_chunk(self) -> bytes:
        try:
            return await self._resp.content.readany()
        except Exception as exc:
            mapped = translate(exc, self._url)
            if mapped is exc:
                raise
            raise mapped from exc

    async def read_all(self) -> bytes:
        try:
            return await self._resp.read()
        except Exception as exc:
            mapped = translate(exc, self._url)
            if mapped is exc:
                raise
            raise mapped from exc


class _Send:
    """``async with transport.send(...) as response``: one request, errors translated.

    A plain class rather than ``@asynccontextmanager``: this is on every request's path.
    """

    __slots__ = ("_ctx", "_url")

    def __init__(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
        proxy: URL | None = None,
    ) -> None:
        self._url = str(url)
        self._ctx = session.request(
            method,
            url,
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=timeout,
            raise_for_status=False,
            proxy=proxy,
        )

    async def __aenter__(self) -> _Stream:
        try:
            resp = await self._ctx.__aenter__()
        except Exception as exc:
            mapped = translate(exc, self._url)
            if mapped is exc:
                raise
            raise mapped from exc
        return _Stream(resp, self._url)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._ctx.__aexit__(exc_type, exc, tb)


# Set while the connector connects to an HTTP proxy for a request whose target
# was already checked: the address policy guards targets, not the user's proxy.
_TO_PROXY: ContextVar[bool] = ContextVar("aiograb_to_proxy", default=False)


class _Connector(aiohttp.TCPConnector):
    """A TCPConnector that connects without a thread hop under uvloop.

    aiohttp connects through aiohappyeyeballs, whose ``loop.sock_connect`` makes
    uvloop call ``getaddrinfo`` in libuv's thread pool even for an address that
    is already numeric (four extra OS threads). Here the already-resolved
    addresses are handed to ``loop.create_connection`` with the socket type set,
    which uvloop resolves statically, on the loop; they are tried in order.
    Other loops keep the standard path. An ``address_policy``, when set, sees
    every target address before anything connects to it, also when the request
    goes through a proxy (the target is resolved here first). ``routes`` picks
    SOCKS proxies, which this connector speaks itself (``_http/socks.py``);
    HTTP proxies are aiohttp's own (``proxy=`` on the request). ``tls`` is the
    context of every TLS connection; its server name is always the URL's host.
    """

    address_policy: AddressPolicy | None = None
    routes: ProxyRoutes | None = None
    tls: ssl.SSLContext | None = None

    async def _create_connection(
        self,
        req: Any,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Any:
        proxy = None if self.routes is None else self.routes.for_url(req.url)
        if proxy is not None and proxy.is_socks:
            return await self._socks_connection(proxy, req, traces, timeout)
        if req.proxy is None:
            return await super()._create_connection(req, traces, timeout)
        if self.address_policy is not None:
            await self._resolve_target(req, traces)
        token = _TO_PROXY.set(True)
        try:
            return await super()._create_connection(req, traces, timeout)
        finally:
            _TO_PROXY.reset(token)

    async def _resolve_target(self, req: Any, traces: list[Any]) -> list[Any]:
        """The target's addresses (DNS on the loop, cached), each checked by the policy."""
        host, port = req.url.raw_host or "", req.port or 0
        try:
            hosts = await self._resolve_host(host, port, traces=traces)
        except OSError as exc:
            raise aiohttp.ClientConnectorDNSError(req.connection_key, exc) from exc
        if self.address_policy is not None:
            for info in hosts:
                self.address_policy(req.url.host or "", info["host"])
        return hosts

    async def _socks_connection(
        self,
        proxy: Proxy,
        req: Any,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> Any:
        from aiograb._http.socks import open_socks

        host = req.url.raw_host or ""
        dest = host
        if not proxy.remote_dns or self.address_policy is not None:
            hosts = await self._resolve_target(req, traces)
            if not proxy.remote_dns:  # IPv4 first, as python-socks itself would pick
                dest = min(hosts, key=lambda info: info["family"] != socket.AF_INET)["host"]
        try:
            at = (await self._resolve_host(proxy.host, proxy.port))[0]["host"]
        except OSError as exc:
            raise ProxyError(
                f"cannot resolve the proxy {proxy.host}: {exc}", url=str(req.url)
            ) from exc
        try:
            _, protocol = await open_socks(
                proxy,
                at,
                dest,
                req.port or 0,
                sslcontext=self.tls if req.is_ssl() else None,
                server_hostname=host.rstrip("."),
                connect_timeout=timeout.sock_connect or timeout.connect,
                url=str(req.url),
            )
        except ssl.CertificateError as exc:
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl.SSLError as exc:
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        return protocol

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[Any],
        req: Any,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> Any:
        if self.address_policy is not None and not _TO_PROXY.get():
            for info in addr_infos:
                self.address_policy(req.url.host or "", info[4][0])
        if not _is_uvloop(self._loop) or self._local_addr_infos:
            return await super()._wrap_create_connection(
                *args,
                addr_infos=addr_infos,
                req=req,
                timeout=timeout,
                client_error=client_error,
                **kwargs,
            )
        # Like happy eyeballs without the race: each address in turn.
        last: OSError | None = None
        for family, _type, proto, _name, address in addr_infos:
            try:
                async with asyncio.timeout(timeout.sock_connect):
                    loop: Any = self._loop
                    return await loop.create_connection(
                        *args,
                        host=address[0],
                        port=address[1],
                        family=family,
                        proto=proto,
                        **kwargs,
                    )
            except ssl.CertificateError as exc:
                raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
            except ssl.SSLError as exc:
                raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
            except OSError as exc:
                if isinstance(exc, TimeoutError):
                    raise
                last = exc
        raise client_error(req.connection_key, last or OSError("no address to connect to"))


def _is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.startswith("uvloop")


_TLS_SHUTDOWN_S = 0.25  # seconds given to TLS connections to close after the session


class AiohttpTransport:
    """One shared aiohttp ``ClientSession`` sized to the run's concurrency.

    Per-host limits are enforced by ``Politeness``, so the connector only caps
    the total; keep-alive connections are reused. ``network`` sets TLS
    verification, the proxy (``None``: from the environment) and cookies: without
    a cookie file no cookie is kept (a bulk download has no session state, and
    the cookie jar costs CPU per response). The SSL context, proxies and cookie
    file are loaded here, before any request: a bad one is a ``UsageError``.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        network: Network | None = None,
        resolver: AbstractResolver | None = None,
        address_policy: AddressPolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        network = network or Network()
        self._limits = limits
        self._resolver = resolver
        self._address_policy = address_policy
        self._tls = ssl_context(network)
        routes = ProxyRoutes(network.proxy, environ)
        self._routes = routes if routes else None  # None: no lookup per request
        self._cookies = read_cookies(network.cookies) if network.cookies else None
        self._session: aiohttp.ClientSession | None = None
        self._tls_used = False  # an https request was sent: close waits for TLS shutdowns
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = _Connector(
                limit=self._limits.concurrency,
                limit_per_host=0,
                ttl_dns_cache=300,
                resolver=self._resolver or ThreadlessResolver(),
                keepalive_timeout=30,
                ssl=self._tls,
            )
            connector.address_policy = self._address_policy
            connector.routes = self._routes
            connector.tls = self._tls
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=(
                    aiohttp.DummyCookieJar() if self._cookies is None else cookie_jar(self._cookies)
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def send(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> _Send:
        if (invalid := check_head(method, headers, url)) is not None:
            raise invalid  # refused as every transport refuses it, before aiohttp sees it
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)
            self._timeouts[timeouts] = timeout
        proxy = None if self._routes is None else self._routes.for_url(url)
        via = proxy.url if proxy is not None and not proxy.is_socks else None
        if url.scheme == "https":
            self._tls_used = True
        return _Send(self._open(), method, url, headers, body, timeout, via)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            # A TLS connection finishes its close_notify exchange after the session has let
            # it go; closing the loop before that leaks the transport (aiohttp's "graceful
            # shutdown" advice). Plain connections need one loop turn.
            await asyncio.sleep(_TLS_SHUTDOWN_S if self._tls_used else 0)
