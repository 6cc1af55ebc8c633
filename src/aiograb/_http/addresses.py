"""Which network addresses a crawl may connect to (the SSRF guard).

A page can link anywhere, including to the machine the crawler runs on, the
private network around it and cloud metadata services. A crawl therefore
refuses to connect to loopback, private, link-local, metadata and other
non-public addresses, unless ``allow_private`` is set or the host is one the
user gave as a seed. The check runs in the transport on the address actually
connected to, after DNS, so a name that resolves (or re-resolves) to such an
address is refused too.

>>> is_blocked_address("169.254.169.254"), is_blocked_address("93.184.216.34")
(True, False)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiograb._core.errors import BlockedAddress
from aiograb._http.base import AddressPolicy

__all__ = ["BLOCKED_NETWORKS", "address_policy", "embedded_ipv4", "is_blocked_address"]

BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)


_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and may reach: IPv4-mapped
    (``::ffff:a.b.c.d``), -compatible (``::a.b.c.d``), -translated, NAT64
    (``64:ff9b::/96``), 6to4 (``2002::/16``) and Teredo (``2001::/32``: server and client).

    >>> embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a9fe:a9fe"))
    [IPv4Address('169.254.169.254')]
    """
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64 or ip in _V4_TRANSLATED:
        return [low32]
    if ip in _V4_COMPATIBLE:
        # :: and ::1 are IPv6's own unspecified and loopback addresses (blocked as such).
        return [low32] if int(ip) > 1 else []
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def is_blocked_address(address: str) -> bool:
    """True for an address a crawl must not connect to; an IPv6 address that embeds
    an IPv4 one (see :func:`embedded_ipv4`) is checked against the IPv4 rules too."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True  # not an address at all: never connect blindly
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += embedded_ipv4(ip)
    return any(
        one in net for one in candidates for net in BLOCKED_NETWORKS if net.version == one.version
    )


def address_policy(allowed_hosts: Iterable[str] = ()) -> AddressPolicy:
    """A transport hook refusing blocked addresses, except for ``allowed_hosts`` (seeds)."""
    allowed = frozenset(h.lower().strip("[]") for h in allowed_hosts)

    def check(host: str, address: str) -> None:
        if host.lower().strip("[]") in allowed or not is_blocked_address(address):
            return
        raise BlockedAddress(
            f"{host} resolves to {address}, a private, loopback or link-local address "
            "(allow_private=True allows it)"
        )

    return check
