"""A connection through a SOCKS5 proxy, for the connector (python-socks does the protocol).

Why not aiohttp-socks' ``ProxyConnector``: it is one proxy per connector (so
``NO_PROXY`` would need a second pool), it has no hook to check the *target*
address against the crawl's address policy, and for ``socks5://`` it lets
python-socks resolve names with ``loop.getaddrinfo``, i.e. in a thread pool.
Here the connector resolves the target itself on the loop (c-ares), checks it,
and hands python-socks an address (``socks5://``) or the name (``socks5h://``);
TLS to the target is then started with the URL's host as SNI and checked name.
"""

from __future__ import annotations

import asyncio
import ssl

from aiohttp.client_proto import ResponseHandler

from aiograb._core.errors import ProxyError
from aiograb._http.network import TRANSIENT_SOCKS_REPLIES, Proxy

__all__ = ["open_socks"]


class _Handler(ResponseHandler):
    """Keeps the stream's writer alive: a collected ``StreamWriter`` closes its transport."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter) -> None:
        super().__init__(loop)
        self._writer = writer


async def open_socks(
    proxy: Proxy,
    proxy_address: str,
    dest_host: str,
    dest_port: int,
    *,
    sslcontext: ssl.SSLContext | None,
    server_hostname: str,
    connect_timeout: float | None,
    url: str,
) -> tuple[asyncio.BaseTransport, ResponseHandler]:
    """Connect to ``dest_host:dest_port`` through ``proxy`` (at ``proxy_address``).

    Raises ``ProxyError`` when the proxy cannot be reached or refuses, and the
    ``ssl`` errors of the handshake to the target as they are.
    """
    import python_socks
    from python_socks.async_.asyncio.v2 import Proxy as SocksProxy

    socks = SocksProxy(
        proxy_type=python_socks.ProxyType.SOCKS5,
        host=proxy_address,
        port=proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=proxy.remote_dns,
    )
    where = f"SOCKS proxy {proxy.host}:{proxy.port}"
    try:
        stream = await socks.connect(
            dest_host=dest_host, dest_port=dest_port, timeout=connect_timeout
        )
    except python_socks.ProxyTimeoutError as exc:
        raise ProxyError(f"{where}: timed out", url=url) from exc
    except python_socks.ProxyConnectionError as exc:
        raise ProxyError(f"{where}: {exc}", url=url) from exc
    except python_socks.ProxyError as exc:
        error = ProxyError(f"{where} refused {dest_host}:{dest_port}: {exc}", url=url)
        error.retryable = exc.error_code in TRANSIENT_SOCKS_REPLIES
        raise error from exc
    try:
        if sslcontext is not None:
            stream = await stream.start_tls(hostname=server_hostname, ssl_context=sslcontext)
    except BaseException:
        await stream.close()
        raise
    loop = asyncio.get_running_loop()
    transport = stream.writer.transport
    protocol = _Handler(loop, stream.writer)
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    return transport, protocol
