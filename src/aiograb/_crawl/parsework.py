"""Parsing one document (page, stylesheet, sitemap) into plain data, inline or off the loop.

lexbor's HTML parser is quadratic in nesting depth (24k nested ``<div>``, 256 KiB:
1.6 s; 100k: 32 s), so a hostile page under ``max_page_bytes`` could hold the event loop
for minutes. Small bodies (most pages) are parsed inline; a body larger than
``parse_off_loop_bytes`` goes to a worker process (``_images/workers.py``'s
``WorkerPool``, started on the first big body and closed with the run) with
``parse_timeout`` seconds to answer::

    body <= parse_off_loop_bytes ── parse() on the loop
    body >  parse_off_loop_bytes ── ParsePool.parse ──frame──> worker: handle() ─> parse()
                                       └─ too slow: the worker is killed, the row is parse_timeout

The worker loads this file by path and answers with plain tuples, so nothing
but built-in types crosses the socket.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    from aiograb._crawl.extract import Found, extract_css, extract_html, extract_sitemap
except ImportError:  # a worker started from a source tree that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from aiograb._crawl.extract import Found, extract_css, extract_html, extract_sitemap
from aiograb._images.workers import WorkerPool

__all__ = ["ParseFailure", "ParseOptions", "ParsePool", "Parsed", "handle", "parse"]

_FoundTuple = tuple[str, str, str | None, bool]


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What extraction needs to know (a plain part of ``CrawlOptions``)."""

    all_sizes: bool = False
    follow_nofollow: bool = False
    css: bool = False


@dataclass(slots=True)
class Parsed:
    """What a document holds: URLs as written, the base to resolve them against, and
    for a sitemap whether it is an index (its URLs are sitemaps, not pages)."""

    found: list[Found] = field(default_factory=list)
    base: str | None = None
    is_index: bool = False


class ParseFailure(Exception):
    """A document that could not be parsed; ``code``: ``parse_timeout`` or ``parse_error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse(kind: str, body: bytes, content_type: str | None, options: ParseOptions) -> Parsed:
    """Extract what a ``page``, ``css`` or ``sitemap`` body holds."""
    if kind == "page":
        page = extract_html(
            body,
            content_type,
            all_sizes=options.all_sizes,
            follow_nofollow=options.follow_nofollow,
            css=options.css,
        )
        return Parsed(page.found, page.base)
    if kind == "css":
        urls = extract_css(body.decode("utf-8", "replace"))
        found = [Found(u, "image") for u in urls.images]
        found += [Found(u, "css") for u in urls.imports]
        return Parsed(found)
    locs, is_index = extract_sitemap(body)
    kind = "sitemap" if is_index else "page"
    return Parsed([Found(u, kind) for u in locs], is_index=is_index)


# -- the worker side ----------------------------------------------------------------


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """The worker's entry (see ``WorkerPool``): a request dict in, plain data out."""
    try:
        options = ParseOptions(**request["options"])
        parsed = parse(request["kind"], request["body"], request["content_type"], options)
    except Exception as exc:  # a document no parser copes with is a row, not a dead worker
        return {"ok": False, "code": "parse_error", "message": f"cannot parse: {exc!r}"[:300]}
    found: list[_FoundTuple] = [(f.url, f.kind, f.alt, f.nofollow) for f in parsed.found]
    return {"ok": True, "found": found, "base": parsed.base, "is_index": parsed.is_index}


# -- the loop side ------------------------------------------------------------------


class ParsePool:
    """Parses inline, or in worker processes started on the first body over ``off_loop``.

    ``off_loop`` 0 sends every body to the workers. Close with ``close()`` (the run does).
    """

    def __init__(
        self, options: ParseOptions, *, off_loop: int, timeout: float, workers: int = 0
    ) -> None:
        self.options = options
        self.off_loop = off_loop
        self.timeout = timeout
        self.workers = workers or min(2, os.cpu_count() or 1)
        self._pool: WorkerPool | None = None  # once a big body came
        self._opts = asdict(options)  # plain data for the worker

    async def parse(self, kind: str, body: bytes, content_type: str | None) -> Parsed:
        """Parse ``body``; raise ``ParseFailure`` (timeout, crash or unparseable)."""
        if len(body) <= self.off_loop:
            try:
                return parse(kind, body, content_type, self.options)
            except Exception as exc:
                raise ParseFailure("parse_error", f"cannot parse: {exc!r}"[:300]) from exc
        pool = await self._open()
        request = {"kind": kind, "body": body, "content_type": content_type, "options": self._opts}
        answer = await pool.call(request)
        if answer["ok"]:
            found = [Found(u, k, a, n) for u, k, a, n in answer["found"]]
            return Parsed(found, answer["base"], answer["is_index"])
        if answer["code"] == "worker_timeout":
            message = f"parsing took longer than parse_timeout {self.timeout:g} s"
            raise ParseFailure("parse_timeout", message)
        if answer["code"] == "worker_crashed":
            raise ParseFailure("parse_error", f"the parser died: {answer['message']}")
        raise ParseFailure(answer["code"], answer["message"])

    async def _open(self) -> WorkerPool:
        if self._pool is None:
            # Set before entering: a second big body meanwhile waits in this pool's queue.
            self._pool = WorkerPool(__file__, workers=self.workers, timeout=self.timeout, depth=1)
            await self._pool.__aenter__()
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
