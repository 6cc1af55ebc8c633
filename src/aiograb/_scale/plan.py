"""The plan: a run's input split once into parts by registrable domain, recorded in OUT.

::

    input rows ──(stream)──> OUT/.plan-spill.jsonl + a count per domain
    counts ──(largest first, to the least loaded part)──> domain → part(s)
    spill ──(stream)──> OUT/parts/NNNNN/input.jsonl, then OUT/plan.json (last: the commit)

Every host's politeness (per-host limit, rate, Retry-After, robots) is exact
when all its URLs are in one process, so a registrable domain goes to one
part — unless it holds more than a part's share of the input: then it is
split over ``ceil(count / share)`` parts by the hash of the normalised URL
(so a repeated URL always lands in the same part and is fetched once), and
those parts divide the per-host limit and rate between them
(``Part.host_divisor``).

Memory: one counter per distinct domain, never the input. The plan is
deterministic (sorted by count, then name; a stable hash) and, once
``plan.json`` exists, final: a rerun, with any ``--procs`` or executor,
resumes the same parts. A planning run that was killed before ``plan.json``
was written leaves nothing that counts; the next run plans again.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiograb._core.errors import InputError, InvalidURL, UsageError
from aiograb._core.urls import parse_url
from aiograb._get.sources import InputRow
from aiograb._store.atomic import replacing
from aiograb._store.parts import PARTS_DIR, PLAN_NAME

__all__ = ["PARTS_DIR", "PLAN_NAME", "Part", "Plan", "load_plan", "make_plan", "read_part_rows"]

PART_INPUT = "input.jsonl"
SPILL_NAME = ".plan-spill.jsonl"
PLAN_VERSION = 1
MAX_PARTS = 100_000
_NO_HOST = ""  # bad rows and URLs without a host: no politeness to keep, part 0


@dataclass(frozen=True, slots=True)
class Part:
    index: int
    rows: int
    host_divisor: int = 1  # >1: holds a share of a split domain; divide per-host limits

    @property
    def name(self) -> str:
        return f"{self.index:05d}"


@dataclass(frozen=True, slots=True)
class Plan:
    out: Path
    parts: tuple[Part, ...]
    rows: int
    split: dict[str, int]  # domains split over several parts: domain -> parts

    def part_dir(self, part: Part) -> Path:
        return self.out / PARTS_DIR / part.name


def load_plan(out: Path) -> Plan | None:
    """The plan recorded in ``out``, or None when there is none (yet)."""
    try:
        data = json.loads((out / PLAN_NAME).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{out / PLAN_NAME} is unreadable ({exc}); remove it to plan again"
        ) from exc
    if data.get("version") != PLAN_VERSION:
        raise InputError(f"{out / PLAN_NAME} is from another aiograb version")
    parts = tuple(Part(p["index"], p["rows"], p["host_divisor"]) for p in data["parts"])
    return Plan(out, parts, data["rows"], data["split"])


class DomainOf:
    """The registrable domain of a row's host; ``""`` for a row that is not a URL.

    Cheap on purpose (a regular expression for the host, ``urlsplit`` only for odd URLs,
    the suffix lookup remembered per host): planning reads every row once. A URL that the
    full check later rejects still has its own row, in the part its host went to.
    """

    _MAX_HOSTS = 1 << 20  # remembered hosts; forgotten all at once past this

    def __init__(self) -> None:
        from aiograb._crawl.scope import registrable_domain

        self._registrable = registrable_domain
        self._hosts: dict[str, str] = {}

    def __call__(self, row: InputRow) -> str:
        if row.error is not None:
            return _NO_HOST
        host = _fast_host(row.url)
        if host is None:
            try:
                host = (urlsplit(row.url.strip()).hostname or "").lower()
            except ValueError:
                return _NO_HOST
        domain = self._hosts.get(host)
        if domain is None:
            domain = self._domain(host)
            if len(self._hosts) >= self._MAX_HOSTS:
                self._hosts.clear()
            self._hosts[host] = domain
        return domain

    def _domain(self, host: str) -> str:
        if not host.isascii():  # one spelling for a host however the input writes it
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                return _NO_HOST
        return self._registrable(host).replace("\t", " ") if host else _NO_HOST


# scheme://netloc of a plain URL: no userinfo, no IPv6 brackets, no backslash.
_PLAIN = re.compile(r"https?://([^/?#@\[\\]+)(?=[/?#]|$)", re.IGNORECASE)


def _fast_host(url: str) -> str | None:
    """The host of a plain ``http(s)://host[:port]/...`` URL, or None to ask urlsplit."""
    match = _PLAIN.match(url)
    if match is None:
        return None
    host, _, port = match.group(1).partition(":")
    if port and not port.isdigit():
        return None
    return host.lower()


def _url_key(url: str) -> str:
    """The normalised URL (the journal's key), so repeats of a split domain meet."""
    try:
        return str(parse_url(url))
    except InvalidURL:
        return url


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _assign(counts: Counter[str], n_parts: int) -> tuple[dict[str, list[int]], list[int]]:
    """Domains to parts, largest first, each to the least loaded part(s)."""
    total = sum(counts.values())
    share = max(1, math.ceil(total / n_parts))
    loads = [(0, i) for i in range(n_parts)]  # a heap of (load, part)
    assignment: dict[str, list[int]] = {}
    for domain, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        k = 1 if domain == _NO_HOST else min(n_parts, math.ceil(count / share))
        chosen = [heapq.heappop(loads) for _ in range(k)]
        for load, index in chosen:
            heapq.heappush(loads, (load + math.ceil(count / k), index))
        assignment[domain] = sorted(index for _, index in chosen)
    return assignment, [load for load, _ in sorted(loads, key=lambda li: li[1])]


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


_STRING = json.encoder.encode_basestring  # in C; what ensure_ascii=False writes


def _encode(row: InputRow) -> str:
    if row.error is None and row.extra is None and isinstance(row.line, int):
        return f"[{row.line}, {_STRING(row.url)}, null, null]"  # the usual row, as below
    return _ENCODER.encode([row.line, row.url, row.error, row.extra])


def read_part_rows(path: Path) -> Iterator[InputRow]:
    """The rows of one part's input file, with their original line numbers."""
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            line, url, error, extra = json.loads(text)
            yield InputRow(line=line, url=url, error=error, extra=extra)


def make_plan(rows: Iterable[InputRow], out: Path, n_parts: int) -> Plan:
    """Plan ``rows`` into ``n_parts`` parts under ``out`` (streaming), and record it."""
    if not 1 <= n_parts <= MAX_PARTS:
        raise UsageError(f"parts must be between 1 and {MAX_PARTS}")
    out.mkdir(parents=True, exist_ok=True)
    parts_root = out / PARTS_DIR
    if parts_root.exists():  # an earlier planning run was killed before plan.json
        shutil.rmtree(parts_root)
    spill, counts, domain_of = out / SPILL_NAME, Counter[str](), DomainOf()
    with spill.open("w", encoding="utf-8") as fh:
        for row in rows:
            domain = domain_of(row)
            counts[domain] += 1
            fh.write(f"{domain}\t{_encode(row)}\n")
    assignment, _loads = _assign(counts, n_parts)
    sizes = _route(spill, parts_root, assignment, n_parts)
    spill.unlink()
    split = {d: len(p) for d, p in assignment.items() if len(p) > 1}
    divisors = [1] * n_parts
    for domain, indexes in assignment.items():
        for i in indexes:
            divisors[i] = max(divisors[i], len(indexes) if domain in split else 1)
    plan = Plan(
        out, tuple(Part(i, sizes[i], divisors[i]) for i in range(n_parts)), sum(sizes), split
    )
    _record(plan)
    return plan


def _route(spill: Path, root: Path, assignment: dict[str, list[int]], n: int) -> list[int]:
    """Second pass: each spilled row to its part's input file."""
    sizes = [0] * n
    files = []
    for i in range(n):
        (root / f"{i:05d}").mkdir(parents=True)
        files.append((root / f"{i:05d}" / PART_INPUT).open("w", encoding="utf-8"))
    try:
        with spill.open(encoding="utf-8") as fh:
            for text in fh:
                domain, _, encoded = text.partition("\t")
                indexes = assignment[domain]
                if len(indexes) == 1:
                    i = indexes[0]
                else:  # a split domain: by the hash of the normalised URL
                    key = _url_key(json.loads(encoded)[1])
                    i = indexes[_stable_hash(key) % len(indexes)]
                files[i].write(encoded)
                sizes[i] += 1
    finally:
        for f in files:
            f.close()
    return sizes


def _record(plan: Plan) -> None:
    data: dict[str, Any] = {
        "version": PLAN_VERSION,
        "rows": plan.rows,
        "parts": [
            {"index": p.index, "rows": p.rows, "host_divisor": p.host_divisor} for p in plan.parts
        ],
        "split": plan.split,
    }
    with replacing(plan.out / PLAN_NAME) as tmp, tmp.open("w") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
