"""DNS on the event loop itself (c-ares through aiodns), with no resolver thread."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["ThreadlessResolver"]


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
