"""URL validation and the deterministic names files are stored under."""

from __future__ import annotations

import hashlib
import re

from yarl import URL

from aiograb._core.errors import InvalidURL

__all__ = ["MAX_URL_LENGTH", "SUPPORTED_SCHEMES", "host_of", "parse_url", "url_key"]

SUPPORTED_SCHEMES = frozenset({"http", "https"})
MAX_URL_LENGTH = 8192
# A host after IDNA encoding: DNS labels, IPv4, or an IPv6 literal (yarl strips brackets).
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\.?)+$|^[0-9A-Fa-f:.%A-Za-z]*:[0-9A-Fa-f:.]*$"
)


def parse_url(text: str) -> URL:
    """Parse and check a URL to fetch; raise ``InvalidURL`` with a precise code.

    >>> str(parse_url("https://example.org/a b.jpg"))
    'https://example.org/a%20b.jpg'
    """
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters", url=text[:200])
    try:
        url = URL(text.strip())
    except (ValueError, TypeError) as exc:
        raise InvalidURL(f"malformed URL: {exc}", url=text) from exc
    scheme = url.scheme.lower()
    if not scheme:
        raise InvalidURL("URL has no scheme (expected http:// or https://)", url=text)
    if scheme not in SUPPORTED_SCHEMES:
        raise InvalidURL(
            f"unsupported scheme {scheme!r} (only http and https)",
            url=text,
            code="unsupported_scheme",
        )
    try:
        host = url.host
        _ = url.port
    except ValueError as exc:  # e.g. a port out of range
        raise InvalidURL(f"malformed URL: {exc}", url=text) from exc
    if not host:
        raise InvalidURL("URL has no host", url=text)
    if not _HOST_RE.match(url.raw_host or ""):
        raise InvalidURL(f"invalid host name {host!r}", url=text)
    if url.user is not None or url.password is not None:
        # Credentials in a URL list leak into logs and manifests; refuse them.
        raise InvalidURL("credentials in URLs are not supported", url=text)
    return url.with_fragment(None)


def url_key(url: str) -> str:
    """A stable 32-hex-digit key for a URL: its storage name and sample key."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def host_of(key: str) -> str:
    """The host of a URL in normal form (a journal key); empty when it has none."""
    return URL(key, encoded=True).host or ""
