"""The blocking transport (urllib3) of the ``sync`` and ``threads`` engines.

``Urllib3Transport`` implements ``_http.base.BlockingTransport``: each thread
keeps its own keep-alive pool (urllib3's pools are not shared between threads
here, so no lock is held while a request runs). Every urllib3/OS error is
translated here, once, into the ``RequestError`` tree (most specific first).
"""

from __future__ import annotations

import base64
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import urllib3
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection
from yarl import URL

from aiograb._core.config import Network, Timeouts
from aiograb._core.errors import (
    ConnectError,
    ConnectionReset,
    InvalidURL,
    ProtocolError,
    RequestError,
    Timeout,
    TLSCertificateError,
    TLSError,
    Truncated,
)
from aiograb._http.base import Headers, check_head, make_headers
from aiograb._http.network import cert_reason, ssl_context

__all__ = ["Urllib3Transport", "map_errors"]

CHUNK = 64 * 1024
DRAIN_LIMIT = 256 * 1024  # read and discard at most this much to keep a connection


@contextmanager
def map_errors(url: str) -> Iterator[None]:
    """Translate urllib3 and OS errors raised inside into aiograb's, for ``url``."""
    try:
        yield
    except RequestError:
        raise
    except u3.NameResolutionError as exc:
        raise ConnectError(f"DNS lookup failed: {exc}", url=url, code="dns_error") from exc
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first.
    except u3.NewConnectionError as exc:
        if "refused" in str(exc).lower():
            raise ConnectError("connection refused", url=url, code="connect_refused") from exc
        raise ConnectError(f"cannot connect: {exc}", url=url) from exc
    except (u3.ConnectTimeoutError, u3.ReadTimeoutError, TimeoutError) as exc:
        raise Timeout(f"timed out: {exc}", url=url) from exc
    except u3.ProtocolError as exc:
        if "reset" in str(exc).lower():
            raise ConnectionReset("connection reset by peer", url=url) from exc
        if "IncompleteRead" in str(exc) or "ended prematurely" in str(exc):
            raise Truncated(f"body ended early: {exc}", url=url) from exc
        raise ProtocolError(f"{exc}", url=url) from exc
    except u3.SSLError as exc:
        raise _tls_error(exc, url) from exc
    except (u3.LocationParseError, u3.LocationValueError) as exc:
        raise InvalidURL(f"invalid URL: {exc}", url=url) from exc
    except (u3.HTTPError, OSError) as exc:
        raise ProtocolError(f"{type(exc).__name__}: {exc}", url=url) from exc


def _tls_error(exc: BaseException, url: str) -> TLSError:
    cause: BaseException | None = exc
    for _ in range(8):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cert_reason(cause)
            return TLSCertificateError(f"TLS certificate not accepted: {reason}", url=url)
        cause = (cause.args[0] if cause.args else None) if cause else None
        if not isinstance(cause, BaseException):
            break
    return TLSError(f"TLS handshake failed: {exc}", url=url)


# -- the request target, byte for byte ----------------------------------------------------
# urllib3 re-encodes every target it is given (``|`` -> ``%7C``, ``%7e`` -> ``%7E``, ``%zz``
# -> ``%25zz``), but what aiograb sends must be the WHATWG href's path and query as they
# are (a browser's bytes). So the target goes through urllib3's pool as a token of
# unreserved characters only (``/`` + base64url, which any RFC 3986 encoder leaves as it
# is) and the connection classes below turn it back into the target as they write the
# request line. The pool's keep-alive, timeouts, TLS and error handling stay urllib3's.

TOKEN = "/~aiograb~"
PRINTABLE = "".join(map(chr, range(0x21, 0x7F)))


def tokenized(href: str) -> str:
    """``href`` with its request target (path and query as given) made a pool-safe token."""
    after = href.index("//") + 2
    start = href.find("/", after)
    origin, target = (href[:start], href[start:]) if start >= 0 else (href, "/")
    # An href is printable ASCII; anything else (a URL not from parse_url) is
    # percent-encoded as urllib3 would, since http.client refuses it in a request line.
    target = quote(target.partition("#")[0], safe=PRINTABLE)
    return origin + TOKEN + base64.urlsafe_b64encode(target.encode("ascii")).decode("ascii")


def target_of(token: str) -> str:
    """The request target a ``tokenized`` URL's token stands for."""
    if not token.startswith(TOKEN):  # not ours: a bug, never a silent re-encoding
        raise AssertionError(f"request target not made by tokenized(): {token!r}")
    return base64.urlsafe_b64decode(token[len(TOKEN) :]).decode("ascii")


class _ExactHTTPConnection(HTTPConnection):
    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        super().putrequest(method, target_of(url), skip_host, skip_accept_encoding)


class _ExactHTTPSConnection(HTTPSConnection):
    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        super().putrequest(method, target_of(url), skip_host, skip_accept_encoding)


class _ExactHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _ExactHTTPConnection


class _ExactHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _ExactHTTPSConnection


class _Response:
    __slots__ = ("_chunks", "done", "headers", "raw", "status", "url")

    def __init__(self, resp: urllib3.BaseHTTPResponse, url: str) -> None:
        self.raw = resp
        self._chunks: Iterator[bytes] | None = None
        self.done = False  # the body was read to its end
        self.status = resp.status
        self.headers: Headers = make_headers(resp.headers.items())
        self.url = url

    @property
    def untouched(self) -> bool:
        return self._chunks is None

    def read_chunk(self) -> bytes:
        if self._chunks is None:
            self._chunks = self.raw.stream(CHUNK, decode_content=True)
        with map_errors(self.url):
            chunk = next(self._chunks, b"")
        self.done = not chunk
        return chunk


def _worth_draining(response: _Response) -> bool:
    length = response.headers.get("Content-Length", "")
    if length.isdigit():
        return int(length) <= DRAIN_LIMIT
    return not 200 <= response.status < 300  # redirects and error pages: short, as a rule


class _Send:
    """``with transport.send(...) as response``: one request, errors translated."""

    __slots__ = ("_args", "_pool", "_response", "_url")

    def __init__(self, pool: urllib3.PoolManager, url: str, args: dict[str, Any]) -> None:
        self._pool, self._url, self._args = pool, url, args
        self._response: _Response | None = None

    def __enter__(self) -> _Response:
        url = self._url
        with map_errors(url):
            resp = self._pool.urlopen(**self._args)
        self._response = _Response(resp, url)
        return self._response

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        response = self._response
        if response is None:
            return
        resp = response.raw
        # The connection goes back to the pool only when nothing is left unread on it:
        # a body read to its end, or one never started and worth draining (a redirect,
        # an error page, a small body). A body abandoned halfway, or a large one never
        # started (e.g. refused by its Content-Length), closes the connection instead.
        unread = (
            response.untouched
            and (exc is None or isinstance(exc, RequestError))
            and _worth_draining(response)
        )
        if unread:
            try:
                with map_errors(response.url):
                    resp.drain_conn()
            except RequestError:
                resp.close()
                return
        if unread or response.done:
            resp.release_conn()
        else:
            resp.close()


class Urllib3Transport:
    """Blocking HTTP through urllib3, one keep-alive pool per thread.

    ``network`` gives the TLS settings (CA bundle, ``verify``); proxies and cookies
    are the async transport's (the blocking engines refuse them up front).
    """

    def __init__(self, network: Network | None = None, *, pools_per_thread: int = 64) -> None:
        network = network or Network()
        self._tls = ssl_context(network)
        self._verify = network.verify
        self._local = threading.local()
        self._pools_per_thread = pools_per_thread
        self._timeouts: dict[Timeouts, urllib3.Timeout] = {}

    def _pool(self) -> urllib3.PoolManager:
        pool: urllib3.PoolManager | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = urllib3.PoolManager(
                num_pools=self._pools_per_thread,
                maxsize=1,
                retries=False,
                ssl_context=self._tls,
                cert_reqs=None if self._verify else "CERT_NONE",
            )
            pool.pool_classes_by_scheme = {"http": _ExactHTTPPool, "https": _ExactHTTPSPool}
            self._local.pool = pool
        return pool

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
            raise invalid  # as the event-loop transports refuse it
        timeout = self._timeouts.get(timeouts)
        if timeout is None:
            timeout = urllib3.Timeout(connect=timeouts.connect, read=timeouts.total)
            self._timeouts[timeouts] = timeout
        args: dict[str, Any] = {
            "method": method,
            "url": tokenized(str(url)),
            "headers": dict(headers),
            "body": body,
            "timeout": timeout,
            "redirect": False,
            "preload_content": False,
        }
        return _Send(self._pool(), str(url), args)

    def close(self) -> None:
        """Close the calling thread's pool (other threads' pools close with their thread)."""
        pool: urllib3.PoolManager | None = getattr(self._local, "pool", None)
        if pool is not None:
            pool.clear()
            self._local.pool = None
