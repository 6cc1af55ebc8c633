"""The run's cookies, one policy for every transport: the jar, what it sends, what it keeps.

The user's Netscape ``cookies.txt`` is read once, before the run (a bad file is a
``UsageError``), into aiohttp's ``CookieJar`` (RFC 6265 domain, path, ``Secure``,
expiry and host-only rules; hosts given by IP address keep their cookies), with
responses' cookies for a public suffix refused. The aiohttp transport hands the
jar to its session; a transport that builds requests itself (libcurl's) asks
``CookiePolicy`` for each request's ``Cookie`` header and gives it every
response's ``Set-Cookie`` fields, redirects included, so both send the same
cookies to the same places. Without a cookie file no jar exists: no work per request.
"""

from __future__ import annotations

import functools
import http.cookiejar
import ipaddress
import os
import re
import time
from collections.abc import Sequence
from email.utils import formatdate
from http.cookies import Morsel
from typing import Any

import aiohttp
from yarl import URL

from aiograb._core.errors import UsageError
from aiograb._http.base import Headers

__all__ = ["CookieEntry", "CookiePolicy", "cookie_jar", "read_cookies"]

CookieEntry = tuple["Morsel[str]", URL]


def read_cookies(path: str | os.PathLike[str]) -> list[CookieEntry]:
    """The cookies of a Netscape ``cookies.txt`` (curl, wget and browser exporters write
    it), each as a morsel with its domain, path, secure flag and expiry, and the URL
    it counts as set by. Expired cookies are left out; an expiry of 0 is a session
    cookie (as curl writes it)."""
    file = http.cookiejar.MozillaCookieJar()
    try:
        file.load(str(path), ignore_discard=True, ignore_expires=True)
    except (OSError, http.cookiejar.LoadError) as exc:
        raise UsageError(f"cookies: cannot read {path}: {exc}") from None
    now = time.time()
    entries: list[CookieEntry] = []
    for cookie in file:
        if cookie.expires and cookie.expires < now:
            continue
        morsel: Morsel[str] = Morsel()
        morsel.set(cookie.name, cookie.value or "", cookie.value or "")
        morsel["path"] = cookie.path or "/"
        if cookie.secure:
            morsel["secure"] = True
        if cookie.expires:
            morsel["expires"] = formatdate(cookie.expires, usegmt=True)
        if cookie.has_nonstandard_attr("HttpOnly"):
            morsel["httponly"] = True
        host = cookie.domain.lstrip(".")
        if cookie.domain_specified:  # the file's "include subdomains" column is TRUE
            morsel["domain"] = host
        # else host-only: "set by" the host itself, aiohttp keeps it for that host alone
        entries.append((morsel, URL.build(scheme="https", host=host)))
    return entries


_DOMAIN_ATTR = re.compile(r";\s*domain\s*=\s*([^;]*)", re.IGNORECASE)


class _SiteJar(aiohttp.CookieJar):
    """aiohttp's jar, refusing a response's cookie for a public suffix, as browsers do
    (``Domain=com``, ``Domain=github.io``): else one site's cookie would be sent to
    every site under that suffix for the rest of the run. The user's own file is
    taken as it is."""

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        kept = [h for h in headers if not _for_public_suffix(h)]
        super().update_cookies_from_headers(kept, response_url)


def _for_public_suffix(header: str) -> bool:
    found = _DOMAIN_ATTR.search(header)
    if found is None:
        return False
    domain = found.group(1).strip().strip('"').lstrip(".").rstrip(".").lower()
    if not domain:
        return False
    try:
        ipaddress.ip_address(domain.strip("[]"))
        return False
    except ValueError:
        pass
    return bool(_suffix_list().is_public(domain))


@functools.cache
def _suffix_list() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def cookie_jar(entries: list[CookieEntry]) -> aiohttp.CookieJar:
    """A jar (on the running loop) holding ``entries``; responses add to it.

    ``unsafe=True`` lets hosts given by IP address keep cookies, as browsers do:
    aiohttp still never domain-matches an IP, so such a cookie stays host-only.
    """
    jar = _SiteJar(unsafe=True)
    for morsel, url in entries:
        jar.update_cookies({morsel.key: morsel}, url)
    return jar


class CookiePolicy:
    """The jar as a transport that writes its own requests uses it (libcurl's).

    ``header`` is the ``Cookie`` field for a request, as aiohttp's client writes it
    (the request's own ``Cookie`` field merged in, the jar's cookie winning a name,
    names in order); ``keep`` stores a response's ``Set-Cookie`` fields. The jar is
    made on the running loop, at the first request.
    """

    __slots__ = ("_entries", "_jar")

    def __init__(self, entries: list[CookieEntry]) -> None:
        self._entries = entries
        self._jar: aiohttp.CookieJar | None = None

    def _opened(self) -> aiohttp.CookieJar:
        if self._jar is None:
            self._jar = cookie_jar(self._entries)
        return self._jar

    def header(self, url: URL, given: str | None = None) -> str | None:
        """The ``Cookie`` field to send to ``url`` (``given``: the request's own, or None)."""
        found = self._opened().filter_cookies(url)
        if not found:
            return given
        pairs: dict[str, str] = {}
        for part in (given or "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                pairs[name] = value
        pairs.update((name, morsel.coded_value) for name, morsel in found.items())
        return "; ".join(f"{name}={value}" for name, value in sorted(pairs.items()))

    def keep(self, headers: Headers, url: URL) -> None:
        """Store the cookies a response for ``url`` sets (public suffixes refused)."""
        fields = headers.getall("Set-Cookie", ())
        if fields:
            self._opened().update_cookies_from_headers(fields, url)
