"""robots.txt: fetched once per origin, kept in the journal (CrawlTables), obeyed (protego).

Before the first request to an origin (``scheme://host:port``), its
``/robots.txt`` is fetched through the same fetcher, slots and address guard as
everything else; concurrent first requests wait for that one fetch. What it
answered is stored in the journal, so a resumed crawl does not fetch it again.
Following RFC 9309: a 4xx (or an unreadable body) means no rules; a 5xx or an
unreachable server means *complete disallow* for the crawl (its rows are
skipped as ``robots_unavailable``; ``--ignore-robots`` gets past it); a
``Crawl-delay`` for our user agent sets that host's minimum interval.

Groups are chosen here, per RFC 9309, before protego sees the file (protego
matches a group name anywhere at a word start of the agent, so ``ai`` or
``image`` groups applied to ``aiograb``, and it lets an unknown line end a
group): a UTF-8 BOM is skipped; a group applies when the product token of one
of its ``User-agent`` lines equals ``user_agent_token`` case-insensitively
(all such groups merged), else the ``*`` group; lines other than
``User-agent``/``Allow``/``Disallow``/``Crawl-delay`` are ignored and do not
end a group. protego then matches paths (wildcards, ``$``, longest match) in
that one group.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protego import Protego
from yarl import URL

from aiograb._core.errors import BlockedAddress, HTTPStatusError, TransportError
from aiograb._core.models import Request
from aiograb._fetch.fetcher import Fetcher
from aiograb._fetch.politeness import Politeness
from aiograb._store.crawl import CrawlTables
from aiograb._store.sinks import MemorySink

__all__ = ["MAX_CRAWL_DELAY", "Robots", "group_for"]

MAX_CRAWL_DELAY = 60.0  # a larger Crawl-delay is taken as this (seconds)
MAX_ROBOTS_BYTES = 512 * 1024
CACHED_ORIGINS = 10_000  # parsed rules kept in memory; the rest reload from the journal


_LINE = re.compile(r"\s*([A-Za-z_ -]+?)\s*:\s*(.*?)\s*$")
# "Disallow /x" without the colon (protego reads it; so do we).
_NO_COLON = re.compile(r"\s*(user-agent|allow|disallow|crawl-delay|sitemap)\s+(\S.*?)\s*$", re.I)
_TOKEN = re.compile(r"[A-Za-z_-]+")
# Field names as written in the wild (protego's tolerance, kept): -> the RFC's name.
_FIELDS = {
    "user-agent": "user-agent",
    "useragent": "user-agent",
    "user agent": "user-agent",
    "allow": "allow",
    "disallow": "disallow",
    "dissallow": "disallow",
    "dissalow": "disallow",
    "disalow": "disallow",
    "crawl-delay": "crawl-delay",
    "crawl delay": "crawl-delay",
    "sitemap": "sitemap",
    "site-map": "sitemap",
}


def group_for(body: str, token: str) -> tuple[str, list[str]]:
    r"""The rules of the group(s) for product ``token``, as a robots.txt of one ``*``
    group, and the file's ``Sitemap:`` URLs (RFC 9309 section 2.2.1).

    >>> group_for("User-agent: ai\nDisallow: /\nSitemap: /s.xml", "aiograb")
    ('User-agent: *\n', ['/s.xml'])
    """
    groups: dict[str, list[str]] = {}  # product token (lower) or "*" -> rule lines
    agents: list[str] = []
    agents_open = False  # the last record was a User-agent line: the next one joins it
    sitemaps: list[str] = []
    for raw in body.removeprefix("\ufeff").splitlines():
        record = _record(raw.split("#", 1)[0])
        if record is None:
            continue  # not a record we know: ignored, and it does not end a group
        field, value = record
        if field == "sitemap":
            sitemaps.append(value)
        elif field == "user-agent":
            if not agents_open:
                agents, agents_open = [], True
            name = _TOKEN.match(value)  # "aiograb/1.0" names the product "aiograb"
            agents.append("*" if value.startswith("*") else name.group().lower() if name else "")
        else:
            agents_open = False
            for agent in agents:
                groups.setdefault(agent, []).append(f"{field}: {value}")
    rules = groups.get(token.lower(), groups.get("*", []))
    return "".join(f"{line}\n" for line in ["User-agent: *", *rules]), sitemaps


def _record(line: str) -> tuple[str, str] | None:
    """(field, value) of a robots.txt line, the field by its RFC name; None if unknown."""
    for pattern in (_LINE, _NO_COLON):
        found = pattern.match(line)
        if found is not None and (field := _FIELDS.get(found.group(1).lower())) is not None:
            return field, found.group(2)
    return None


@dataclass(frozen=True, slots=True)
class _Rules:
    parser: Protego | None  # None: no rules (allow all)
    unavailable: bool = False  # 5xx or unreachable: disallow all


def origin_of(url: URL) -> str:
    return f"{url.scheme}://{url.raw_host}:{url.port}"


class Robots:
    """Per-origin robots.txt rules; ``verdict(url)`` says whether a URL may be fetched."""

    def __init__(
        self,
        fetcher: Fetcher,
        cache: CrawlTables,
        politeness: Politeness,
        user_agent_token: str,
        *,
        obey: bool,
        on_sitemaps: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._cache = cache  # each origin's robots.txt, kept in the journal
        self._politeness = politeness
        self._agent = user_agent_token  # the product token groups are matched by
        self._obey = obey
        self._on_sitemaps = on_sitemaps
        self._rules: OrderedDict[str, _Rules] = OrderedDict()
        self._loading: dict[str, asyncio.Event] = {}
        self.fetched = 0  # robots.txt requests made by this run

    @property
    def active(self) -> bool:
        return self._obey or self._on_sitemaps is not None

    async def verdict(self, url: URL) -> tuple[str, str] | None:
        """None when ``url`` may be fetched, else (error class, message)."""
        if not self.active:
            return None
        rules = await self._load(origin_of(url))
        if not self._obey:
            return None
        if rules.unavailable:
            return (
                "robots_unavailable",
                "robots.txt answered 5xx or was unreachable: complete disallow (RFC 9309)",
            )
        if rules.parser is not None and not rules.parser.can_fetch(str(url), self._agent):
            return ("robots_disallowed", "disallowed by robots.txt")
        return None

    async def _load(self, origin: str) -> _Rules:
        while True:
            rules = self._rules.get(origin)
            if rules is not None:
                self._rules.move_to_end(origin)
                return rules
            loading = self._loading.get(origin)
            if loading is None:
                break
            await loading.wait()  # another request is fetching it; if it was cancelled, retry
        loading = self._loading[origin] = asyncio.Event()
        try:
            rules = await self._read(origin)
            self._rules[origin] = rules
            if len(self._rules) > CACHED_ORIGINS:
                self._rules.popitem(last=False)
        finally:
            del self._loading[origin]
            loading.set()
        return rules

    async def _read(self, origin: str) -> _Rules:
        stored = self._cache.robots(origin)
        if stored is None:
            stored = await self._fetch(origin)
            self._cache.save_robots(origin, *stored)
            fresh = True
        else:
            fresh = False
        status, body = stored
        if status == 0 or status >= 500:
            return _Rules(None, unavailable=True)
        if not 200 <= status < 300 or body is None:
            return _Rules(None)
        group, sitemaps = group_for(body, self._agent)
        parser = Protego.parse(group)
        delay = parser.crawl_delay(self._agent)
        if delay:
            host = URL(origin).host or ""
            self._politeness.set_delay(host, min(float(delay), MAX_CRAWL_DELAY))
        if fresh and self._on_sitemaps is not None and sitemaps:
            self._on_sitemaps(sitemaps)
        return _Rules(parser)

    async def _fetch(self, origin: str) -> tuple[int, str | None]:
        self.fetched += 1
        outcome = await self._fetcher.fetch(Request(f"{origin}/robots.txt"), MemorySink(), "robots")
        if outcome.ok and outcome.stored is not None and outcome.stored.body is not None:
            return outcome.status or 200, outcome.stored.body.decode("utf-8-sig", "replace")
        error = outcome.error
        if isinstance(error, BlockedAddress):
            return -1, None  # no rules: the request itself will be refused the same way
        if isinstance(error, HTTPStatusError):
            return error.status, None
        if isinstance(error, TransportError):
            return 0, None
        return outcome.status or 200, None  # a body we would not read: no rules
