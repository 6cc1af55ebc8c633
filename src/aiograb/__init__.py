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

from aiograb.__about__ import __version__
from aiograb._client.client import Client, Response, Result, open_client
from aiograb._core.clock import Clock, FakeClock, LoopClock
from aiograb._core.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PER_HOST,
    DEFAULT_USER_AGENT,
    Limits,
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
from aiograb._core.stats import Progress, Summary
from aiograb._crawl.api import crawl, crawl_async
from aiograb._crawl.options import CrawlOptions
from aiograb._crawl.run import CrawlSummary
from aiograb._fetch.fetcher import Request
from aiograb._get.api import download, download_async
from aiograb._get.sources import InputRow, open_source
from aiograb._http.aiohttp_transport import AiohttpTransport, ResponseStream, Transport
from aiograb._images.pipeline import ImagePipeline
from aiograb._images.work import ImageOptions

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
