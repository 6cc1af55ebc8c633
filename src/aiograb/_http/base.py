"""The seam between aiograb and an HTTP client, as types.

The fetchers ask a transport to ``send`` one request (redirects are theirs to
follow, never the transport's) and read the body in chunks. They see only
what is declared here: a status, case-insensitive headers, the URL answered
and the body; never a foreign object or exception. A transport maps its
client's errors into the ``RequestError`` tree itself, in one place.

- ``Transport``: the event-loop seam (``AiohttpTransport``, ``aiograb.testing.MockTransport``).
- ``BlockingTransport``: the same for the ``sync``/``threads`` engines (``Urllib3Transport``).
- ``check_head``: what no transport may send (CR/LF in a header, a bad method), refused
  the same way by each before anything reaches its client.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Protocol

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from aiograb._core.config import Timeouts
from aiograb._core.errors import InvalidRequest

__all__ = [
    "COMMON_METHODS",
    "AddressPolicy",
    "BlockingResponse",
    "BlockingTransport",
    "Headers",
    "ResponseStream",
    "Transport",
    "check_head",
    "make_headers",
]

# Response headers, looked up case-insensitively whichever transport made them
# (``headers["content-type"]`` is ``headers["Content-Type"]``); a repeated header
# keeps each value (``headers.getall("Set-Cookie")``).
Headers = CIMultiDictProxy[str]

# Called with (host, address) right before connecting to ``address``, the address
# actually connected to (so DNS rebinding cannot get around it); raises
# ``BlockedAddress`` to refuse.
AddressPolicy = Callable[[str, str], None]


def make_headers(items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> Headers:
    """Case-insensitive ``Headers`` from a mapping or from (name, value) pairs."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return CIMultiDictProxy(CIMultiDict(pairs))


COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP method (RFC 9110 token)
_BAD_CHARS = re.compile(r"[\r\n\0]")


def check_head(method: str, headers: Mapping[str, str], url: URL | str) -> InvalidRequest | None:
    """The error for a request that cannot be sent as given, else None: a header name or
    value with CR, LF or NUL (it would inject headers), or a method that is not an HTTP
    token. Every transport asks this before its client sees the request, so the answer
    (and its message) is the same whichever transport is used.

    >>> check_head("GET", {"X-A": "1\\r\\nInjected: yes"}, "http://h/").code
    'invalid_request'
    """
    for name, value in headers.items():
        # isprintable() is the fast test: CR, LF and NUL are not printable (nor is a tab,
        # which the exact test below lets through).
        if name.isprintable() and isinstance(value, str) and value.isprintable():
            continue
        if _BAD_CHARS.search(name) or _BAD_CHARS.search(str(value)):
            return InvalidRequest(f"header {name!r} contains CR, LF or NUL", url=str(url))
    if method not in COMMON_METHODS and not _TOKEN.fullmatch(method):
        return InvalidRequest(f"invalid method {method!r}", url=str(url))
    return None


class ResponseStream(Protocol):
    """One response of ``Transport.send``: its head at once, its body on demand."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Headers: ...

    @property
    def url(self) -> str:
        """The URL this response answers (the hop's URL; redirects are not followed)."""
        ...

    async def read_chunk(self) -> bytes:
        """The next piece of the (decoded) body; ``b""`` at the end."""
        ...

    async def read_all(self) -> bytes:
        """The whole (rest of the) body at once: for small bodies of known length."""
        ...


class Transport(Protocol):
    """Sends one request at a time on the event loop; shared by every task of a run."""

    def send(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> AbstractAsyncContextManager[ResponseStream]:
        """``async with transport.send(...) as response``; raises ``RequestError`` only."""
        ...

    async def aclose(self) -> None: ...


class BlockingResponse(Protocol):
    """One response of ``BlockingTransport.send``."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Headers: ...

    @property
    def url(self) -> str: ...

    def read_chunk(self) -> bytes:
        """The next piece of the (decoded) body; ``b""`` at the end."""
        ...


class BlockingTransport(Protocol):
    """Sends one request on the calling thread; safe to share among threads."""

    def send(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> AbstractContextManager[BlockingResponse]:
        """``with transport.send(...) as response``: the connection is reused when the
        body was read to its end or not at all (it is drained), closed otherwise."""
        ...

    def close(self) -> None: ...
