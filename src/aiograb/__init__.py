"""aiograb: download and crawl images (and any files) at very high concurrency
from one event-loop thread.

Two ways in:

- ``aiograb.download(urls, "out/")`` — files plus a manifest, resumable;
- ``async with aiograb.open_client() as c: async for r in c.fetch_all(reqs)``
  — bounded, retried, deadline-aware HTTP fan-out, responses in memory;
- ``aiograb.crawl("https://example.org/", "out/")`` — crawl pages, save every image.

``download(..., pipeline=ImagePipeline(ImageOptions(resize="keep-ratio"), output="webdataset"))``
verifies, resizes and deduplicates images in worker processes on the way.
"""

from .__about__ import __version__
from ._api import download, download_async
from ._client import Client, Response, Result, open_client
from ._clock import Clock, FakeClock, LoopClock
from ._config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PER_HOST,
    DEFAULT_USER_AGENT,
    Limits,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
)
from ._crawlapi import crawl, crawl_async
from ._crawler import CrawlSummary
from ._crawloptions import CrawlOptions
from ._exceptions import (
    AiograbError,
    BlockedAddress,
    ConnectError,
    ConnectionReset,
    ContentError,
    DeadlineExceeded,
    HTTPStatusError,
    ImageError,
    InputError,
    InvalidURL,
    NotAccepted,
    ProtocolError,
    RedirectError,
    RequestError,
    Timeout,
    TooLarge,
    TransportError,
    Truncated,
    UsageError,
    WriteError,
)
from ._fetch import Request
from ._imagework import ImageOptions
from ._pipeline import ImagePipeline
from ._sources import InputRow, open_source
from ._stats import Progress, Summary
from ._transport import AiohttpTransport, ResponseStream, Transport

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_PER_HOST",
    "DEFAULT_USER_AGENT",
    "AiograbError",
    "AiohttpTransport",
    "BlockedAddress",
    "Client",
    "Clock",
    "ConnectError",
    "ConnectionReset",
    "ContentError",
    "CrawlOptions",
    "CrawlSummary",
    "DeadlineExceeded",
    "FakeClock",
    "HTTPStatusError",
    "ImageError",
    "ImageOptions",
    "ImagePipeline",
    "InputError",
    "InputRow",
    "InvalidURL",
    "Limits",
    "LoopClock",
    "NotAccepted",
    "Progress",
    "ProtocolError",
    "RedirectError",
    "Request",
    "RequestError",
    "RequestPolicy",
    "Response",
    "ResponseStream",
    "Result",
    "RetryPolicy",
    "Summary",
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
