"""The one URL normal form (the WHATWG URL Standard's), and the names files are stored under.

Every URL aiograb fetches — from an input list, a seed, HTML, CSS, a sitemap, a
``Location`` header — goes through :func:`normalize`, which returns what a
browser would request: the URL Standard's ``href`` (parsed by ada, a conformant
parser) without its fragment. That string is both the journal key (one resource,
one row) and, byte for byte, the request target sent (the transport is given it
as already encoded). What the standard does, we do:

- tabs and newlines anywhere are removed, leading/trailing C0 controls and spaces
  trimmed; ``\\`` is ``/`` in http(s) URLs; ``http:example.com`` is absolute alone
  and relative to an http base;
- the host is lower-cased and IDNA-mapped per UTS #46 (ignored code points such as
  U+00AD vanish), IPv4 in any number form is written dotted-decimal
  (``0x7f.1`` → ``127.0.0.1``), IPv6 literals are validated and compressed;
- the default port is dropped, dot segments (also ``%2e``) removed, an empty path
  is ``/``;
- percent-encoding is preserved as given: ``%2F`` stays ``%2F``, ``%7e`` stays
  ``%7e``, ``+`` stays ``+``; only what the standard's encode sets name (space,
  ``"``, ``<``, ``>``, non-ASCII, ...) is percent-encoded, as UTF-8.

Two spellings the standard keeps apart (``%7e`` and ``~``) stay two keys: the
standard's URL equivalence is equality of serialisations, and folding them would
mean sending bytes other than the ones given.

Beyond the standard, aiograb refuses what it will not fetch: schemes other than
http/https (``unsupported_scheme``), URLs longer than ``MAX_URL_LENGTH``, and
credentials in the URL (``invalid_url``): the standard parses userinfo, but it
leaks into logs and manifests, and browsers refuse it on subresources.

>>> normalize("HTTP://Example.ORG:80/a/../b%7e c#top")
'http://example.org/b%7e%20c'
>>> normalize("images\\\\photo.jpg", base="http://a.org/dir/page.html")
'http://a.org/dir/images/photo.jpg'
"""

from __future__ import annotations

import hashlib
import re

from ada_url import join_url, normalize_url
from yarl import URL

from aiograb._core.errors import InvalidURL

__all__ = [
    "MAX_URL_LENGTH",
    "SUPPORTED_SCHEMES",
    "host_of",
    "normalize",
    "parse_url",
    "url_key",
    "url_of",
]

SUPPORTED_SCHEMES = frozenset({"http", "https"})
MAX_URL_LENGTH = 8192

_SURROGATE = re.compile("[\ud800-\udfff]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# scheme ':' slashes authority — for explaining a URL the parser refused (not the hot path).
_AUTHORITY = re.compile(r"[\x00-\x20]*[A-Za-z][A-Za-z0-9+.-]*:[/\\\t\n\r]*([^/\\?#]*)")

# A URL already in normal form, as the parser would write it (its href), in the plainest
# spelling: lower-case http(s); a lower-case ASCII host whose last label starts with a
# letter (a host ending in a number is IPv4 to the standard), no punycode, or dotted-
# decimal IPv4; a port without leading zeros; a path without dot segments (nor %2e) and a
# query of characters neither encode set names. Such a URL is its own normal form
# (tests/core/test_urls_fast.py checks the claim against ada); anything else goes to ada.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_LAST = r"[a-z](?:[a-z0-9-]*[a-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PATH = r"[A-Za-z0-9._~!$&'()*+,;=:@-]"  # a path keeps these as they are
_IN_QUERY = r"[A-Za-z0-9._~!$&()*+,;=:@/?-]"  # a special URL's query encodes "'"
_SEGMENT = rf"(?!\.\.?(?:[/?]|\Z)){_PATH}*(?:%(?!2[eE])[0-9A-Fa-f]{{2}}{_PATH}*)*"
_QUERY = rf"{_IN_QUERY}*(?:%[0-9A-Fa-f]{{2}}{_IN_QUERY}*)*"
_NORMAL = re.compile(
    rf"(https?)://({_OCTET}(?:\.{_OCTET}){{3}}|(?:{_LABEL}\.)*{_LAST})"
    rf"(?::([1-9][0-9]{{0,4}}))?((?:/{_SEGMENT})+)(?:\?({_QUERY}))?\Z",
    re.ASCII,
)


def _normal(text: str) -> re.Match[str] | None:
    """``text`` as a URL in normal form (see ``_NORMAL``: groups scheme, host, port,
    path, query), its port valid and not the scheme's default; None if it is not one."""
    found = _NORMAL.match(text)
    if found is None or "xn--" in text:  # punycode: ada checks it
        return None
    port = found.group(3)
    if port is None or (int(port) <= 65535 and port != ("443" if text[4] == "s" else "80")):
        return found
    return None


def normalize(text: str, base: str | None = None) -> str:
    """The normal form of ``text``, resolved against ``base`` (a normal form) when given.

    Raises ``InvalidURL`` (codes ``invalid_url``, ``unsupported_scheme``).

    >>> normalize("http://0x7f.1:8080")
    'http://127.0.0.1:8080/'
    """
    if len(text) <= MAX_URL_LENGTH and _normal(text) is not None:
        return text  # absolute: the base does not matter
    return _by_ada(text, base)


def _by_ada(text: str, base: str | None) -> str:
    """:func:`normalize` of a URL off the fast path."""
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters", url=text[:200])
    try:
        href = normalize_url(text) if base is None else join_url(base, text)
    except ValueError:
        fixed = _lone_surrogates(text, base)
        if fixed is None:
            raise InvalidURL(_why(text, base), url=text[:200]) from None
        href = fixed
    if href.startswith("http://"):
        start = 7
    elif href.startswith("https://"):
        start = 8
    else:
        scheme = href.partition(":")[0]
        raise InvalidURL(
            f"unsupported scheme {scheme!r} (only http and https)",
            url=text[:200],
            code="unsupported_scheme",
        )
    # In a special URL's serialisation the first '#' starts the fragment, the first
    # '/' after the scheme ends the authority, and '@' there means userinfo.
    cut = href.find("#", start)
    if cut >= 0:
        href = href[:cut]
    if "@" in href[start : href.find("/", start)]:
        raise InvalidURL("credentials in URLs are not supported", url=text[:200])
    if len(href) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters", url=text[:200])
    return href


def parse_url(text: str, base: str | None = None) -> URL:
    """:func:`normalize`, as a yarl URL the transport sends byte for byte (``encoded=True``).

    >>> str(parse_url("https://example.org/a b.jpg"))
    'https://example.org/a%20b.jpg'
    """
    if len(text) <= MAX_URL_LENGTH and (found := _normal(text)) is not None:
        return _built(found)
    return URL(_by_ada(text, base), encoded=True)


def url_of(href: str) -> URL:
    """The yarl URL of ``href``, a URL already in normal form (a journal key).

    Split by hand, not by ``_NORMAL`` again (its match costs more than yarl's build):
    in the normal form of an http(s) URL the authority ends at the first "/", holds no
    userinfo (refused at ingest) and the query starts at the first "?". An IPv6
    literal, a port yarl would read otherwise (0, leading zeros), or anything that is
    not such a URL is split by yarl.
    """
    if href.startswith("http://"):
        start = 7
    elif href.startswith("https://"):
        start = 8
    else:
        return URL(href, encoded=True)
    slash = href.find("/", start)
    if slash < 0 or "[" in href[start:slash]:
        return URL(href, encoded=True)
    host, _, port = href[start:slash].partition(":")
    if port and (not port.isdigit() or port[0] == "0" or not port.isascii()):
        return URL(href, encoded=True)
    path, _, query = href[slash:].partition("?")
    return URL.build(
        scheme=href[: start - 3],
        host=host,
        port=int(port) if port else None,
        path=path,
        query_string=query,
        encoded=True,
    )


def _built(found: re.Match[str]) -> URL:
    """The yarl URL of a URL on the fast path, from its parts: yarl would split the
    string again, at twice the cost. (Like ``URL`` of the string, it drops an empty
    query's "?".)"""
    scheme, host, port, path, query = found.groups()
    return URL.build(
        scheme=scheme,
        host=host,
        port=None if port is None else int(port),
        path=path,
        query_string=query or "",
        encoded=True,
    )


def host_of(href: str) -> str:
    """The host of a URL in normal form (a journal key; IPv6 without brackets, as yarl's
    ``.host``); empty when it has none (``line:3``, ``data:...``).

    >>> host_of("http://[::1]:8080/x"), host_of("https://a.org/"), host_of("line:3")
    ('::1', 'a.org', '')
    """
    start = href.find("://") + 3
    if start == 2:
        return ""
    end = href.find("/", start)
    authority = href[start : end if end >= 0 else len(href)]
    if authority.startswith("["):
        return authority[1 : authority.find("]")]
    return authority.partition(":")[0]


def url_key(url: str) -> str:
    """A stable 32-hex-digit key for a URL: its storage name and sample key."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _lone_surrogates(text: str, base: str | None) -> str | None:
    """The href of ``text`` with lone surrogates as U+FFFD (as a USVString has them), or
    None when that is not why the parser refused it."""
    fixed = _SURROGATE.sub("\ufffd", text)
    if fixed == text:
        return None
    try:
        return normalize_url(fixed) if base is None else join_url(base, fixed)
    except ValueError:
        return None


def _why(text: str, base: str | None) -> str:
    """Why the parser refused ``text``, as precisely as a look at it can tell."""
    if base is None and not _SCHEME.match(text.lstrip("\x00\x01\x02\x03\x04\x05 \t\n\r")):
        return "URL has no scheme (expected http:// or https://)"
    found = _AUTHORITY.match(text)
    if found is None:
        return "malformed URL"
    host = found.group(1).rpartition("@")[2].replace("\t", "").replace("\n", "")
    if not host:
        return "URL has no host"
    if host.startswith("["):
        if "]" not in host:
            return "malformed URL: unclosed IPv6 address"
        host, port = host[1 : host.find("]")], host[host.find("]") + 1 :].lstrip(":")
        if not port or port.isdigit():
            return f"malformed URL: invalid IPv6 address {host!r}"
    else:
        host, _, port = host.partition(":")
    if port and (not port.isdigit() or int(port) > 65535):
        return f"malformed URL: invalid port {port!r}"
    return f"malformed URL: invalid host {host!r}"
