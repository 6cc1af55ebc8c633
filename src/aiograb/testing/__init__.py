"""The local test server and its deterministic images, used by tests, the demo and benchmarks.

A real aiohttp server on loopback with images, latency, bandwidth limits and
faults (resets, truncation, stalls, redirects, wrong types); the routes are
listed in :mod:`aiograb.testing._server`. Example::

    from aiograb.testing import ServerConfig, image_bytes, serve_in_thread

    with serve_in_thread(ServerConfig(latency_ms=10)) as server:
        body = urllib.request.urlopen(server.url("/img/3.png")).read()
        assert body == image_bytes(3, "png")

``MockTransport`` answers from a function instead, with no socket at all, for
tests of your own code over aiograb (see :mod:`aiograb.testing._mock`).
"""

from aiograb.testing._images import (
    EXTENSIONS,
    POOL_SIZE,
    SIZES,
    content_type,
    file_bytes,
    image_bytes,
    warm_cache,
)
from aiograb.testing._mock import MockHandler, MockRequest, MockResponse, MockTransport
from aiograb.testing._routes import flaky_image_index
from aiograb.testing._server import (
    RunningServer,
    ServerProcess,
    make_app,
    open_server,
    serve,
    serve_in_thread,
)
from aiograb.testing._site import (
    DATA_URI_GIF,
    plain_image_count,
    site_depth,
    site_image_urls,
    site_page_urls,
)
from aiograb.testing._state import DEFAULT_CONFIG, MAX_RECORDED, RecordedRequest, ServerConfig

__all__ = [
    "DATA_URI_GIF",
    "DEFAULT_CONFIG",
    "EXTENSIONS",
    "MAX_RECORDED",
    "POOL_SIZE",
    "SIZES",
    "MockHandler",
    "MockRequest",
    "MockResponse",
    "MockTransport",
    "RecordedRequest",
    "RunningServer",
    "ServerConfig",
    "ServerProcess",
    "content_type",
    "file_bytes",
    "flaky_image_index",
    "image_bytes",
    "make_app",
    "open_server",
    "plain_image_count",
    "serve",
    "serve_in_thread",
    "site_depth",
    "site_image_urls",
    "site_page_urls",
    "warm_cache",
]
