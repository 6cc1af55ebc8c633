"""``MockTransport``: a transport that answers from a function, for your own tests.

Like httpx's ``MockTransport``: no sockets, no server; every request aiograb
would send is handed to your function, and what it returns is the response.
Everything above the transport is the real code: redirects, retries,
limits, the accept policy, the journal and the manifest::

    from aiograb.testing import MockResponse, MockTransport

    def answer(request):
        if request.url.endswith("/moved"):
            return MockResponse(302, {"Location": "/cat.png"})
        return MockResponse(200, {"Content-Type": "image/png"}, PNG_BYTES)

    aiograb.download(["https://example.org/moved"], "out/", transport=MockTransport(answer))

The function may be ``async``; it may raise a ``RequestError`` (e.g.
``ConnectError("refused", code="connect_refused")``) to act as a network failure.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from yarl import URL

from aiograb._core.config import Timeouts
from aiograb._http.base import Headers, make_headers

__all__ = ["MockHandler", "MockRequest", "MockResponse", "MockTransport"]


@dataclass(frozen=True, slots=True)
class MockRequest:
    """One request as aiograb sends it (after its own headers and redirects)."""

    method: str
    url: str
    headers: Headers  # case-insensitive
    body: bytes | None
    timeouts: Timeouts


@dataclass(frozen=True, slots=True)
class MockResponse:
    """The answer to a ``MockRequest``.

    ``body`` is bytes (sent with a ``Content-Length`` unless ``headers`` has
    one) or an iterable of chunks (streamed, without a length).
    """

    status: int = 200
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""


MockHandler = Callable[[MockRequest], MockResponse | Awaitable[MockResponse]]


class _Stream:
    __slots__ = ("_chunks", "headers", "status", "url")

    def __init__(self, response: MockResponse, url: str) -> None:
        body = response.body
        headers = make_headers(response.headers)
        if isinstance(body, bytes | bytearray | memoryview):
            if "Content-Length" not in headers:
                headers = make_headers([*headers.items(), ("Content-Length", str(len(body)))])
            self._chunks: Iterator[bytes] = iter([bytes(body)] if body else [])
        else:
            self._chunks = (bytes(chunk) for chunk in body if chunk)
        self.status = response.status
        self.headers = headers
        self.url = url

    async def read_chunk(self) -> bytes:
        return next(self._chunks, b"")

    async def read_all(self) -> bytes:
        return b"".join(self._chunks)


class _Send:
    __slots__ = ("_handler", "_request")

    def __init__(self, handler: MockHandler, request: MockRequest) -> None:
        self._handler, self._request = handler, request

    async def __aenter__(self) -> _Stream:
        answer = self._handler(self._request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, MockResponse):
            raise TypeError(f"the MockTransport handler returned {answer!r}, not a MockResponse")
        return _Stream(answer, self._request.url)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class MockTransport:
    """A ``Transport`` whose responses come from ``handler(request)``; see the module doc."""

    def __init__(self, handler: MockHandler) -> None:
        self._handler = handler

    def send(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeouts: Timeouts,
    ) -> _Send:
        request = MockRequest(method, str(url), make_headers(headers), body, timeouts)
        return _Send(self._handler, request)

    async def aclose(self) -> None:
        return None
