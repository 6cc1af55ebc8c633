"""The test server's value objects and per-instance state."""

from __future__ import annotations

import asyncio
import collections
import math
from dataclasses import dataclass, field

from aiohttp import web

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_RECORDED",
    "STATE",
    "RecordedRequest",
    "ServerConfig",
    "ServerState",
]

MAX_RECORDED = 1_000_000
"""How many requests a server remembers (the oldest are dropped first)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """How the test server behaves for every request (query parameters override per request).

    Example::

        ServerConfig(latency_ms=50, bandwidth_kbps=8_000)   # a 50 ms, 8 Mbit/s link
    """

    latency_ms: float = 0.0
    """Delay before the response headers, on every route."""
    bandwidth_kbps: float = 0.0
    """Body pacing in kilobits per second; 0 means unlimited."""
    seed: int = 0
    """Seed of the generated images."""
    record: bool = True
    """Keep a :class:`RecordedRequest` for each request."""
    site_pages: int = 300
    """Pages of the generated site under ``/site/`` and ``/plain/`` (see ``_site.py``)."""

    def __post_init__(self) -> None:
        for name in ("latency_ms", "bandwidth_kbps"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


DEFAULT_CONFIG = ServerConfig()


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path_qs: str
    """Path and query string, e.g. ``/img/1.png?size=large``."""
    headers: dict[str, str]
    time: float
    """``time.monotonic()`` on arrival (comparable with the test process's clock)."""


@dataclass(slots=True)
class ServerState:
    """The mutable state of one server instance (one :func:`make_app`)."""

    config: ServerConfig
    requests: collections.deque[RecordedRequest] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_RECORDED)
    )
    flaky_counts: dict[str, int] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server shuts down; slow handlers watch it to end promptly."""


STATE = web.AppKey("aiograb_testing_state", ServerState)
