"""The transport a run makes when it is given none: libcurl's, or aiohttp's when asked.

``Limits.transport`` names it; when that is empty, the environment variable
``AIOGRAB_TRANSPORT`` does (so the whole test suite can run against either), and
otherwise it is ``DEFAULT_TRANSPORT``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aiograb._core.config import DEFAULT_TRANSPORT, TRANSPORTS, Limits, Network
from aiograb._core.errors import UsageError

if TYPE_CHECKING:  # each transport is imported only when made: aiohttp costs start-up time
    from aiograb._http.aiohttp_transport import AddressPolicy, Transport

__all__ = ["ENV_VAR", "make_transport", "transport_name"]

ENV_VAR = "AIOGRAB_TRANSPORT"


def transport_name(limits: Limits) -> str:
    """Which transport ``make_transport(limits)`` makes."""
    name = limits.transport or os.environ.get(ENV_VAR, "").strip() or DEFAULT_TRANSPORT
    if name not in TRANSPORTS:
        raise UsageError(f"{ENV_VAR} must be one of {', '.join(TRANSPORTS)} (got {name!r})")
    return name


def make_transport(
    limits: Limits,
    *,
    network: Network | None = None,
    address_policy: AddressPolicy | None = None,
) -> Transport:
    """A new transport of the kind ``limits`` (or the environment) names."""
    if transport_name(limits) == "curl":
        try:
            from aiograb._http.curl_transport import CurlTransport
        except ImportError as exc:
            raise UsageError(
                "transport 'curl' needs pycurl (a dependency of aiograb: pip install pycurl), "
                "or use transport 'aiohttp'"
            ) from exc
        return CurlTransport(limits, network=network, address_policy=address_policy)
    from aiograb._http.aiohttp_transport import AiohttpTransport

    return AiohttpTransport(limits, network=network, address_policy=address_policy)
