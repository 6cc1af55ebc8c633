"""The single seam between aiograb and its HTTP client (aiohttp).

The engine asks a ``Transport`` to ``send`` one request and reads the body in
chunks; it never sees an aiohttp object or exception. Every foreign error is
translated here, once, into the ``RequestError`` tree (most specific first).
Tests of pure logic can pass any object with the same two methods.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from aiograb._core.config import Limits, Timeouts
from aiograb._core.errors import (
    BadEncoding,
    ConnectError,
    ConnectionReset,
    InvalidURL,
    ProtocolError,
    RequestError,
    Timeout,
    Truncated,
)

__all__ = ["AddressPolicy", "AiohttpTransport", "ResponseStream", "Transport"]

CHUNK = 64 * 1024

# Called with (host, address) right before connecting to ``address``, the address
# actually connected to (so DNS rebinding cannot get around it); raises
# ``BlockedAddress`` to refuse.
AddressPolicy = Callable[[str, str], None]


class ResponseStream(Protocol):
    status: int
    headers: Mapping[str, str]
    url: str

    async def read_chunk(self) -> bytes:
        """The next piece of the body; ``b""`` at the end."""
        ...

    async def read_all(self) -> bytes:
        """The whole (rest of the) body at once: for small bodies of known length."""
        ...


class Transport(Protocol):
    def send(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> Any:
        """An async context manager yielding a ``ResponseStream``."""
        ...

    async def aclose(self) -> None: ...


def translate(exc: BaseException, url: str) -> BaseException:
    """The aiograb error for an aiohttp or OS error, most specific first.

    Returns ``exc`` itself when it is ours already or foreign to the network.
    """
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ConnectError(f"DNS lookup failed: {exc.os_error}", url=url, code="dns_error")
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return ConnectError("connection refused", url=url, code="connect_refused")
        if isinstance(exc.os_error, TimeoutError):
            return Timeout("connect timed out", url=url)
        return ConnectError(f"cannot connect: {exc.os_error}", url=url)
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.SocketTimeoutError):
        return Timeout(str(exc) or "timed out", url=url)
    if isinstance(exc, TimeoutError):
        return Timeout("deadline exceeded (--timeout)", url=url)
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
        self.headers: Mapping[str, str] = resp.headers
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


class ThreadlessResolver(AbstractResolver):
    """DNS through c-ares on the event loop itself.

    aiohttp's default resolver runs ``getaddrinfo`` in a thread pool, and
    aiodns with pycares >= 5 starts an event thread of its own; this one asks
    c-ares to report its sockets to the loop instead, so resolving adds no
    event thread. The c-ares channel is created on the first name to resolve
    (pycares 5 starts one idle helper thread per process when a channel is
    made), so a run over IP addresses stays on one thread. Answers are cached
    by the connector (``ttl_dns_cache``).
    """

    def __init__(self) -> None:
        self._resolver: Any = None

    def _channel(self) -> Any:
        if self._resolver is None:
            import aiodns
            import pycares

            class _LoopDNSResolver(aiodns.DNSResolver):
                def _make_channel(self, **kwargs: Any) -> tuple[bool, Any]:
                    def on_sock_state(fd: int, readable: bool, writable: bool) -> None:
                        self._sock_state_cb(fd, readable, writable)

                    return False, pycares.Channel(
                        sock_state_cb=on_sock_state, timeout=self._timeout, **kwargs
                    )

            self._resolver = _LoopDNSResolver(loop=asyncio.get_running_loop())
        return self._resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        import aiodns

        try:
            answer = await self._channel().getaddrinfo(
                host, family=family, port=port, type=socket.SOCK_STREAM
            )
        except aiodns.error.DNSError as exc:
            msg = exc.args[1] if len(exc.args) >= 2 else "DNS lookup failed"
            raise OSError(None, msg) from exc
        hosts: list[ResolveResult] = []
        for node in answer.nodes:
            address: tuple[Any, ...] = node.addr
            hosts.append(
                ResolveResult(
                    hostname=host,
                    host=address[0].decode() if isinstance(address[0], bytes) else address[0],
                    port=address[1],
                    family=node.family,
                    proto=0,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not hosts:
            raise OSError(None, "DNS lookup returned no addresses")
        return hosts

    async def close(self) -> None:
        if self._resolver is not None:
            self._resolver.cancel()
            self._resolver = None


class _Connector(aiohttp.TCPConnector):
    """A TCPConnector that connects without a thread hop under uvloop.

    aiohttp connects through aiohappyeyeballs, whose ``loop.sock_connect`` makes
    uvloop call ``getaddrinfo`` in libuv's thread pool even for an address that
    is already numeric (four extra OS threads). Here the already-resolved
    addresses are handed to ``loop.create_connection`` with the socket type set,
    which uvloop resolves statically, on the loop; they are tried in order.
    Other loops keep the standard path. An ``address_policy``, when set, sees
    every address before anything connects to it.
    """

    address_policy: AddressPolicy | None = None

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[Any],
        req: Any,
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> Any:
        if self.address_policy is not None:
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
            except OSError as exc:
                if isinstance(exc, TimeoutError):
                    raise
                last = exc
        raise client_error(req.connection_key, last or OSError("no address to connect to"))


def _is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.startswith("uvloop")


class AiohttpTransport:
    """One shared aiohttp ``ClientSession`` sized to the run's concurrency.

    Per-host limits are enforced by ``Politeness``, so the connector only caps
    the total; keep-alive connections are reused; cookies are not kept (a bulk
    download has no session state, and the cookie jar costs CPU per response).
    """

    def __init__(
        self,
        limits: Limits,
        *,
        resolver: AbstractResolver | None = None,
        address_policy: AddressPolicy | None = None,
    ) -> None:
        self._limits = limits
        self._resolver = resolver
        self._address_policy = address_policy
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = _Connector(
                limit=self._limits.concurrency,
                limit_per_host=0,
                ttl_dns_cache=300,
                resolver=self._resolver or ThreadlessResolver(),
                keepalive_timeout=30,
            )
            connector.address_policy = self._address_policy
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
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
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect)
            self._timeouts[timeouts] = timeout
        return _Send(self._open(), method, url, headers, body, timeout)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
