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

__all__ = ["BLOCKED_NETWORKS", "address_policy", "is_blocked_address"]

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


def is_blocked_address(address: str) -> bool:
    """True for an address a crawl must not connect to (also IPv4-mapped IPv6 forms)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True  # not an address at all: never connect blindly
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return any(ip in net for net in BLOCKED_NETWORKS if net.version == ip.version)


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
