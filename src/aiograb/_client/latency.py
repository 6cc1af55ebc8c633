"""Recent latencies per host, for an adaptive hedge delay such as ``"p95"``.

A small ring of the last samples per host; the percentile is recomputed every
few samples, not per request, so asking for it costs a dict lookup.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["Latencies"]

RING = 512  # samples kept per host
_REFRESH = 16  # recompute the percentile every this many samples
_MAX_HOSTS = 4096


class _Ring:
    __slots__ = ("count", "next", "samples", "threshold")

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.next = 0
        self.count = 0
        self.threshold: float | None = None


class Latencies:
    """``observe`` a host's latencies; ``threshold`` is their ``percentile`` (or None)."""

    def __init__(self, percentile: float, min_samples: int) -> None:
        self._q = percentile / 100.0
        self._min = min(min_samples, RING)
        self._hosts: OrderedDict[str, _Ring] = OrderedDict()

    def observe(self, host: str, seconds: float) -> None:
        ring = self._hosts.get(host)
        if ring is None:
            ring = self._hosts[host] = _Ring()
            if len(self._hosts) > _MAX_HOSTS:
                self._hosts.popitem(last=False)
        samples = ring.samples
        if len(samples) < RING:
            samples.append(seconds)
        else:
            samples[ring.next] = seconds
            ring.next = (ring.next + 1) % RING
        ring.count += 1
        if len(samples) >= self._min and (ring.threshold is None or ring.count % _REFRESH == 0):
            ordered = sorted(samples)
            ring.threshold = ordered[min(len(ordered) - 1, int(self._q * len(ordered)))]

    def threshold(self, host: str) -> float | None:
        ring = self._hosts.get(host)
        return None if ring is None else ring.threshold
