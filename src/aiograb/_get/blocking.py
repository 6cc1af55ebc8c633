"""The blocking engines of ``aiograb get``: ``sync`` and ``threads``.

They exist to be measured against the event loop (``aiograb bench``) and as
the code people write first: one request after another, or a pool of C
threads each with its own keep-alive connection pool (urllib3). They share
everything with the async engine but how they wait: the request rules
(``FetchRules``: retries, redirects, limits, accept policy), the body reader
and file sink, the journal-driven row source and the summary (``RunState``).

Per-host limits hold across threads (a semaphore per host); Retry-After and
backoff sleep the thread that got them. ``--rate`` is an async-engine feature.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path

import urllib3
from urllib3 import exceptions as u3
from yarl import URL

from aiograb._core.config import Limits, RequestPolicy
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
    UsageError,
)
from aiograb._core.fdlimit import fit_limits
from aiograb._core.stats import Progress, Summary
from aiograb._core.urls import url_key
from aiograb._fetch.fetcher import Attempts, FetchRules, Outcome, Request, SinkFactory
from aiograb._get.runstate import OutcomeHook, RunState
from aiograb._get.sources import InputRow
from aiograb._http.network import ProxyRoutes, cert_reason, ssl_context
from aiograb._store.journal import PendingRow

__all__ = ["BlockingFetcher", "run_get_blocking"]

CHUNK = 64 * 1024


@contextmanager
def _map_errors(url: str) -> Iterator[None]:
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


class BlockingFetcher:
    """Fetch one URL on the calling thread; each thread keeps its own connection pool."""

    def __init__(self, policy: RequestPolicy, limits: Limits) -> None:
        self._policy = policy
        self._rules = FetchRules(policy)
        self._per_host = limits.host_limit()
        self._tls = ssl_context(policy.network)
        self._local = threading.local()
        self._slots: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()
        self.retries = 0

    def _pool(self) -> urllib3.PoolManager:
        pool: urllib3.PoolManager | None = getattr(self._local, "pool", None)
        if pool is None:
            timeouts = self._policy.timeouts
            pool = urllib3.PoolManager(
                num_pools=64,
                maxsize=1,
                retries=False,
                timeout=urllib3.Timeout(connect=timeouts.connect, read=timeouts.total),
                ssl_context=self._tls,
                cert_reqs=None if self._policy.network.verify else "CERT_NONE",
            )
            self._local.pool = pool
        return pool

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
                with _map_errors(request.url):
                    self._attempt(run.method, run.url, request, sink, key, run.outcome)
                run.succeeded()
            except RequestError as exc:
                if (wait := run.failed(exc)) is not None:
                    with self._lock:
                        self.retries += 1
                    time.sleep(wait)
        return run.finish(time.monotonic())

    def _attempt(
        self,
        method: str,
        url: URL,
        request: Request,
        sink: SinkFactory,
        key: str,
        outcome: Outcome,
    ) -> None:
        rules, deadline = self._rules, time.monotonic() + self._policy.timeouts.total
        body, headers = rules.request_headers(request)
        seen = {str(url)}
        for _hop in range(self._policy.max_redirects + 1):
            with self._slot(url.host or ""):
                resp = self._pool().request(
                    method, str(url), headers=headers, body=body,
                    redirect=False, preload_content=False,
                )  # fmt: skip
                reusable = False  # the connection goes back to the pool only when drained
                try:
                    outcome.t_first_byte = time.perf_counter()
                    outcome.status, outcome.final_url = resp.status, str(url)
                    target = rules.redirect(resp.status, resp.headers, url, seen, request.url)
                    if target is not None:
                        resp.drain_conn()
                        reusable = True
                        url, method = target, rules.redirect_method(resp.status, method)
                        body = None if method == "GET" else body
                        continue
                    if not 200 <= resp.status < 300:
                        resp.drain_conn()
                        reusable = True
                        raise rules.status_error(resp.status, resp.headers, request.url)
                    outcome.headers = dict(resp.headers)
                    reader = rules.body_reader(resp.headers, sink.open(key), request.url)
                    try:
                        for chunk in resp.stream(CHUNK, decode_content=True):
                            reader.feed(chunk)
                            if time.monotonic() > deadline:
                                raise Timeout("deadline exceeded (--timeout)", url=request.url)
                        reusable = True
                        outcome.stored, outcome.content_type = reader.finish()
                    except BaseException:
                        reader.abort()
                        raise
                    return
                finally:
                    if reusable:
                        resp.release_conn()
                    else:
                        resp.close()
        raise rules.too_many_redirects(request.url)


def run_get_blocking(
    rows: Iterable[InputRow],
    out_dir: str | Path,
    *,
    engine: str,
    limits: Limits | None = None,
    policy: RequestPolicy | None = None,
    retry_failed: bool = False,
    stop: threading.Event | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_outcome: OutcomeHook | None = None,
    progress_interval: float = 0.2,
) -> Summary:
    """``run_get`` with the ``sync`` or ``threads`` engine (threads = ``limits.concurrency``)."""
    if engine not in ("sync", "threads"):
        raise UsageError(f"unknown blocking engine {engine!r}")
    limits = fit_limits(limits or Limits())
    policy = policy or RequestPolicy()
    if limits.rate:
        raise UsageError("--rate needs the async engine")
    if ProxyRoutes(policy.network.proxy):
        raise UsageError(
            "--proxy (or HTTP_PROXY/HTTPS_PROXY/ALL_PROXY) needs the async engine "
            "(--proxy '' ignores the environment)"
        )
    if policy.network.cookies:
        raise UsageError("--cookies needs the async engine")
    state = RunState(
        rows, out_dir, retry_failed=retry_failed, on_progress=on_progress, on_outcome=on_outcome
    )
    fetcher = BlockingFetcher(policy, limits)
    stop = stop or threading.Event()
    state.on_storage_error = stop.set  # a full disk ends the run cleanly
    stopped = True
    try:
        if engine == "sync":
            stopped = _run_sync(state, fetcher, stop, progress_interval)
        else:
            stopped = _run_threads(state, fetcher, limits.concurrency, stop, progress_interval)
    finally:
        summary = state.close(interrupted=stopped, retries=fetcher.retries)
    return summary


def _fetch_row(fetcher: BlockingFetcher, state: RunState, row: PendingRow) -> tuple[Outcome, str]:
    key = url_key(row.key)
    return fetcher.fetch(Request(row.url), state.sink, key), key


def _run_sync(
    state: RunState, fetcher: BlockingFetcher, stop: threading.Event, interval: float
) -> bool:
    last = time.monotonic()
    for row in state.pending():
        if stop.is_set():
            return True
        state.record(row, *_fetch_row(fetcher, state, row))
        if time.monotonic() - last >= interval:
            state.tick()
            last = time.monotonic()
    state.tick()
    return False


def _run_threads(
    state: RunState,
    fetcher: BlockingFetcher,
    threads: int,
    stop: threading.Event,
    interval: float,
) -> bool:
    # Bounded: at most 2 x threads rows submitted and not yet recorded. Outcomes are
    # recorded on this (the calling) thread, the only one that touches the journal.
    inflight: dict[Future[tuple[Outcome, str]], PendingRow] = {}
    rows = state.pending()
    exhausted = False
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aiograb-get") as pool:
        while True:
            while not exhausted and not stop.is_set() and len(inflight) < 2 * threads:
                row = next(rows, None)
                if row is None:
                    exhausted = True
                    break
                inflight[pool.submit(_fetch_row, fetcher, state, row)] = row
            if not inflight:
                break
            done, _ = wait(inflight, timeout=interval, return_when=FIRST_COMPLETED)
            for future in done:
                outcome, key = future.result()
                state.record(inflight.pop(future), outcome, key)
            state.tick()
            if stop.is_set():
                for future in inflight:
                    future.cancel()
                # Rows already running finish and are recorded; the rest stay pending.
                for future in [f for f in inflight if not f.cancelled()]:
                    outcome, key = future.result()
                    state.record(inflight[future], outcome, key)
                return True
    return False
