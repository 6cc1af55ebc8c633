"""What one measured run does: the URLs (the local server's images with a latency and
size profile) and how the client fetches them. ``RunSpec`` travels to the child
process as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass

__all__ = ["RunSpec", "Workload"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Workload:
    """``n`` image URLs of the local test server, each answered after ``latency_ms``.

    The profile travels in the query string (the server honours ``?latency_ms=``
    and ``?size=`` per request), so one server process serves every profile.

    >>> Workload(base_url="http://127.0.0.1:8080", n=2, latency_ms=50).url(1)
    'http://127.0.0.1:8080/img/1.jpg?latency_ms=50&size=small'
    """

    base_url: str
    n: int
    latency_ms: float
    size: str = "small"
    ext: str = "jpg"

    def url(self, i: int) -> str:
        query = f"latency_ms={self.latency_ms:g}&size={self.size}"
        return f"{self.base_url}/img/{i}.{self.ext}?{query}"

    def urls(self) -> Iterator[str]:
        return (self.url(i) for i in range(self.n))


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSpec:
    """One run of one engine over a workload, in a child process (see ``_child``)."""

    engine: str
    workload: Workload
    concurrency: int
    out: str
    timeline: bool = False  # record every request's start, first byte, end and thread
    cpu: str = "none"  # none | inline | pool: decode+resize each file (async engine)
    thumb: int = 256
    workers: int = 1
    lag_probe: bool = True  # async engine: how late a 10 ms timer fires

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        data = json.loads(text)
        data["workload"] = Workload(**data["workload"])
        return cls(**data)
