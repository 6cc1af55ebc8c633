"""Fetching one URL: per-host slot, redirects, limits, accept policy, retries.

``Fetcher.fetch`` never raises for a per-URL failure: it returns an
``Outcome`` whose ``error`` is set. Only cancellation propagates.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from yarl import URL

from ._clock import Clock
from ._config import RequestPolicy
from ._content import SNIFF_BYTES, AcceptPolicy
from ._exceptions import (
    HTTPStatusError,
    InvalidURL,
    RedirectError,
    RequestError,
    TooLarge,
)
from ._politeness import Politeness
from ._sinks import BodyWriter, Stored
from ._transport import ResponseStream, Transport
from ._urls import parse_url

__all__ = ["Fetcher", "Outcome", "Request"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_NO_BODY = object()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request for the client API.

    >>> Request("https://api.example.org/items", method="POST", json={"id": 1})
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] | None = None
    json: Any = _NO_BODY
    data: bytes | str | None = None
    tag: Any = None  # anything of the caller's, handed back with the result

    def body(self) -> tuple[bytes | None, dict[str, str]]:
        if self.json is not _NO_BODY:
            return jsonlib.dumps(self.json).encode(), {"Content-Type": "application/json"}
        if isinstance(self.data, str):
            return self.data.encode(), {"Content-Type": "text/plain; charset=utf-8"}
        return self.data, {}


@dataclass(slots=True)
class Outcome:
    """What became of one URL; the fields of a journal and manifest row."""

    url: str
    ok: bool = False
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    stored: Stored | None = None
    error: RequestError | None = None
    attempts: int = 0
    started: float = 0.0  # wall clock (time.time())
    elapsed: float = 0.0  # seconds, all attempts and waits
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error is not None else None


class SinkFactory(Protocol):
    def open(self, key: str) -> BodyWriter: ...


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


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
    ) -> None:
        self._transport = transport
        self.politeness = politeness
        self._policy = policy
        self._accept = AcceptPolicy(policy.accept)
        self._clock = clock
        self._rng = rng or random.Random()
        self._headers = {"User-Agent": policy.user_agent, **policy.headers}
        self.retries = 0  # attempts beyond the first, over all URLs

    async def fetch(self, request: Request, sink: SinkFactory, key: str) -> Outcome:
        outcome = Outcome(url=request.url, started=time.time())
        t0 = self._clock.now()
        method = request.method.upper()
        try:
            url = parse_url(request.url)
        except InvalidURL as exc:
            outcome.error = exc
            return outcome
        while True:
            outcome.attempts += 1
            try:
                await self._attempt(method, url, request, sink, key, outcome)
                outcome.ok = True
                outcome.error = None
                break
            except RequestError as exc:
                exc.url = exc.url or request.url
                outcome.error = exc
                wait = self._retry_wait(exc, method, outcome.attempts)
                if wait is None:
                    break
                self.retries += 1
                await self._clock.sleep(wait)
        outcome.elapsed = self._clock.now() - t0
        return outcome

    def _retry_wait(self, exc: RequestError, method: str, attempts: int) -> float | None:
        retry = self._policy.retry
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

    async def _attempt(
        self,
        method: str,
        url: URL,
        request: Request,
        sink: SinkFactory,
        key: str,
        outcome: Outcome,
    ) -> None:
        body, body_headers = request.body()
        headers = {**self._headers, **body_headers, **(request.headers or {})}
        seen = {str(url)}
        for _hop in range(self._policy.max_redirects + 1):
            host = url.host or ""
            async with (
                self.politeness.slot(host),
                self._transport.send(
                    method, url, headers=headers, body=body, timeouts=self._policy.timeouts
                ) as resp,
            ):
                outcome.status = resp.status
                outcome.final_url = resp.url
                if resp.status in _REDIRECTS and "Location" in resp.headers:
                    url = self._next_hop(url, resp.headers["Location"], seen, request.url)
                    if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                        method, body = "GET", None
                    continue
                if not 200 <= resp.status < 300:
                    raise self._status_error(resp, host, request.url)
                outcome.headers = resp.headers
                outcome.stored, outcome.content_type = await self._read_body(
                    resp, sink.open(key), request.url
                )
                return
        raise RedirectError(
            f"more than {self._policy.max_redirects} redirects",
            url=request.url,
            code="too_many_redirects",
        )

    def _next_hop(self, url: URL, location: str, seen: set[str], origin: str) -> URL:
        try:
            target = url.join(URL(location))
        except ValueError as exc:
            raise RedirectError(
                f"bad redirect Location {location!r}", url=origin, code="bad_redirect"
            ) from exc
        try:
            target = parse_url(str(target))
        except InvalidURL as exc:
            raise RedirectError(
                f"redirect to a URL we refuse: {exc}", url=origin, code="bad_redirect"
            ) from exc
        text = str(target)
        if text in seen:
            raise RedirectError(f"redirect loop back to {text}", url=origin, code="redirect_loop")
        seen.add(text)
        return target

    def _status_error(self, resp: ResponseStream, host: str, url: str) -> HTTPStatusError:
        retry_after = None
        if resp.status in (429, 503):
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), time.time())
            if retry_after is not None and retry_after > 0:
                self.politeness.pause(host, min(retry_after, self._policy.retry.max_retry_after))
        return HTTPStatusError(resp.status, url=url, retry_after=retry_after)

    async def _read_body(
        self, resp: ResponseStream, writer: BodyWriter, url: str
    ) -> tuple[Stored, str]:
        limit = self._policy.max_bytes
        ctype = resp.headers.get("Content-Type")
        self._accept.check_header(ctype, url)
        length = resp.headers.get("Content-Length")
        if limit and length is not None and length.isdigit() and int(length) > limit:
            raise TooLarge(f"Content-Length {length} > --max-bytes {limit}", url=url)
        try:
            head = b""
            mime: str | None = None
            size = 0
            while True:
                chunk = await resp.read_chunk()
                if chunk:
                    size += len(chunk)
                    if limit and size > limit:
                        raise TooLarge(f"body exceeds --max-bytes {limit}", url=url)
                if mime is None:
                    head += chunk
                    if chunk and len(head) < SNIFF_BYTES:
                        continue
                    mime = self._accept.check_body(head, ctype, url)
                    chunk = head
                if not chunk:
                    break
                writer.write(chunk)
            return writer.commit(mime), mime
        except BaseException:
            writer.abort()
            raise
