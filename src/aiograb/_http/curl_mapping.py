"""What libcurl hands the curl transport, in aiograb's terms: its error numbers as the
``RequestError`` tree, and the header lines of a response as a status and headers."""

from __future__ import annotations

import ipaddress
import re
from errno import ECONNREFUSED, ECONNRESET, EPIPE

import pycurl
from multidict import CIMultiDict, CIMultiDictProxy

from aiograb._core.errors import (
    BadEncoding,
    ConnectError,
    ConnectionReset,
    InvalidURL,
    ProtocolError,
    ProxyError,
    RequestError,
    Timeout,
    TLSCertificateError,
    TLSError,
    Truncated,
)

__all__ = ["is_ip", "parse_head", "translate_curl"]

_E_PROXY = getattr(pycurl, "E_PROXY", 97)  # CURLE_PROXY (SOCKS errors); not in every pycurl
# libcurl's words for a proxy that answered with a refusal ("CONNECT tunnel failed, response
# 407", "Received HTTP code 403 from proxy", "User was rejected by the SOCKS5 server"); a port
# number such as 40749 in the message must not match.
_PROXY_ANSWERED = re.compile(r"\b(?:response|code) \d{3}\b|rejected|authentication")


def translate_curl(
    errno: int, message: str, url: str, os_errno: int = 0, *, proxied: bool = False
) -> RequestError:
    """The aiograb error for a libcurl error number (``CURLE_*``), its message and the
    last OS error of the transfer (``CURLINFO_OS_ERRNO``), most specific first."""
    low = message.lower()
    if errno == pycurl.E_COULDNT_RESOLVE_HOST:
        return ConnectError(f"DNS lookup failed: {message}", url=url, code="dns_error")
    if errno in (pycurl.E_COULDNT_CONNECT, pycurl.E_RECV_ERROR, _E_PROXY) and (
        "proxy" in low or "tunnel" in low or "socks" in low
    ):
        proxy_error = ProxyError(f"the proxy refused or failed: {message}", url=url)
        # A proxy that answers (407, 403) or rejects the login refused us: retrying will
        # not help. A refused or dead proxy may come back.
        proxy_error.retryable = _PROXY_ANSWERED.search(low) is None
        return proxy_error
    if errno == pycurl.E_COULDNT_CONNECT and proxied:  # libcurl connects to the proxy first
        return ProxyError(f"cannot connect to the proxy: {message}", url=url)
    if errno == pycurl.E_COULDNT_CONNECT:
        if os_errno == ECONNREFUSED or "refused" in low:
            return ConnectError("connection refused", url=url, code="connect_refused")
        return ConnectError(f"cannot connect: {message}", url=url)
    if errno == pycurl.E_OPERATION_TIMEDOUT:
        if "connect" in low and "after" in low and "received" not in low:
            return Timeout("connect timed out", url=url)
        return Timeout("deadline exceeded (Timeouts.total)", url=url)
    if errno == pycurl.E_BAD_CONTENT_ENCODING:
        return BadEncoding(f"the body is not in its Content-Encoding: {message}", url=url)
    if errno == pycurl.E_PARTIAL_FILE:
        return Truncated(f"body ended early: {message}", url=url)
    if errno == pycurl.E_GOT_NOTHING:
        return ConnectionReset("server closed the connection", url=url, code="server_disconnected")
    if errno in (pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR):
        if os_errno in (ECONNRESET, EPIPE) or "reset" in low or "broken pipe" in low:
            return ConnectionReset("connection reset by peer", url=url)
        return ConnectError(f"network error: {message}", url=url)
    if errno in (pycurl.E_URL_MALFORMAT, pycurl.E_UNSUPPORTED_PROTOCOL):
        return InvalidURL(f"invalid URL: {message}", url=url)
    if errno == pycurl.E_PEER_FAILED_VERIFICATION:
        return TLSCertificateError(f"TLS certificate not accepted: {message}", url=url)
    if errno == pycurl.E_SSL_CONNECT_ERROR:
        return TLSError(f"TLS handshake failed: {message}", url=url)
    if errno in (pycurl.E_COULDNT_RESOLVE_PROXY, _E_PROXY):
        return ProxyError(f"cannot connect to the proxy: {message}", url=url)
    return ProtocolError(f"curl error {errno}: {message}", url=url)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def parse_head(raw: list[bytes]) -> tuple[int, CIMultiDictProxy[str]]:
    """The status and header fields of the last response in ``raw`` (1xx ones come first).

    Parsed from the lines libcurl handed over, since ``getinfo`` may not be called
    from inside its callbacks. Values are decoded as aiohttp does (UTF-8, undecodable
    bytes kept as surrogates); names are ASCII.
    """
    start, status = 0, 0
    for i in range(len(raw) - 1, -1, -1):
        if raw[i].startswith(b"HTTP/"):
            start = i + 1
            parts = raw[i].split(None, 2)
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            break
    text = b"".join(raw[start:]).decode("utf-8", "surrogateescape")
    pairs = []
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return status, CIMultiDictProxy(CIMultiDict(pairs))


def bad_encoding(url: str, raw_headers: list[bytes]) -> BadEncoding:
    """A body that is not in the coding its head names, said as the aiohttp transport says it."""
    coding = parse_head(raw_headers)[1].get("Content-Encoding", "?")
    return BadEncoding(
        f"the body is not {coding} although the response's Content-Encoding says so", url=url
    )
