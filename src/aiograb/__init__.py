"""aiograb: download and crawl images (and any files) at very high concurrency
from one event-loop thread.

Three ways in:

- ``aiograb.download(urls, "out/")`` — files plus a manifest, resumable;
- ``aiograb.crawl("https://example.org/", "out/")`` — crawl pages, save every image;
- ``async with aiograb.open_client() as c: async for r in c.fetch_all(reqs)``
  — bounded, retried, deadline-aware HTTP fan-out, responses in memory.

``download(..., pipeline=ImagePipeline(ImageOptions(resize="keep-ratio"), output="webdataset"))``
(and ``crawl(..., pipeline=...)``) verifies, resizes and deduplicates images in
worker processes on the way.

Importing ``aiograb`` is cheap: each public name is loaded from its module on
first use (PEP 562), so ``aiograb --version`` loads no HTTP or image library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aiograb.__about__ import __version__

if TYPE_CHECKING:
    from aiograb._client.client import Client, ClientStatistics, Response, Result, open_client
    from aiograb._core.clock import Clock, FakeClock, LoopClock
    from aiograb._core.config import (
        DEFAULT_CONCURRENCY,
        DEFAULT_PER_HOST,
        DEFAULT_USER_AGENT,
        Budget,
        Hedge,
        Limits,
        Network,
        RequestPolicy,
        RetryPolicy,
        Timeouts,
    )
    from aiograb._core.errors import (
        AiograbError,
        BlockedAddress,
        ConnectError,
        ConnectionReset,
        ContentError,
        DeadlineExceeded,
        HTTPStatusError,
        ImageError,
        InputError,
        InvalidRequest,
        InvalidURL,
        NotAccepted,
        ProtocolError,
        ProxyError,
        RedirectError,
        RequestError,
        RobotsTagDisallowed,
        Timeout,
        TLSCertificateError,
        TLSError,
        TooLarge,
        TransportError,
        Truncated,
        UsageError,
        WriteError,
    )
    from aiograb._core.models import InputRow, Request
    from aiograb._core.stats import Progress, Summary
    from aiograb._crawl.api import crawl, crawl_async
    from aiograb._crawl.options import CrawlOptions
    from aiograb._crawl.run import CrawlSummary
    from aiograb._get.api import download, download_async
    from aiograb._get.sources import open_source
    from aiograb._http.aiohttp_transport import AiohttpTransport
    from aiograb._http.base import ResponseStream, Transport
    from aiograb._images.pipeline import ImagePipeline
    from aiograb._images.work import ImageOptions

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PER_HOST",
    "DEFAULT_USER_AGENT",
    "AiograbError",
    "AiohttpTransport",
    "BlockedAddress",
    "Budget",
    "Client",
    "ClientStatistics",
    "Clock",
    "ConnectError",
    "ConnectionReset",
    "ContentError",
    "CrawlOptions",
    "CrawlSummary",
    "DeadlineExceeded",
    "FakeClock",
    "HTTPStatusError",
    "Hedge",
    "ImageError",
    "ImageOptions",
    "ImagePipeline",
    "InputError",
    "InputRow",
    "InvalidRequest",
    "InvalidURL",
    "Limits",
    "LoopClock",
    "Network",
    "NotAccepted",
    "Progress",
    "ProtocolError",
    "ProxyError",
    "RedirectError",
    "Request",
    "RequestError",
    "RequestPolicy",
    "Response",
    "ResponseStream",
    "Result",
    "RetryPolicy",
    "RobotsTagDisallowed",
    "Summary",
    "TLSCertificateError",
    "TLSError",
    "Timeout",
    "Timeouts",
    "TooLarge",
    "Transport",
    "TransportError",
    "Truncated",
    "UsageError",
    "WriteError",
    "__version__",
    "crawl",
    "crawl_async",
    "download",
    "download_async",
    "open_client",
    "open_source",
]

# Where each public name lives; ``__getattr__`` imports it on first access.
_LAZY: dict[str, str] = {
    "Client": "aiograb._client.client",
    "ClientStatistics": "aiograb._client.client",
    "Response": "aiograb._client.client",
    "Result": "aiograb._client.client",
    "open_client": "aiograb._client.client",
    "Clock": "aiograb._core.clock",
    "FakeClock": "aiograb._core.clock",
    "LoopClock": "aiograb._core.clock",
    "DEFAULT_CONCURRENCY": "aiograb._core.config",
    "DEFAULT_PER_HOST": "aiograb._core.config",
    "DEFAULT_USER_AGENT": "aiograb._core.config",
    "Budget": "aiograb._core.config",
    "Hedge": "aiograb._core.config",
    "Limits": "aiograb._core.config",
    "Network": "aiograb._core.config",
    "RequestPolicy": "aiograb._core.config",
    "RetryPolicy": "aiograb._core.config",
    "Timeouts": "aiograb._core.config",
    "AiograbError": "aiograb._core.errors",
    "BlockedAddress": "aiograb._core.errors",
    "ConnectError": "aiograb._core.errors",
    "ConnectionReset": "aiograb._core.errors",
    "ContentError": "aiograb._core.errors",
    "DeadlineExceeded": "aiograb._core.errors",
    "HTTPStatusError": "aiograb._core.errors",
    "ImageError": "aiograb._core.errors",
    "InputError": "aiograb._core.errors",
    "InvalidRequest": "aiograb._core.errors",
    "InvalidURL": "aiograb._core.errors",
    "NotAccepted": "aiograb._core.errors",
    "ProtocolError": "aiograb._core.errors",
    "ProxyError": "aiograb._core.errors",
    "TLSCertificateError": "aiograb._core.errors",
    "TLSError": "aiograb._core.errors",
    "RedirectError": "aiograb._core.errors",
    "RequestError": "aiograb._core.errors",
    "RobotsTagDisallowed": "aiograb._core.errors",
    "Timeout": "aiograb._core.errors",
    "TooLarge": "aiograb._core.errors",
    "TransportError": "aiograb._core.errors",
    "Truncated": "aiograb._core.errors",
    "UsageError": "aiograb._core.errors",
    "WriteError": "aiograb._core.errors",
    "Progress": "aiograb._core.stats",
    "Summary": "aiograb._core.stats",
    "crawl": "aiograb._crawl.api",
    "crawl_async": "aiograb._crawl.api",
    "CrawlOptions": "aiograb._crawl.options",
    "CrawlSummary": "aiograb._crawl.run",
    "Request": "aiograb._core.models",
    "download": "aiograb._get.api",
    "download_async": "aiograb._get.api",
    "InputRow": "aiograb._core.models",
    "open_source": "aiograb._get.sources",
    "AiohttpTransport": "aiograb._http.aiohttp_transport",
    "ResponseStream": "aiograb._http.base",
    "Transport": "aiograb._http.base",
    "ImagePipeline": "aiograb._images.pipeline",
    "ImageOptions": "aiograb._images.work",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiograb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
