"""What libcurl hands the curl transport, in aiograb's terms: its error numbers as the
``RequestError`` tree, and the header lines of a response as a status and headers.

A refused certificate and a SOCKS refusal are said in the aiohttp transport's words
(the reason from OpenSSL's ``X509_V_ERR_*`` code, ``CURLINFO_SSL_VERIFYRESULT``; the
SOCKS reply from ``CURLINFO_PROXY_ERROR``), so an error reads the same whichever
transport met it."""

from __future__ import annotations

import ipaddress
import re
from errno import ECONNREFUSED, ECONNRESET, EPIPE
from os import strerror
from typing import TYPE_CHECKING

import pycurl
from multidict import CIMultiDict, CIMultiDictProxy

from aiograb._core.errors import (
    NO_DESCRIPTORS,
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
    socket_error,
)
from aiograb._http.network import TRANSIENT_SOCKS_REPLIES, Proxy, verify_reason

if TYPE_CHECKING:  # curl_exchange imports this module
    from aiograb._http.curl_exchange import Easy

__all__ = ["curl_failure", "is_ip", "parse_head", "translate_curl"]

_E_PROXY = getattr(pycurl, "E_PROXY", 97)  # CURLE_PROXY (SOCKS errors); not in every pycurl
# CURLE_TOO_LARGE (libcurl 8.6+): a header too big; not in every pycurl.
_E_TOO_LARGE = getattr(pycurl, "E_TOO_LARGE", 100)
# CURLINFO_PROXY_ERROR (libcurl's CURLproxycode) for a refusal, as RFC 1928 reply codes.
_PX_NO_AUTH, _PX_USER_REJECTED = 12, 33
_PX_REPLIES = {20: 1, 23: 2, 22: 3, 21: 4, 19: 5, 24: 6, 18: 7, 17: 8}
# RFC 1928's replies in python-socks' words (the aiohttp transport's SOCKS client).
_SOCKS_REPLIES = {
    1: "General SOCKS server failure",
    2: "Connection not allowed by ruleset",
    3: "Network unreachable",
    4: "Host unreachable",
    5: "Connection refused by destination host",
    6: "TTL expired",
    7: "Command not supported or protocol error",
    8: "Address type not supported",
}
_VERIFY_TEXT = re.compile(r"(?:verify result|certificate problem): (.*?)(?: \(\d+\))?$")
_NAME_MISMATCH = re.compile(r"match(?:es)? target ")
_X509_HOSTNAME_MISMATCH, _X509_IP_MISMATCH = 62, 64
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
        if os_errno in NO_DESCRIPTORS:  # libcurl's own socket() or its dup() of ours
            return socket_error(os_errno, strerror(os_errno), url)
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
    if errno == _E_TOO_LARGE:  # libcurl's message is often empty here
        return ProtocolError(
            "bad HTTP response: a header larger than libcurl accepts (100 KB a field, "
            "300 KB in all)",
            url=url,
        )
    return ProtocolError(f"curl error {errno}: {message}", url=url)


def curl_failure(
    easy: Easy, errno: int, message: str, url: str, proxy: Proxy | None, raw: list[bytes]
) -> RequestError:
    """The error of a transfer that failed (``easy``: its easy handle, finished)."""
    if easy.blocked is not None:
        return easy.blocked
    handle, unopened = easy.curl, easy.unopened
    if unopened is not None:  # our socket opener could not open one: the request never left
        return socket_error(unopened.errno or 0, unopened.strerror or str(unopened), url)
    if errno == pycurl.E_PEER_FAILED_VERIFICATION:
        return _certificate(handle.getinfo(pycurl.SSL_VERIFYRESULT), message, url)
    if errno == _E_PROXY and proxy is not None and proxy.is_socks:
        refused = _socks_refusal(handle.getinfo(pycurl.PROXY_ERROR), proxy, url, easy)
        if refused is not None:
            return refused
    os_errno = handle.getinfo(pycurl.OS_ERRNO)
    error = translate_curl(errno, message, url, os_errno, proxied=proxy is not None)
    if isinstance(error, BadEncoding):  # said as the aiohttp transport says it
        return bad_encoding(url, raw)
    return error


def _certificate(verify: int, message: str, url: str) -> TLSCertificateError:
    """A refused certificate in ``cert_reason``'s words. libcurl checks the name itself
    (OpenSSL's result then says nothing of it), so a mismatch is read from its message
    ("... subject name matches target hostname 'h'", "... does not match target ...")."""
    if _NAME_MISMATCH.search(message):
        name = message.rsplit("'", 2)[-2] if message.count("'") >= 2 else ""
        if "address" in message:
            verify, detail = _X509_IP_MISMATCH, "IP address mismatch"
        else:
            verify, detail = _X509_HOSTNAME_MISMATCH, "Hostname mismatch"
        detail += f", certificate is not valid for '{name}'."
    else:
        found = _VERIFY_TEXT.search(message)
        detail = found.group(1) if found else message
    return TLSCertificateError(
        f"TLS certificate not accepted: {verify_reason(verify, detail)}", url=url
    )


def _socks_refusal(code: int, proxy: Proxy, url: str, easy: Easy) -> ProxyError | None:
    """A SOCKS proxy's refusal (login or reply), as ``socks.open_socks`` says it; None
    for other proxy failures (it closed, it spoke nonsense), left to ``translate_curl``."""
    reply = _PX_REPLIES.get(code)
    if reply is not None:
        why, retryable = _SOCKS_REPLIES[reply], reply in TRANSIENT_SOCKS_REPLIES
    elif code == _PX_USER_REJECTED:
        why, retryable = "Username and password authentication failure", False
    elif code == _PX_NO_AUTH:
        why, retryable = "No acceptable authentication methods were offered", False
    else:
        return None
    target = f"{easy.dest}:{easy.port}"
    error = ProxyError(f"SOCKS proxy {proxy.host}:{proxy.port} refused {target}: {why}", url=url)
    error.retryable = retryable
    return error


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
    if raw and raw[0].startswith(b"HTTP/") and raw.count(b"\r\n") + raw.count(b"\n") <= 1:
        first = 0  # one response, the usual case: its blank line is the only one
    else:
        first = next((i for i in range(len(raw) - 1, -1, -1) if raw[i].startswith(b"HTTP/")), -1)
    if first >= 0:
        start = first + 1
        parts = raw[first].split(None, 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
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
