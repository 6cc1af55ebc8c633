"""Small, frozen, validated value objects that configure a run or a client.

Each has ``DEFAULT_*`` values chosen for real sites; the CLI builds them from
its flags and the library takes them as keyword arguments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiograb import __about__
from aiograb._core.errors import UsageError

__all__ = [
    "DEFAULT_ACCEPT",
    "DEFAULT_BUDGET",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DISALLOWED_HEADER_DIRECTIVES",
    "DEFAULT_IO_THREADS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PER_HOST",
    "DEFAULT_TRANSPORT",
    "DEFAULT_USER_AGENT",
    "DEFAULT_USER_AGENT_TOKEN",
    "ENGINES",
    "PROXY_SCHEMES",
    "TRANSPORTS",
    "Budget",
    "Hedge",
    "Limits",
    "Network",
    "RequestPolicy",
    "RetryPolicy",
    "Timeouts",
]

DEFAULT_CONCURRENCY = 256
# 16 in flight per host: well below what a CDN notices, above the 6-8 of browsers
# and Scrapy, since a bulk download reuses keep-alive connections and waits on
# latency, not bandwidth. Use --per-host 0 for your own servers.
DEFAULT_PER_HOST = 16
DEFAULT_USER_AGENT = (
    f"aiograb/{__about__.__version__} (+https://pypi.org/project/aiograb/; bulk image downloader)"
)
DEFAULT_ACCEPT = "image"
# The HTTP client behind the seam: "curl" (libcurl's multi interface on the same loop:
# 0.7x the aiohttp transport's CPU per file, BENCHMARKS.md "#13"), or "aiohttp". The
# environment variable AIOGRAB_TRANSPORT picks it when Limits.transport is left empty
# (how the test suite runs against both).
DEFAULT_TRANSPORT = "curl"
TRANSPORTS = ("aiohttp", "curl")
# A body this large is almost never an image anyone wants, and in memory (the
# client API) it would hurt: refuse it as ``too_large``. 0 lifts the limit.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
# Threads that create, write and rename the files of ``get`` (the loop never waits for
# the disk); fixed, whatever the concurrency. 0 stores on the loop thread. 2: with the
# batched hand-off the loop's CPU per file is the same with 1, 2 or 4 threads, and 4
# cost 7-16 % more CPU in all than 2 (BENCHMARKS.md, "#11 scale-out, second pass").
DEFAULT_IO_THREADS = 2
# X-Robots-Tag directives that forbid storing a body, as img2dataset has them:
# a site that says "noai" or "noindex" did not agree to be in a dataset.
DEFAULT_DISALLOWED_HEADER_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")
# The product token robots rules address us by (RFC 9309; "aiograb: noai").
DEFAULT_USER_AGENT_TOKEN = "aiograb"
_TOKEN = re.compile(r"[A-Za-z_-]+")
# The engines of ``get``: one event loop (the default), and the two blocking ones it
# is measured against (``aiograb bench``): a thread pool, one request at a time.
ENGINES = ("async", "threads", "sync")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """How much may be in flight.

    >>> Limits(concurrency=500, per_host=0)   # 0 = no per-host limit
    >>> Limits(transport="aiohttp")           # aiohttp instead of libcurl (the default)

    ``per_host=None`` (the default) means the caller's default: ``DEFAULT_PER_HOST``
    for ``download``/``crawl`` (other people's sites), none for ``open_client``
    (a service calling its own backends).
    """

    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int | None = None
    rate: float = 0.0  # requests per second per host; 0 = unlimited
    transport: str = ""  # "curl" or "aiohttp"; "" = $AIOGRAB_TRANSPORT or DEFAULT_TRANSPORT

    def __post_init__(self) -> None:
        _check(1 <= self.concurrency <= 100_000, "concurrency must be between 1 and 100000")
        _check(self.per_host is None or self.per_host >= 0, "per_host must be >= 0 (0 = unlimited)")
        _check(self.rate >= 0, "rate must be >= 0 (0 = unlimited)")
        _check(
            self.transport in ("", *TRANSPORTS),
            f"transport must be one of {', '.join(TRANSPORTS)} (got {self.transport!r})",
        )

    def host_limit(self, default: int = DEFAULT_PER_HOST) -> int:
        """``per_host``, or ``default`` when it was left unset (0 = unlimited)."""
        return default if self.per_host is None else self.per_host


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Per-attempt deadline (headers and body) and connect timeout, in seconds."""

    total: float = 30.0
    connect: float = 10.0

    def __post_init__(self) -> None:
        _check(self.total > 0, "Timeouts.total must be > 0")
        _check(self.connect > 0, "Timeouts.connect must be > 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Retries with exponential backoff and full jitter.

    Retried: connect errors, timeouts, resets, truncated bodies, 408, 429, 5xx.
    Never retried: other 4xx, content errors, invalid URLs. A ``Retry-After``
    longer than ``max_retry_after`` is not waited for: the URL fails.
    Non-idempotent methods (POST, PATCH) are retried only when the request
    never reached the server (connect errors).
    """

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        _check(0 <= self.retries <= 100, "retries must be between 0 and 100")
        _check(self.backoff >= 0, "backoff must be >= 0")

    def delay(self, attempt: int, rand: float) -> float:
        """Backoff before retry number ``attempt`` (1-based); ``rand`` in [0, 1)."""
        return float(rand * min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1)))


PROXY_SCHEMES = ("http", "socks5", "socks5h")


@dataclass(frozen=True, kw_only=True, slots=True)
class Network:
    """How connections are made: TLS verification, proxy, cookies.

    >>> Network(ca_bundle="corp-ca.pem", proxy="socks5h://user:pw@127.0.0.1:1080")
    >>> Network(verify=False)                  # like curl --insecure
    >>> Network(proxy="")                      # ignore HTTP_PROXY & co.

    ``verify``: check certificates (default). ``ca_bundle``: a PEM file or a
    folder of hashed certificates to trust *instead of* the system's (without it,
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are honoured as OpenSSL does). ``proxy``:
    ``None`` takes ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY`` from
    the environment, ``""`` uses none, else an ``http://`` (CONNECT for https),
    ``socks5://`` (names resolved here) or ``socks5h://`` (resolved by the proxy)
    URL, credentials in the URL. ``cookies``: a Netscape ``cookies.txt`` whose
    cookies are sent where their domain/path/secure flags allow; cookies set by
    responses are then kept for the run. Without it no cookie is kept or sent.
    """

    verify: bool = True
    ca_bundle: str | None = None
    proxy: str | None = None
    cookies: str | None = None

    def __post_init__(self) -> None:
        if self.ca_bundle is not None:
            _check(self.verify, "ca_bundle and verify=False exclude each other")
            _check(os.path.exists(self.ca_bundle), f"ca_bundle: no such file: {self.ca_bundle}")
        if self.cookies is not None:
            _check(os.path.isfile(self.cookies), f"cookies: no such file: {self.cookies}")
        if self.proxy:
            check_proxy_url(self.proxy)


def check_proxy_url(url: str) -> None:
    """Raise ``UsageError`` unless ``url`` is a usable proxy URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"proxy: not a URL: {url!r} ({exc})") from None
    _check(
        parts.scheme in PROXY_SCHEMES,
        f"proxy: unsupported scheme in {url!r} (use http://, socks5:// or socks5h://)",
    )
    _check(bool(parts.hostname), f"proxy: no host in {url!r}")
    _check(port is None or port > 0, f"proxy: bad port in {url!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestPolicy:
    """What a request may do and what its response must be."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_redirects: int = 10
    max_bytes: int = DEFAULT_MAX_BYTES  # 0 = unlimited
    accept: str = DEFAULT_ACCEPT  # "image", "any", or comma-separated MIME types
    headers: Mapping[str, str] = field(default_factory=dict)
    user_agent: str = DEFAULT_USER_AGENT
    # A response whose X-Robots-Tag names one of these (for all agents, or for
    # ``user_agent_token``) is not stored: its row is ``x_robots_tag``. () disables.
    disallowed_header_directives: tuple[str, ...] = DEFAULT_DISALLOWED_HEADER_DIRECTIVES
    user_agent_token: str = DEFAULT_USER_AGENT_TOKEN
    network: Network = field(default_factory=Network)

    def __post_init__(self) -> None:
        _check(0 <= self.max_redirects <= 100, "max_redirects must be between 0 and 100")
        _check(self.max_bytes >= 0, "max_bytes must be >= 0 (0 = unlimited)")
        _check(bool(self.accept.strip()), "accept must not be empty")
        _check(
            bool(_TOKEN.fullmatch(self.user_agent_token)),
            f"user_agent_token must be letters, '-' and '_' only, not {self.user_agent_token!r}",
        )
        directives = self.disallowed_header_directives
        if isinstance(directives, str):  # "noai,noindex" is taken as it is meant
            directives = tuple(directives.split(","))
        directives = tuple(d.strip().lower() for d in directives if d.strip())
        _check(
            all(_TOKEN.fullmatch(d) for d in directives),
            f"disallowed_header_directives must be directive names, not {directives!r}",
        )
        object.__setattr__(self, "disallowed_header_directives", directives)


# The share of extra attempts (retries and hedges) a backend may get over requests,
# Finagle/Envoy style: a backend that fails everything sees at most 5 % more load.
DEFAULT_BUDGET = 0.05


@dataclass(frozen=True, kw_only=True, slots=True)
class Budget:
    """How many extra attempts (retries + hedges) per host the client may send.

    Over the last ``window`` seconds, extras may be at most ``ratio`` × requests,
    plus ``min_extra`` so that a quiet client can still retry a lone failure.

    >>> Budget(ratio=0.1, window=10.0, min_extra=0)
    """

    ratio: float = DEFAULT_BUDGET
    window: float = 10.0
    min_extra: int = 10

    def __post_init__(self) -> None:
        _check(0 <= self.ratio <= 10, "budget ratio must be between 0 and 10")
        _check(self.window > 0, "budget window must be > 0 seconds")
        _check(self.min_extra >= 0, "budget min_extra must be >= 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class Hedge:
    """Hedged requests ("The Tail at Scale"): when an idempotent request has not
    answered after ``after``, send a second copy; the first response wins and the
    other is cancelled.

    ``after`` is seconds, or a percentile of the latencies recently seen for the
    host such as ``"p95"`` (until ``min_samples`` are seen, ``initial`` seconds).
    ``budget`` (a fraction, or a ``Budget``) caps hedges and retries together.

    >>> Hedge(after="p95", budget=0.05)
    >>> Hedge(after=0.05)
    """

    after: float | str = "p95"
    budget: float | Budget = DEFAULT_BUDGET
    initial: float = 0.1
    min_samples: int = 20

    def __post_init__(self) -> None:
        if isinstance(self.after, str):
            text = self.after.strip().lower()
            ok = text.startswith("p") and text[1:].replace(".", "", 1).isdigit()
            _check(
                ok and 0 < float(text[1:]) < 100,
                f"hedge after must be seconds or 'p50'..'p99.9', not {self.after!r}",
            )
        else:
            _check(self.after >= 0, "hedge after must be >= 0 seconds")
        if not isinstance(self.budget, Budget):
            _check(
                isinstance(self.budget, int | float), "hedge budget must be a fraction or a Budget"
            )
            object.__setattr__(self, "budget", Budget(ratio=float(self.budget)))
        _check(self.initial >= 0, "hedge initial must be >= 0 seconds")
        _check(self.min_samples >= 1, "hedge min_samples must be >= 1")

    @property
    def percentile(self) -> float | None:
        """The percentile of ``after`` (95.0 for ``"p95"``), None when it is seconds."""
        return float(self.after.strip()[1:]) if isinstance(self.after, str) else None

    @property
    def extra_budget(self) -> Budget:
        assert isinstance(self.budget, Budget)
        return self.budget
