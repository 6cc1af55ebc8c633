"""Which discovered URLs a crawl follows: scope, include/exclude, caps.

Every URL is resolved against its page (or ``<base href>``) and put in the one
normal form of ``aiograb._core.urls`` (the WHATWG URL Standard's) before it is
compared or stored, so one resource is one journal row, for ``get`` and ``crawl``.

>>> normalize_url("HTTP://Example.ORG:80/a/../b%7e#top")
'http://example.org/b%7e'
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aiograb._core.urls import host_of, normalize
from aiograb._crawl.options import CrawlOptions

__all__ = ["Scope", "Verdict", "normalize_url", "registrable_domain"]


def normalize_url(text: str, base: str | None = None) -> str:
    """The normal form of ``text`` (resolved against ``base``); raises ``InvalidURL``."""
    return normalize(text, base)


@functools.cache
def _suffix_list() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@functools.lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """The registrable domain (eTLD+1) of a host; IP addresses and single labels as they are.

    >>> registrable_domain("a.b.example.co.uk")
    'example.co.uk'
    """
    host = host.lower().rstrip(".")
    if host[-1:].isdigit() or ":" in host:  # only then can it be an address (cheap first)
        try:
            ipaddress.ip_address(host.strip("[]"))
            return host
        except ValueError:
            pass
    domain = _suffix_list().privatesuffix(host)  # type: ignore[attr-defined]
    return str(domain) if domain else host


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a page link is not followed (``code`` is the manifest's error class)."""

    code: str
    message: str


class Scope:
    """Decides which page links to follow, given the seeds and ``CrawlOptions``."""

    def __init__(self, options: CrawlOptions, seed_hosts: Iterable[str] = ()) -> None:
        self.options = options
        self._hosts: set[str] = set()
        self._domains: set[str] = set()
        self._include = [re.compile(p) for p in options.include]
        self._exclude = [re.compile(p) for p in options.exclude]
        self._image_include = [re.compile(p) for p in options.image_include]
        self._image_exclude = [re.compile(p) for p in options.image_exclude]
        for host in seed_hosts:
            self.add_seed_host(host)

    def add_seed_host(self, host: str) -> None:
        host = host.lower()
        self._hosts.add(host)
        self._domains.add(registrable_domain(host))

    @property
    def seed_hosts(self) -> frozenset[str]:
        return frozenset(self._hosts)

    def in_scope(self, host: str, scope: str | None = None) -> bool:
        """Whether ``host`` is within ``scope`` (default: the pages' ``options.scope``)."""
        scope = scope or self.options.scope
        if scope == "any":
            return True
        host = host.lower()
        if scope == "host":
            return host in self._hosts
        return host in self._hosts or registrable_domain(host) in self._domains

    def follow(self, url: str, host: str, depth: int, nofollow: bool) -> Verdict | None:
        """None when a page link at ``depth`` is to be fetched, else why not."""
        o = self.options
        if not self.in_scope(host):
            return Verdict("out_of_scope", f"{host} is outside --scope {o.scope}")
        if self._include and not any(p.search(url) for p in self._include):
            return Verdict("excluded", "matches no --include pattern")
        for pattern in self._exclude:
            if pattern.search(url):
                return Verdict("excluded", f"matches --exclude {pattern.pattern!r}")
        if nofollow:
            return Verdict("nofollow", "rel=nofollow (use --follow-nofollow to follow)")
        if depth > o.max_depth:
            return Verdict("depth_limit", f"deeper than --depth {o.max_depth}")
        return None

    def image(self, url: str) -> Verdict | None:
        """None when an image found on a page is to be fetched, else why not
        (``image_scope``, ``image_include``, ``image_exclude``)."""
        o = self.options
        if o.image_scope != "any" and not self.in_scope(host := host_of(url), o.image_scope):
            return Verdict("out_of_scope", f"{host} is outside image_scope {o.image_scope}")
        if self._image_include and not any(p.search(url) for p in self._image_include):
            return Verdict("excluded", "matches no image_include pattern")
        for pattern in self._image_exclude:
            if pattern.search(url):
                return Verdict("excluded", f"matches image_exclude {pattern.pattern!r}")
        return None
