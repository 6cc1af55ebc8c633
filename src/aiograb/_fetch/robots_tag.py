"""The ``X-Robots-Tag`` response header: does it forbid us to keep this body?

As img2dataset reads it: each header line is a comma-separated list of
directives, for every agent or, after a ``token:`` prefix, for that agent
only (``X-Robots-Tag: otherbot: noai`` is not about us; ``aiograb: noai``
is). A scope also switches inside a line, as proxies may join repeated
headers with commas (``googlebot: nofollow, aiograb: noai``). Directives
with a value of their own (``unavailable_after: <date>``, ``max-snippet: 0``)
are names, not scopes. Sans-IO.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

__all__ = ["forbidding_directive"]

# Directives that carry a value after a colon, per Google's and Bing's documentation.
_VALUED = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_TOKEN = re.compile(r"[a-z_-]+")


def forbidding_directive(
    values: Iterable[str], token: str, disallowed: Collection[str]
) -> str | None:
    """The first directive of ``disallowed`` that ``values`` (the header's lines)
    apply to agent ``token``, or None when the body may be kept.

    >>> forbidding_directive(["otherbot: noai", "aiograb: noindex"], "aiograb", {"noindex"})
    'noindex'
    """
    if not disallowed:
        return None
    token = token.lower()
    for value in values:
        scope: str | None = None  # None: every agent
        for item in value.lower().split(","):
            name, colon, rest = item.partition(":")
            name = name.strip()
            if colon and name not in _VALUED and _TOKEN.fullmatch(name):
                scope, name = name, rest.strip()
            if name in disallowed and scope in (None, token):
                return name
    return None
