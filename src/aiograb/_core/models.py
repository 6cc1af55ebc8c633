"""The data that flows through aiograb: what is asked, what came of it, where it went.

``InputRow`` (one record of the input) → ``Request`` (one HTTP request) →
``Outcome`` (what became of it: a journal and manifest row) with ``Stored``
(where its body went) and, for timelines, ``Timing``. Plain data, no I/O, so
every room can import it without importing the fetcher or the store.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiograb._core.errors import RequestError

__all__ = ["InputRow", "Outcome", "Request", "Stored", "Timing"]

_NO_BODY: Any = object()
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class InputRow:
    """One record of the input.

    ``line`` is the 1-based line number (txt, jsonl), the physical line where
    the record starts (csv, tsv) or the row number (parquet). ``url`` is the
    stripped URL text; for undecodable bytes a readable form with ``\\x..``
    escapes. ``error`` is None or a row error class (see ``open_source``).
    ``extra`` maps each requested extra column to its value as read (None
    where absent; undecodable bytes in a csv cell shown as ``\\x..``), or is
    None when no extra columns were asked for.
    """

    line: int
    url: str
    error: str | None = None
    extra: Mapping[str, Any] | None = None
    message: str | None = None  # why the row is an error, in our words (None: the default)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request for the client API.

    >>> Request("https://api.example.org/items", method="POST", json={"id": 1})
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] | None = None
    json: Any = _NO_BODY
    data: bytes | str | None = None
    tag: Any = None  # anything of the caller's, handed back with the result
    # The client hedges only idempotent requests: GET/HEAD/OPTIONS unless said here.
    idempotent: bool | None = None
    hedge: bool = True  # False: never send a hedge for this request

    @property
    def hedgeable(self) -> bool:
        if not self.hedge:
            return False
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in _SAFE

    @property
    def bare(self) -> bool:
        """No headers and no body of its own (a fan-out's usual call)."""
        return self.headers is None and self.data is None and self.json is _NO_BODY

    def body(self) -> tuple[bytes | None, dict[str, str]]:
        if self.json is not _NO_BODY:
            return jsonlib.dumps(self.json).encode(), {"Content-Type": "application/json"}
        if isinstance(self.data, str):
            return self.data.encode(), {"Content-Type": "text/plain; charset=utf-8"}
        return self.data, {}


@dataclass(frozen=True, slots=True)
class Stored:
    """What a body writer committed."""

    size: int
    sha256: str
    path: str | None = None  # relative to the output folder
    body: bytes | None = None  # in-memory sinks only


@dataclass(slots=True)
class Timing:
    """``perf_counter()`` instants of a URL's last attempt and the thread it ran on.

    Read by ``aiograb bench`` to draw request timelines; nothing else needs it.
    """

    thread: int
    start: float = 0.0
    first_byte: float = 0.0
    end: float = 0.0


@dataclass(slots=True)
class Outcome:
    """What became of one URL; the fields of a journal and manifest row."""

    url: str
    ok: bool = False
    final_url: str | None = None
    status: int | None = None
    content_type: str | None = None
    stored: Stored | None = None
    error: RequestError | None = None
    attempts: int = 0
    started: float = 0.0  # wall clock (time.time())
    elapsed: float = 0.0  # seconds, all attempts and waits
    headers: Mapping[str, str] = field(default_factory=dict)
    info: dict[str, Any] | None = None  # what later processing learnt (width, height, ...)
    timing: Timing | None = None

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error is not None else None
