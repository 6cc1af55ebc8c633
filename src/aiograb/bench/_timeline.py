"""Per-request timelines: from the child's raw ``perf_counter`` instants to
milliseconds since the first request, threads numbered, and how much overlapped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["Timeline", "max_in_flight", "timeline_from_raw"]

# One request: start, first byte, end (ms since the run's first start), thread number, ok.
Request = tuple[float, float, float, int, bool]


def max_in_flight(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t).

    >>> max_in_flight([(0, 2), (1, 3), (3, 4)])
    2
    """
    events = sorted(e for start, end in intervals for e in ((start, 1), (end, -1)))
    peak = now = 0
    for _t, step in events:
        now += step
        peak = max(peak, now)
    return peak


class Timeline:
    """The requests of one run, with threads numbered 0.. in order of first use."""

    def __init__(self, requests: Sequence[Request], thread_names: Sequence[str]) -> None:
        self.requests = list(requests)
        self.thread_names = list(thread_names)

    def max_in_flight(self) -> int:
        return max_in_flight((r[0], r[2]) for r in self.requests)

    def max_in_flight_per_thread(self) -> list[int]:
        return [
            max_in_flight((r[0], r[2]) for r in self.requests if r[3] == t)
            for t in range(len(self.thread_names))
        ]

    def to_json(self) -> dict[str, Any]:
        per_thread = self.max_in_flight_per_thread()
        return {
            "threads": self.thread_names,
            "max_in_flight": self.max_in_flight(),
            "max_in_flight_one_thread": max(per_thread, default=0),
            "requests": [
                [round(a, 3), round(b, 3), round(c, 3), t, ok] for a, b, c, t, ok in self.requests
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timeline:
        reqs = [
            (float(a), float(b), float(c), int(t), bool(ok)) for a, b, c, t, ok in data["requests"]
        ]
        return cls(reqs, data["threads"])


def timeline_from_raw(raw: Sequence[Sequence[Any]], main_thread: int) -> Timeline:
    """Rows of ``(t_start, t_first_byte, t_end, thread_ident, ok)`` (seconds) as a Timeline.

    The thread that ran the event loop (or the whole sync run) is the process's main
    thread and is named ``main``; pool threads are ``T1``, ``T2``, ... by first start.
    """
    rows = sorted(raw, key=lambda r: r[0])
    if not rows:
        return Timeline([], [])
    t0 = rows[0][0]
    numbers: dict[int, int] = {}
    names: list[str] = []
    out: list[Request] = []
    for start, first_byte, end, ident, ok in rows:
        if ident not in numbers:
            numbers[ident] = len(names)
            pooled = sum(1 for name in names if name != "main")
            names.append("main" if ident == main_thread else f"T{pooled + 1}")
        fb = first_byte if first_byte >= start else start  # no first byte: a failure before it
        out.append(
            ((start - t0) * 1000, (fb - t0) * 1000, (end - t0) * 1000, numbers[ident], bool(ok))
        )
    return Timeline(out, names)
