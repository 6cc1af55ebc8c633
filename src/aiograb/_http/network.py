"""What a ``Network`` config turns into for the transport: an SSL context, the words
for a refused certificate, and the proxy (if any) for each URL (cookies: ``cookies.py``).

All of it is built once, before the run starts, so a bad CA bundle or cookie
file is a ``UsageError`` (one line, exit 2), never a per-URL failure.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from yarl import URL

from aiograb._core.config import Network, check_proxy_url
from aiograb._core.errors import UsageError

__all__ = [
    "TRANSIENT_SOCKS_REPLIES",
    "Proxy",
    "ProxyRoutes",
    "cert_reason",
    "ssl_context",
    "ssl_reason",
    "verify_reason",
]


def ssl_context(network: Network) -> ssl.SSLContext:
    """The client context: the system's trust store (``SSL_CERT_FILE``/``SSL_CERT_DIR``
    honoured by OpenSSL), or only ``ca_bundle``, or no verification at all."""
    if not network.verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif network.ca_bundle is None:
        ctx = ssl.create_default_context()
    else:
        is_dir = os.path.isdir(network.ca_bundle)
        try:
            ctx = ssl.create_default_context(
                cafile=None if is_dir else network.ca_bundle,
                capath=network.ca_bundle if is_dir else None,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise UsageError(
                f"ca_bundle: cannot load certificates from {network.ca_bundle}: {exc}"
            ) from None
        if not is_dir and not ctx.get_ca_certs():
            raise UsageError(f"ca_bundle: no certificate in {network.ca_bundle}")
    ctx.set_alpn_protocols(("http/1.1",))
    return ctx


# OpenSSL's X509_V_ERR_* codes, in the words of a user.
_VERIFY_REASONS = {
    2: "unknown issuer",  # unable to get issuer certificate
    9: "not yet valid",
    10: "expired",
    18: "self-signed",
    19: "unknown issuer (self-signed certificate in the chain)",
    20: "unknown issuer",  # unable to get local issuer certificate
    21: "unknown issuer",  # unable to verify the first certificate
    62: "hostname mismatch",
    64: "IP address mismatch",
}


def verify_reason(code: int, detail: str) -> str:
    """Why a certificate failed, from OpenSSL's ``X509_V_ERR_*`` code and its text:
    'expired (certificate has expired)'. Both transports say it so."""
    reason = _VERIFY_REASONS.get(code)
    return f"{reason} ({detail})" if reason else detail


def cert_reason(error: BaseException) -> str:
    """Why a certificate failed, for Python's ``ssl`` error (the aiohttp transport)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return verify_reason(error.verify_code, str(error.verify_message or error.reason or error))
    return str(error) or type(error).__name__


def ssl_reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason).lower().replace("_", " ")
    return str(error) or type(error).__name__


# SOCKS5 replies worth a retry (RFC 1928): general failure, network or host
# unreachable, connection refused, TTL expired. Not: a ruleset refusal, an
# unsupported command or address type, or failed authentication (no code).
TRANSIENT_SOCKS_REPLIES = frozenset({1, 3, 4, 5, 6})


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy: ``url`` for aiohttp (http), or the SOCKS parts."""

    url: URL
    kind: str  # "http", "socks5" or "socks5h"
    host: str
    port: int
    username: str | None
    password: str | None

    @property
    def is_socks(self) -> bool:
        return self.kind != "http"

    @property
    def remote_dns(self) -> bool:
        return self.kind == "socks5h"

    @classmethod
    def parse(cls, text: str) -> Proxy:
        if "://" not in text:  # curl and requests take a bare host:port as http
            text = "http://" + text
        check_proxy_url(text)
        url = URL(text)
        default = 1080 if url.scheme.startswith("socks") else 80
        return cls(
            url=url if url.explicit_port else url.with_port(default),
            kind=url.scheme,
            host=url.raw_host or "",
            port=url.explicit_port or default,
            username=url.user,
            password=url.password,
        )


class ProxyRoutes:
    """Which proxy (or none) each URL goes through, as curl and requests decide it.

    An explicit ``proxy`` serves every URL; ``None`` reads ``http_proxy``,
    ``https_proxy``, ``all_proxy`` and ``no_proxy`` from the environment
    (lower case first, then upper case; ``HTTP_PROXY`` is ignored under CGI);
    ``""`` turns proxies off. ``no_proxy`` applies in both cases. Decisions are
    cached per (scheme, host, port): this is on every request's path.
    """

    def __init__(self, proxy: str | None, environ: Mapping[str, str] | None = None) -> None:
        env = _environment() if environ is None else _env(environ)
        self._no_proxy = env.get("no", "")
        self._by_scheme: dict[str, Proxy] = {}
        if proxy:
            one = Proxy.parse(proxy)
            self._by_scheme = {"http": one, "https": one}
        elif proxy is None:
            for scheme in ("http", "https"):
                text = env.get(scheme) or env.get("all")
                if text:
                    try:
                        self._by_scheme[scheme] = Proxy.parse(text)
                    except UsageError as exc:
                        raise UsageError(f"{scheme}_proxy in the environment: {exc}") from None
        self._cache: dict[tuple[str, str, int | None], Proxy | None] = {}

    def __bool__(self) -> bool:
        return bool(self._by_scheme)

    @property
    def proxies(self) -> tuple[Proxy, ...]:
        return tuple(self._by_scheme.values())

    def for_url(self, url: URL) -> Proxy | None:
        if not self._by_scheme:
            return None
        key = (url.scheme, url.raw_host or "", url.port)
        try:
            return self._cache[key]
        except KeyError:
            pass
        chosen = self._by_scheme.get(url.scheme)
        if chosen is not None and self._no_proxy and _bypass(key[1], key[2], self._no_proxy):
            chosen = None
        if len(self._cache) < 100_000:
            self._cache[key] = chosen
        return chosen


def _environment() -> dict[str, str]:
    """The proxies the environment names, as ``urllib.request`` reads them; without its
    import (~6 ms of every run's start, with ``http.client``) when no variable could."""
    if not any(name[-6:].lower() == "_proxy" for name in os.environ):
        return {}
    import urllib.request

    return urllib.request.getproxies_environment()


def _env(environ: Mapping[str, str]) -> dict[str, str]:
    """``urllib.request.getproxies_environment`` over a given mapping."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found.setdefault(name[:-6].lower(), "")
    for scheme in list(found):
        lower = environ.get(f"{scheme}_proxy")
        upper = environ.get(f"{scheme.upper()}_PROXY")
        if scheme == "http" and "REQUEST_METHOD" in environ:
            upper = None
        found[scheme] = lower or upper or ""
    return {k: v for k, v in found.items() if v}


def _bypass(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (curl's rules) exempts ``host``: ``*``; a name, which also
    covers its subdomains (a leading dot is ignored); an IP address or CIDR
    block; each optionally with ``:port``."""
    host = host.lower().rstrip(".")
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, want_port = _split_port(entry)
        if want_port is not None and want_port != port:
            continue
        name = name.strip("[]").lstrip(".").rstrip(".")
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    head, sep, tail = entry.rpartition(":")
    if sep and tail.isdigit() and (head.endswith("]") or ":" not in head):
        return head, int(tail)
    return entry, None
