"""The fan-out benchmark's model, shared by the backend, the clients and the report:
the latency of each call (reproducible from its key) and the keys of each round."""

from __future__ import annotations

import hashlib
import math
from statistics import NormalDist

__all__ = ["MEDIAN_S", "SIGMA", "TAIL_P", "TAIL_S", "assigned_latency", "round_keys"]

MEDIAN_S = 0.020
SIGMA = 0.35  # p95 ~ 36 ms, p99.9 ~ 59 ms
TAIL_P = 0.001
TAIL_S = 0.400
_NORMAL = NormalDist()


def assigned_latency(key: str, seed: int = 12) -> float:
    """The latency of the first request for ``key`` (seconds), the same on every run."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=16).digest()
    u_tail = int.from_bytes(digest[:8], "big") / 2**64
    if u_tail < TAIL_P:
        return TAIL_S
    u = int.from_bytes(digest[8:], "big") / 2**64
    return MEDIAN_S * math.exp(SIGMA * _NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12)))


def round_keys(width: int, r: int | str) -> list[str]:
    """The keys of round ``r`` (``"warm0"`` for warm-up): the same for every client."""
    return [f"w{width}-r{r}-{i}" for i in range(width)]
