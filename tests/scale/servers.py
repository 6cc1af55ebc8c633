"""One aiohttp app served on 16 loopback addresses (127.0.0.1 .. 127.0.0.16), in a thread.

Sixteen hosts make a real plan by host (each its own registrable domain) while
staying on loopback. Also a counting app: per host, how many requests it had
in flight at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator

from aiohttp import web

from aiograb.testing import ServerConfig, image_bytes, make_app

HOSTS = [f"127.0.0.{i}" for i in range(1, 17)]


@contextlib.contextmanager
def serve_hosts(
    app: Callable[[], web.Application], hosts: list[str] = HOSTS
) -> Iterator[list[str]]:
    """Yield one base URL per host; the app is served on each, on a port of its own."""
    ready = threading.Event()
    bases: list[str] = []
    stop: list[Callable[[], object]] = []

    async def main() -> None:
        runner = web.AppRunner(app(), access_log=None, handle_signals=False)
        await runner.setup()
        finished = asyncio.Event()
        try:
            for host in hosts:
                site = web.TCPSite(runner, host, 0, backlog=1024)
                await site.start()
            bases.extend(f"http://{host}:{port}" for host, port, *_ in runner.addresses)
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(finished.set))
            ready.set()
            await finished.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the test servers did not start"
    try:
        yield bases
    finally:
        stop[0]()
        thread.join(10)


def image_app(config: ServerConfig | None = None) -> Callable[[], web.Application]:
    return lambda: make_app(config or ServerConfig())


class Counting:
    """An app that answers a small PNG after ``delay`` s and counts requests in flight per host."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        body = image_bytes(1, "png")

        async def handle(request: web.Request) -> web.Response:
            host = request.host.rsplit(":", 1)[0]
            with self._lock:
                self.now[host] += 1
                self.total[host] += 1
                self.peak[host] = max(self.peak[host], self.now[host])
            try:
                await asyncio.sleep(self.delay)
            finally:
                with self._lock:
                    self.now[host] -= 1
            return web.Response(body=body, content_type="image/png")

        app = web.Application()
        app.router.add_get("/{name}", handle)
        return app
