"""The library's option names in a message, said as the CLI's flags.

Library errors name the options of ``Limits``, ``RequestPolicy``, ``ImageOptions``
... (``max_bytes must be >= 0``); a user of the command line typed flags, so the
CLI says ``--max-bytes must be >= 0`` instead.
"""

from __future__ import annotations

import re

__all__ = ["as_flags"]

FLAGS = {
    "Limits.rate": "--rate",
    "Network.proxy": "--proxy",
    "proxy=''": "--proxy ''",
    "Network.cookies": "--cookies",
    "ca_bundle": "--ca-bundle",
    "verify=False": "--insecure",
    "per_host": "--per-host",
    "Timeouts.total": "--timeout",
    "timeouts.total": "--timeout",
    "Timeouts.connect": "--connect-timeout",
    "max_redirects": "--max-redirects",
    "max_bytes": "--max-bytes",
    "user_agent_token": "--user-agent-token",
    "disallowed_header_directives": "--disallowed-header-directives",
    "max_pixels": "--max-pixels",
    "min_size": "--min-size",
    "max_aspect_ratio": "--max-aspect-ratio",
    "image_size": "--image-size",
    "shard_size": "--shard-size",
    "phash_distance": "--phash-distance",
    "output='parquet'": "--format parquet",
}
_NAMES = re.compile(
    "|".join(rf"(?<![\w.]){re.escape(name)}(?![\w])" for name in sorted(FLAGS, key=len)[::-1])
)


def as_flags(message: str) -> str:
    """``message`` with each library option name replaced by its flag."""
    return _NAMES.sub(lambda m: FLAGS[m.group(0)], message)
