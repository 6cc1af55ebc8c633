"""Issue 10, item 14: IPv6 forms that embed a blocked IPv4 address are blocked too.

Pure address logic (no connection is made: a failing check must not reach out).
"""

from __future__ import annotations

import ipaddress

import pytest

from aiograb._core.errors import BlockedAddress
from aiograb._http.addresses import address_policy, embedded_ipv4, is_blocked_address


def _teredo(server: str, client: str) -> str:
    """A Teredo address (RFC 4380): 2001:0::/32, server, flags, port, client, both obfuscated."""
    value = (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64)
    value |= 0xFFFF << 32  # flags 0, port obfuscated (any)
    value |= int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address(value))


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible
        "::a9fe:a9fe",  # compatible, the metadata service 169.254.169.254
        "::10.0.0.1",
        "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT)
        "64:ff9b::127.0.0.1",  # NAT64 well-known prefix
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::192.168.1.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
        "2002:c0a8:0101:1::1",  # 6to4 of 192.168.1.1
        _teredo("93.184.216.34", "127.0.0.1"),  # Teredo: client on loopback
        _teredo("10.0.0.1", "93.184.216.34"),  # Teredo: a private server
    ],
)
def test_ipv6_embedding_a_blocked_ipv4_is_blocked(address: str) -> None:
    assert is_blocked_address(address)
    with pytest.raises(BlockedAddress):
        address_policy()("evil.example", address)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::93.184.216.34",  # NAT64 of a public address: a real route
        "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
        _teredo("93.184.216.34", "8.8.8.8"),
        "2606:4700::1111",
    ],
)
def test_ipv6_embedding_a_public_ipv4_passes(address: str) -> None:
    assert not is_blocked_address(address)


def test_embedded_forms_are_decoded() -> None:
    v6 = ipaddress.IPv6Address
    v4 = ipaddress.IPv4Address
    assert embedded_ipv4(v6("::127.0.0.1")) == [v4("127.0.0.1")]
    assert embedded_ipv4(v6("::1")) == []  # IPv6 loopback itself, not ::0.0.0.1
    assert embedded_ipv4(v6("2002:7f00:1::")) == [v4("127.0.0.1")]
    assert embedded_ipv4(v6(_teredo("1.2.3.4", "5.6.7.8"))) == [v4("1.2.3.4"), v4("5.6.7.8")]
    assert embedded_ipv4(v6("2606:4700::1111")) == []
