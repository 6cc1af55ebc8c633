"""What ``aiograb bench`` measures: small frozen value objects and the two presets.

``standard_config()`` is the suite of ``aiograb bench`` (~1–2 minutes);
``quick_config()`` is the ~15 s version for CI and a first look. Both can
be adjusted with ``dataclasses.replace``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiograb._core.config import ENGINES
from aiograb._core.errors import UsageError

from ._fanout import FanoutSpec

__all__ = [
    "DEFAULT_OUT",
    "BenchConfig",
    "CpuSpec",
    "TimelineSpec",
    "capped_n",
    "default_workdir",
    "quick_config",
    "standard_config",
]

DEFAULT_OUT = Path("bench-report")
# A rough cost of one request besides the server's latency, used only to predict
# how long a run would take (and cap its N): loopback round trip, parsing, the journal.
REQUEST_OVERHEAD_S = 0.002
MIN_CAPPED_N = 10


def default_workdir() -> Path | None:
    """``/dev/shm`` when it is a writable directory (Linux tmpfs), else None."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


@dataclass(frozen=True, kw_only=True, slots=True)
class TimelineSpec:
    """The small run drawn as a Gantt chart, once per engine."""

    n: int = 200
    latency_ms: float = 100.0
    concurrency: int = 50

    def __post_init__(self) -> None:
        _check(1 <= self.n <= 5000, "timeline n must be between 1 and 5000")
        _check(self.latency_ms >= 0, "timeline latency must be >= 0")
        _check(self.concurrency >= 1, "timeline concurrency must be >= 1")


@dataclass(frozen=True, kw_only=True, slots=True)
class CpuSpec:
    """The download with a decode+resize per file, inline on the loop vs in a process pool."""

    n: int = 400
    latency_ms: float = 20.0
    concurrency: int = 50
    size: str = "medium"  # the test server's size class of the images
    thumb: int = 256  # longest side of the thumbnail, in pixels
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)

    def __post_init__(self) -> None:
        _check(1 <= self.n <= 100_000, "cpu n must be between 1 and 100000")
        _check(self.size in ("small", "medium", "large"), "cpu size must be small|medium|large")
        _check(self.workers >= 1, "cpu workers must be >= 1")


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchConfig:
    """One ``aiograb bench`` run.

    >>> BenchConfig(latencies_ms=(200.0,), concurrencies=(1, 1000))
    """

    out: Path = DEFAULT_OUT
    latencies_ms: tuple[float, ...] = (0.0, 50.0, 200.0)
    concurrencies: tuple[int, ...] = (1, 10, 100, 1000)
    n: int = 5000
    engines: tuple[str, ...] = ENGINES
    # A sweep run predicted to take longer than this is capped in N (rate extrapolated).
    run_seconds: float = 2.5
    timeline: TimelineSpec | None = field(default_factory=TimelineSpec)
    cpu: CpuSpec | None = field(default_factory=CpuSpec)
    peers: bool = False
    # The service fan-out (#12): W backend calls per endpoint request, per client.
    fanout: FanoutSpec | None = None
    quick: bool = False
    child_timeout_s: float = 300.0
    # Where the clients write their files: tmpfs by default, so a slow or busy disk
    # does not blur how the engines wait for the network (None: the system temp dir).
    workdir: Path | None = field(default_factory=lambda: default_workdir())

    def __post_init__(self) -> None:
        _check(bool(self.latencies_ms), "give at least one latency")
        _check(bool(self.concurrencies), "give at least one concurrency")
        for lat in self.latencies_ms:
            _check(math.isfinite(lat) and 0 <= lat <= 60_000, f"bad latency {lat!r} ms")
        for c in self.concurrencies:
            _check(1 <= c <= 20_000, f"concurrency must be between 1 and 20000, not {c}")
        _check(1 <= self.n <= 1_000_000, "n must be between 1 and 1000000")
        unknown = sorted(set(self.engines) - set(ENGINES))
        _check(not unknown, f"unknown engine(s): {', '.join(unknown)} (use {', '.join(ENGINES)})")
        _check(bool(self.engines), "give at least one engine")
        _check(self.run_seconds > 0, "run seconds must be > 0")
        if self.workdir is not None:
            _check(self.workdir.is_dir(), f"workdir {self.workdir} is not a directory")


def standard_config(**changes: Any) -> BenchConfig:
    """The standard suite of ``aiograb bench`` (~1–2 minutes on 2 cores).

    >>> cfg = standard_config(out=Path("report/"), latencies_ms=(0.0, 200.0))
    """
    return replace(BenchConfig(), **changes)


def quick_config(**changes: Any) -> BenchConfig:
    """``aiograb bench --quick`` (~15 s): one latency, three concurrencies, small
    timeline and CPU runs."""
    base: dict[str, Any] = {
        "latencies_ms": (50.0,),
        "concurrencies": (1, 10, 100),
        "n": 400,
        "run_seconds": 0.6,
        "timeline": TimelineSpec(n=100, latency_ms=50.0, concurrency=10),
        "cpu": CpuSpec(n=80, latency_ms=20.0, concurrency=20, size="medium"),
        "quick": True,
    }
    return replace(BenchConfig(), **{**base, **changes})


def capped_n(n: int, latency_ms: float, concurrency: int, seconds: float) -> int:
    """``n``, or fewer when ``n`` requests at this latency and concurrency would take
    longer than ``seconds`` (never fewer than ``MIN_CAPPED_N``, nor than ``n``).

    >>> capped_n(5000, 200, 1, 3.0)
    14
    """
    per_request = latency_ms / 1000 + REQUEST_OVERHEAD_S
    fits = math.floor(seconds * concurrency / per_request)
    return min(n, max(MIN_CAPPED_N, fits))
