"""Small, frozen, validated value objects that configure a run or a client.

Each has ``DEFAULT_*`` values chosen for real sites; the CLI builds them from
its flags and the library takes them as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiograb import __about__
from aiograb._core.errors import UsageError

__all__ = [
    "DEFAULT_ACCEPT",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PER_HOST",
    "DEFAULT_USER_AGENT",
    "ENGINES",
    "Limits",
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
# A body this large is almost never an image anyone wants, and in memory (the
# client API) it would hurt: refuse it as ``too_large``. 0 lifts the limit.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
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
    """

    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    rate: float = 0.0  # requests per second per host; 0 = unlimited

    def __post_init__(self) -> None:
        _check(1 <= self.concurrency <= 100_000, "concurrency must be between 1 and 100000")
        _check(self.per_host >= 0, "per-host must be >= 0 (0 = unlimited)")
        _check(self.rate >= 0, "rate must be >= 0 (0 = unlimited)")


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Per-attempt deadline (headers and body) and connect timeout, in seconds."""

    total: float = 30.0
    connect: float = 10.0

    def __post_init__(self) -> None:
        _check(self.total > 0, "timeout must be > 0")
        _check(self.connect > 0, "connect timeout must be > 0")


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

    def __post_init__(self) -> None:
        _check(0 <= self.max_redirects <= 100, "max-redirects must be between 0 and 100")
        _check(self.max_bytes >= 0, "max-bytes must be >= 0 (0 = unlimited)")
        _check(bool(self.accept.strip()), "accept must not be empty")
