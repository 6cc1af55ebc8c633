"""Fetching one URL: per-host slot, redirects, limits, accept policy, retries.

``Fetcher.fetch`` never raises for a per-URL failure: it returns an
``Outcome`` whose ``error`` is set. Only cancellation propagates.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from yarl import URL

from aiograb._core.clock import Clock
from aiograb._core.config import RequestPolicy
from aiograb._core.content import SNIFF_BYTES, AcceptPolicy
from aiograb._core.errors import (
    HTTPStatusError,
    InvalidURL,
    RedirectError,
    RequestError,
    RobotsTagDisallowed,
    TooLarge,
)
from aiograb._core.models import Outcome, Request, Stored, Timing
from aiograb._core.urls import parse_url
from aiograb._fetch.politeness import Politeness
from aiograb._fetch.robots_tag import forbidding_directive
from aiograb._http.base import Headers, Transport
from aiograb._store.sinks import BodyWriter

# Outcome and Request live in _core.models; re-exported for older imports.
__all__ = ["Attempts", "BodyReader", "FetchRules", "Fetcher", "Outcome", "Request", "SinkFactory"]

SMALL_BODY = 256 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
# Credentials the user gave for one origin; never sent on to another (as curl,
# requests and httpx do).
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class SinkFactory(Protocol):
    def open(self, key: str) -> BodyWriter: ...


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # here: only an HTTP-date needs it (~3.5 ms of every run's start)

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def same_origin(a: URL, b: URL) -> bool:
    """Whether ``a`` and ``b`` share scheme, host and (explicit or default) port."""
    return (a.scheme, (a.host or "").lower(), a.port) == (b.scheme, (b.host or "").lower(), b.port)


class BodyReader:
    """Checks and stores a body as it streams: limits, accept policy, sink. Sans-IO.

    Call ``feed`` with each chunk and ``finish`` at the end; on any error the
    writer is aborted, so nothing partial is ever left behind.
    """

    __slots__ = (
        "_accept",
        "_ctype",
        "_head",
        "_limit",
        "_mime",
        "_size",
        "_url",
        "_writer",
        "small",
    )

    def __init__(
        self,
        accept: AcceptPolicy,
        limit: int,
        headers: Mapping[str, str],
        writer: BodyWriter,
        url: str,
    ) -> None:
        self._accept, self._limit, self._writer, self._url = accept, limit, writer, url
        self._ctype = headers.get("Content-Type")
        self._head = b""
        self._mime: str | None = None
        self._size = 0
        if not accept.any:
            accept.check_header(self._ctype, url)
        length = headers.get("Content-Length")
        size = int(length) if length is not None and length.isdigit() else -1
        if limit and size > limit:
            raise TooLarge(f"Content-Length {length} > max_bytes={limit}", url=url)
        # A body of known, small length can be read in one piece (Content-Encoding aside:
        # a compressed body may inflate past what was announced).
        self.small = 0 <= size <= SMALL_BODY and "Content-Encoding" not in headers

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._limit and self._size > self._limit:
            raise TooLarge(f"body exceeds max_bytes={self._limit}", url=self._url)
        if self._mime is None:
            self._head += chunk
            if len(self._head) < SNIFF_BYTES:
                return
            self._mime = self._accept.check_body(self._head, self._ctype, self._url)
            chunk, self._head = self._head, b""
        self._writer.write(chunk)

    def finish(self) -> tuple[Stored, str]:
        if self._mime is None:  # the whole body was shorter than SNIFF_BYTES
            self._mime = self._accept.check_body(self._head, self._ctype, self._url)
            if self._head:
                self._writer.write(self._head)
        return self._writer.commit(self._mime), self._mime

    def abort(self) -> None:
        self._writer.abort()


class FetchRules:
    """The request policy as pure decisions, shared by the async and blocking engines."""

    def __init__(self, policy: RequestPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.accept = AcceptPolicy(policy.accept)
        self._rng = rng or random.Random()
        # Read-only: shared by every plain request, and a transport may keep what it
        # derived from it (``CurlTransport``'s fields) for as long as it is this object.
        self.headers: Mapping[str, str] = MappingProxyType(
            {"User-Agent": policy.user_agent, **policy.headers}
        )

    def request_headers(self, request: Request) -> tuple[bytes | None, Mapping[str, str]]:
        """The body and headers to send; the shared defaults (never to be mutated) when
        the request adds neither (a fan-out's usual call)."""
        if request.bare:
            return None, self.headers
        body, body_headers = request.body()
        return body, {**self.headers, **body_headers, **(request.headers or {})}

    def retry_wait(self, exc: RequestError, method: str, attempts: int) -> float | None:
        """Seconds to wait before the next attempt, or None when the URL has failed."""
        retry = self.policy.retry
        if not exc.retryable or attempts > retry.retries:
            return None
        if method not in _IDEMPOTENT and exc.code not in ("connect_refused", "dns_error"):
            return None
        wait = retry.delay(attempts, self._rng.random())
        if isinstance(exc, HTTPStatusError) and exc.retry_after is not None:
            if exc.retry_after > retry.max_retry_after:
                return None
            wait = max(wait, exc.retry_after)
        return wait

    def redirect(
        self, status: int, headers: Mapping[str, str], url: URL, seen: set[str], origin: str
    ) -> URL | None:
        """The next URL when this response is a redirect to follow, else None. ``seen``
        holds the chain's URLs so far (empty before the first redirect: ``url`` is added)."""
        if status not in _REDIRECTS or "Location" not in headers:
            return None
        if not seen:
            seen.add(str(url))
        location = headers["Location"]
        try:
            target = parse_url(location, base=str(url))
        except (ValueError, InvalidURL) as exc:
            raise RedirectError(
                f"bad redirect to {location!r}: {exc}", url=origin, code="bad_redirect"
            ) from exc
        text = str(target)
        if text in seen:
            raise RedirectError(f"redirect loop back to {text}", url=origin, code="redirect_loop")
        seen.add(text)
        return target

    @staticmethod
    def redirect_headers(headers: Mapping[str, str], url: URL, target: URL) -> Mapping[str, str]:
        """The headers for the hop from ``url`` to ``target``: without the user's
        credentials when ``target`` is another origin (scheme, host or port; so an
        https -> http downgrade drops them too). Once dropped they stay dropped."""
        if same_origin(url, target):
            return headers
        return {k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}

    @staticmethod
    def redirect_method(status: int, method: str) -> str:
        return "GET" if status == 303 or (status in (301, 302) and method == "POST") else method

    def too_many_redirects(self, url: str) -> RedirectError:
        return RedirectError(
            f"more than {self.policy.max_redirects} redirects", url=url, code="too_many_redirects"
        )

    def status_error(self, status: int, headers: Mapping[str, str], url: str) -> HTTPStatusError:
        retry_after, detail = None, ""
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("Retry-After"), time.time())
            cap = self.policy.retry.max_retry_after
            if retry_after is not None and retry_after > cap:
                detail = (
                    f"Retry-After {retry_after:.0f}s > max_retry_after={cap:g}s: not waited for"
                )
        return HTTPStatusError(status, url=url, retry_after=retry_after, detail=detail)

    def host_pause(self, error: HTTPStatusError) -> float:
        """How long the host asked everyone to wait: its Retry-After when we honour it.

        A Retry-After beyond ``max_retry_after`` fails the URL at once and pauses
        nothing, so one such answer cannot freeze the host's other URLs."""
        wait = error.retry_after
        if wait is None or wait > self.policy.retry.max_retry_after:
            return 0.0
        return wait

    def check_robots_tag(self, headers: Headers, url: str) -> None:
        """Raise ``RobotsTagDisallowed`` when X-Robots-Tag forbids keeping the body."""
        policy = self.policy
        if not policy.disallowed_header_directives or "X-Robots-Tag" not in headers:
            return
        directive = forbidding_directive(
            headers.getall("X-Robots-Tag"),
            policy.user_agent_token,
            policy.disallowed_header_directives,
        )
        if directive is not None:
            raise RobotsTagDisallowed(
                f"X-Robots-Tag: {directive} forbids keeping it (disallowed_header_directives)",
                url=url,
            )

    def body_reader(self, headers: Mapping[str, str], writer: BodyWriter, url: str) -> BodyReader:
        return BodyReader(self.accept, self.policy.max_bytes, headers, writer, url)


class Attempts:
    """One URL's retry loop as data, so the async and blocking fetchers share it and
    differ only in how they wait::

        run = Attempts(rules, request, url, now)
        while run.begin():
            try:
                attempt(run.method, run.url, run.outcome)
                run.succeeded()
            except RequestError as exc:
                if (wait := run.failed(exc)) is not None:
                    sleep(wait)
        return run.finish(now)
    """

    __slots__ = ("_done", "_rules", "_t0", "method", "outcome", "timing", "url")

    def __init__(self, rules: FetchRules, request: Request, url: URL | None, now: float) -> None:
        self._rules = rules
        self._t0 = now
        self._done = False
        self.method = request.method.upper()
        self.timing = Timing(threading.get_ident())
        self.outcome = Outcome(url=request.url, started=time.time(), timing=self.timing)
        if url is None:
            try:
                url = parse_url(request.url)
            except InvalidURL as exc:
                self.outcome.error = exc
                self._done = True
        self.url = url or URL()

    def begin(self) -> bool:
        """Start the next attempt; False when the URL has succeeded or failed for good."""
        if self._done:
            return False
        self.outcome.attempts += 1
        self.timing.start = time.perf_counter()
        return True

    def succeeded(self) -> None:
        self.outcome.ok, self.outcome.error, self._done = True, None, True

    def failed(self, exc: RequestError) -> float | None:
        """Record the failure; the seconds to wait before retrying, or None when done."""
        exc.url = exc.url or self.outcome.url
        self.outcome.error = exc
        wait = self._rules.retry_wait(exc, self.method, self.outcome.attempts)
        self._done = wait is None
        return wait

    def finish(self, now: float) -> Outcome:
        self.outcome.elapsed = now - self._t0
        self.timing.end = time.perf_counter()
        return self.outcome


class Fetcher:
    """Fetch URLs under one ``RequestPolicy``, sharing a transport and host slots."""

    def __init__(
        self,
        transport: Transport,
        politeness: Politeness,
        policy: RequestPolicy,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        may_retry: Callable[[str], bool] | None = None,
    ) -> None:
        self._transport = transport
        self._may_retry = may_retry  # a retry budget, asked with the host before each retry
        self.politeness = politeness
        self._policy = policy
        self._rules = FetchRules(policy, rng)
        self._clock = clock
        self.retries = 0  # attempts beyond the first, over all URLs

    async def fetch(
        self, request: Request, sink: SinkFactory, key: str, *, url: URL | None = None
    ) -> Outcome:
        """Fetch ``request``; ``url`` is its already-checked URL when the caller has it."""
        run = Attempts(self._rules, request, url, self._clock.now())
        while run.begin():
            try:
                await self._attempt(run, request, sink, key)
                run.succeeded()
            except RequestError as exc:
                if (wait := run.failed(exc)) is not None:
                    if self._may_retry is not None and not self._may_retry(run.url.host or ""):
                        break  # over the retry budget: the last error stands
                    self.retries += 1
                    await self._clock.sleep(wait)
        return run.finish(self._clock.now())

    async def _attempt(self, run: Attempts, request: Request, sink: SinkFactory, key: str) -> None:
        rules, method, url, outcome = self._rules, run.method, run.url, run.outcome
        body, headers = rules.request_headers(request)
        seen: set[str] = set()  # filled at the first redirect
        for _hop in range(self._policy.max_redirects + 1):
            host = url.host or ""
            slot = await self.politeness.acquire(host)
            try:
                async with self._transport.send(
                    method, url, headers=headers, body=body, timeouts=self._policy.timeouts
                ) as resp:
                    run.timing.first_byte = time.perf_counter()
                    outcome.status = resp.status
                    outcome.final_url = resp.url
                    target = rules.redirect(resp.status, resp.headers, url, seen, request.url)
                    if target is not None:
                        headers = rules.redirect_headers(headers, url, target)
                        url, method = target, rules.redirect_method(resp.status, method)
                        body = None if method == "GET" else body
                        continue
                    if not 200 <= resp.status < 300:
                        error = rules.status_error(resp.status, resp.headers, request.url)
                        if pause := rules.host_pause(error):
                            self.politeness.pause(host, pause)
                        raise error
                    outcome.headers = resp.headers
                    rules.check_robots_tag(resp.headers, request.url)
                    writer = sink.open(key)
                    reader = rules.body_reader(resp.headers, writer, request.url)
                    try:
                        if reader.small:  # one read, one feed: fewer awaits per file
                            reader.feed(await resp.read_all())
                        else:
                            while chunk := await resp.read_chunk():
                                reader.feed(chunk)
                        stored, content_type = reader.finish()
                    except BaseException:
                        reader.abort()
                        raise
                    break
            finally:
                self.politeness.release(host, slot)
        else:
            raise rules.too_many_redirects(request.url)
        # The IO pool stores the file while the connection and the host's slot serve others.
        await writer.settle()
        outcome.stored, outcome.content_type = stored, content_type
