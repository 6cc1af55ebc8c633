"""Fetching one URL on the calling thread: the blocking twin of ``Fetcher``.

It drives the same sans-IO pieces as the async fetcher (``FetchRules`` for
redirects, limits and the accept policy, ``Attempts`` for retries,
``BodyReader`` for the body) over a ``BlockingTransport``, and differs only
in how it waits: per-host limits are a semaphore per host shared by all
threads, and Retry-After and backoff sleep the thread that got them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiograb._core.config import Limits, RequestPolicy
from aiograb._core.errors import RequestError, Timeout
from aiograb._core.models import Outcome, Request
from aiograb._fetch.fetcher import Attempts, FetchRules, SinkFactory
from aiograb._http.base import BlockingTransport
from aiograb._http.blocking import Urllib3Transport

__all__ = ["BlockingFetcher"]


class BlockingFetcher:
    """Fetch URLs one per calling thread under one ``RequestPolicy``."""

    def __init__(
        self, policy: RequestPolicy, limits: Limits, transport: BlockingTransport | None = None
    ) -> None:
        self._policy = policy
        self._rules = FetchRules(policy)
        self._transport = transport or Urllib3Transport(policy.network)
        self._per_host = limits.host_limit()
        self._slots: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()
        self.retries = 0

    @contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        if self._per_host <= 0:
            yield
            return
        with self._lock:
            sem = self._slots.setdefault(host, threading.Semaphore(self._per_host))
        with sem:
            yield

    def fetch(self, request: Request, sink: SinkFactory, key: str) -> Outcome:
        run = Attempts(self._rules, request, None, time.monotonic())
        while run.begin():
            try:
                self._attempt(run, request, sink, key)
                run.succeeded()
            except RequestError as exc:
                if (wait := run.failed(exc)) is not None:
                    with self._lock:
                        self.retries += 1
                    time.sleep(wait)
        return run.finish(time.monotonic())

    def _attempt(self, run: Attempts, request: Request, sink: SinkFactory, key: str) -> None:
        rules, method, url, outcome = self._rules, run.method, run.url, run.outcome
        timeouts = self._policy.timeouts
        deadline = time.monotonic() + timeouts.total
        body, headers = rules.request_headers(request)
        seen = {str(url)}
        for _hop in range(self._policy.max_redirects + 1):
            with (
                self._slot(url.host or ""),
                self._transport.send(
                    method, url, headers=headers, body=body, timeouts=timeouts
                ) as resp,
            ):
                run.timing.first_byte = time.perf_counter()
                outcome.status, outcome.final_url = resp.status, resp.url
                target = rules.redirect(resp.status, resp.headers, url, seen, request.url)
                if target is not None:
                    headers = rules.redirect_headers(headers, url, target)
                    url, method = target, rules.redirect_method(resp.status, method)
                    body = None if method == "GET" else body
                    continue
                if not 200 <= resp.status < 300:
                    raise rules.status_error(resp.status, resp.headers, request.url)
                outcome.headers = resp.headers
                rules.check_robots_tag(resp.headers, request.url)
                reader = rules.body_reader(resp.headers, sink.open(key), request.url)
                try:
                    while chunk := resp.read_chunk():
                        reader.feed(chunk)
                        if time.monotonic() > deadline:
                            raise Timeout(
                                f"deadline exceeded (timeouts.total={timeouts.total:g}s)",
                                url=request.url,
                            )
                    outcome.stored, outcome.content_type = reader.finish()
                except BaseException:
                    reader.abort()
                    raise
                return
        raise rules.too_many_redirects(request.url)

    def close(self) -> None:
        self._transport.close()
