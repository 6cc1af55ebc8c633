"""The local test server: a real aiohttp server with images, latency and faults.

It binds loopback only. All routes are GET (and HEAD) unless noted; ``{n}`` is a
non-negative integer and "image n" is ``image_bytes(n, ext, seed=<server seed>,
size=<?size or "small">)``. Every route also takes ``?latency_ms=`` and
``?bandwidth_kbps=``, which override the server's :class:`ServerConfig` for that
request. A bad query value answers 400.

| Route | Behaviour |
| --- | --- |
| `/` | plain-text index of the routes |
| `/img/{n}.{ext}?size=small` | image n as `jpg`, `png`, `webp` or `gif`, with Content-Length [1] |
| `/file/{n}.bin?bytes=65536` | `file_bytes(n, bytes)`, `application/octet-stream` |
| `/status/{code}` | status `code` (200–599) with a short text body |
| `/flaky/{key}/{fails}?status=503&retry_after=S&date=1` | fails, then an image [2] |
| `/reset/{n}.jpg` | full Content-Length, half of image n, then a TCP reset (RST) |
| `/truncated/{n}.jpg` | full Content-Length, half of image n, then a clean close (FIN) |
| `/drip/{n}.jpg?interval_ms=200&chunk=1024` | image n, one chunk per interval |
| `/stall/{n}.jpg` | headers, then no body until the client leaves or the server stops |
| `/redirect/{k}/{n}.{ext}?status=302` | k redirects ending at `/img/{n}.{ext}` [3] |
| `/redirect-loop/{n}` | 302 to `/redirect-loop/{n}/b`, which 302s back, forever |
| `/redirect-to?url=U&status=302` | redirect to `U` verbatim, any scheme (`file:///etc/passwd`) |
| `/html-as-jpeg/{n}.jpg` | an HTML error page sent as `Content-Type: image/jpeg` |
| `/html/{n}?images=3&links=2` | an HTML page with images and links [4] |
| `/huge/{mb}.jpg?length=1` | `mb` MiB: `FF D8 FF E0` then zeros, streamed [5] |
| `/headers` | JSON object of the request headers |
| `/echo?status=200&delay_ms=0` | any method: JSON of the request [6] |
| `/disposition/{n}.jpg` | image n with a path-traversal Content-Disposition [7] |
| `/robots.txt`, `/site/...`, `/plain/...` | a generated site to crawl (see ``_site.py``) |

1. ``?size=thumb|small|medium|large``: 6–30 KB, 10–50 KB, 100–500 KB, 1–3 MB. Indices ``n`` and
   ``n + 64`` are the same picture.
2. The first ``fails`` requests for ``key`` (counted per server instance) answer
   ``status``; with ``retry_after=S`` they carry ``Retry-After: S`` (``S`` echoed
   as given), or with ``date=1`` an HTTP-date at least ``S`` seconds ahead. Later
   requests answer 200 with ``image_bytes(flaky_image_index(key), "png")``, where
   ``flaky_image_index(key) == int(sha256(key.encode()).hexdigest()[:8], 16) % 1000``.
3. ``status`` is one of 301, 302, 303, 307, 308; the query string is kept along
   the chain; ``k = 0`` serves the image directly (no redirect).
4. ``<img src="/img/{n*images+i}.jpg">`` for ``i < images`` and
   ``<a href="/html/{n*links+i+1}">`` for ``i < links``: an endless tree to crawl.
5. ``mb`` may be fractional; sent in 64 KiB chunks, never held in memory; with
   Content-Length when ``length=1``, chunked when ``length=0``.
6. ``{"method", "path", "query", "headers", "json", "body"}``: ``json`` is the body
   parsed as JSON or null, ``body`` its text; ``?status=N`` answers that status,
   ``?delay_ms=`` waits first. Methods: GET, POST, PUT, DELETE, PATCH (any).
7. ``Content-Disposition: attachment; filename="../../../etc/evil.jpg"``.

``bandwidth_kbps`` is kilobits per second (1 kbps = 125 bytes/s; 0 = unlimited);
``/drip`` keeps its own pace. ``latency_ms`` delays the response headers.

Ways to run it (all yield a :class:`RunningServer` or expose ``base_url``)::

    async with open_server(ServerConfig(latency_ms=20)) as server:   # this event loop
        url = server.url("/img/1.png")
    with serve_in_thread() as server: ...          # own loop in a daemon thread
    with ServerProcess() as proc: ...              # python -m aiograb.testing
    serve("127.0.0.1", 8080, ServerConfig())       # blocking, until SIGINT/SIGTERM
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import TracebackType

from aiohttp import web

from aiograb.testing._images import warm_cache
from aiograb.testing._routes import add_routes
from aiograb.testing._state import DEFAULT_CONFIG, STATE, RecordedRequest, ServerConfig, ServerState

__all__ = [
    "RunningServer",
    "ServerProcess",
    "make_app",
    "open_server",
    "serve",
    "serve_in_thread",
]

_SHUTDOWN_TIMEOUT = 2.0
# Room for a burst of thousands of connects (a client starting at -c 1000); aiohttp's
# default of 128 overflows, and each dropped SYN costs the client a 1 s retransmit.
# The kernel caps it at net.core.somaxconn.
_BACKLOG = 4096
_READY_TIMEOUT = 30.0
_TERMINATE_TIMEOUT = 5.0
_READY_LINE = re.compile(r"serving on (http://\S+:(\d+))$")


def make_app(config: ServerConfig = DEFAULT_CONFIG) -> web.Application:
    """A fresh test-server application; its mutable state is ``app[STATE]``.

    Example::

        runner = web.AppRunner(make_app(ServerConfig(seed=3)), access_log=None)
    """
    app = web.Application()
    app[STATE] = ServerState(config)
    add_routes(app)
    return app


class RunningServer:
    """A started test server: where it listens and what it has seen."""

    def __init__(self, host: str, port: int, state: ServerState) -> None:
        self.host = host
        self.port = port
        self._state = state
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{port}"
        """E.g. ``http://127.0.0.1:41234`` (no trailing slash)."""

    @property
    def config(self) -> ServerConfig:
        return self._state.config

    def url(self, path: str) -> str:
        """The absolute URL of ``path``, e.g. ``server.url("/img/1.jpg")``."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first (empty unless ``config.record``)."""
        return list(self._state.requests)

    def clear_requests(self) -> None:
        self._state.requests.clear()

    def __repr__(self) -> str:
        return f"<RunningServer {self.base_url}>"


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the test server binds loopback only (127.0.0.1, ::1), not {host!r}")


@contextlib.asynccontextmanager
async def open_server(
    config: ServerConfig = DEFAULT_CONFIG, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningServer]:
    """Run the test server in the current event loop for the duration of the block.

    ``port=0`` picks a free port. Example::

        async with open_server() as server:
            async with aiohttp.ClientSession() as session:
                await session.get(server.url("/img/7.webp"))
    """
    _check_loopback(host)
    app = make_app(config)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=_BACKLOG)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        yield RunningServer(host, bound_port, app[STATE])
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_in_thread(
    config: ServerConfig = DEFAULT_CONFIG, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningServer]:
    """Run the test server on its own event loop in a daemon thread.

    For sync tests and for subprocesses (CLI tests) alike; stops on exit. Example::

        @pytest.fixture(scope="session")
        def server():
            with serve_in_thread() as server:
                yield server
    """
    ready = threading.Event()
    started: list[RunningServer] = []
    errors: list[BaseException] = []
    stop: list[Callable[[], object]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()
        async with open_server(config, host=host, port=port) as server:
            started.append(server)
            stop.append(lambda: loop.call_soon_threadsafe(finished.set))
            ready.set()
            await finished.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="aiograb-test-server", daemon=True)
    thread.start()
    ready.wait()
    if not started:
        thread.join()
        raise RuntimeError("the test server did not start") from (errors[0] if errors else None)
    try:
        yield started[0]
    finally:
        stop[0]()
        thread.join()
        if errors:
            raise RuntimeError("the test server failed") from errors[0]


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve_until_signal(host: str, port: int, config: ServerConfig) -> None:
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, finished.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # Windows or not the main thread: KeyboardInterrupt still ends serve()
    try:
        async with open_server(config, host=host, port=port) as server:
            print(f"serving on {server.base_url}", flush=True)
            await finished.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    config: ServerConfig = DEFAULT_CONFIG,
    *,
    warm: bool = False,
) -> None:
    """Run the test server until SIGINT or SIGTERM, then return (no traceback).

    Prints exactly one line, ``serving on http://HOST:PORT``, once it accepts
    connections. Uses uvloop when it is installed. ``warm=True`` draws every
    small image before listening.
    """
    _check_loopback(host)
    if warm:
        warm_cache(seed=config.seed)
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=_uvloop_factory()) as runner,
    ):
        runner.run(_serve_until_signal(host, port, config))


class ServerProcess:
    """The test server in a subprocess (``python -m aiograb.testing``), for benchmarks.

    The child uses uvloop when available and does not record requests
    (``config.record`` is ignored: nobody could read them). Example::

        with ServerProcess(ServerConfig(latency_ms=5)) as proc:
            run_benchmark(proc.base_url + "/img/{i}.jpg")
    """

    def __init__(
        self,
        config: ServerConfig = DEFAULT_CONFIG,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        warm: bool = False,
    ) -> None:
        _check_loopback(host)
        self.config = config
        self.host = host
        self.port = port
        self.warm = warm
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the server process is not running")
        return self._proc.pid

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def command(self) -> list[str]:
        c = self.config
        args = [sys.executable, "-m", "aiograb.testing", "--host", self.host]
        args += ["--port", str(self.port), "--latency-ms", repr(c.latency_ms)]
        args += ["--bandwidth-kbps", repr(c.bandwidth_kbps), "--seed", str(c.seed)]
        args += ["--site-pages", str(c.site_pages)]
        return [*args, "--warm"] if self.warm else args

    def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("the server process is already running")
        env = dict(os.environ)
        # Importable even from a plain checkout: put our src/ first on the child's path.
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            line = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        match = _READY_LINE.match(line.strip())
        if match is None:
            self.stop()
            raise RuntimeError(f"unexpected first line from the server process: {line!r}")
        self.base_url = match.group(1)
        self.port = int(match.group(2))

    def _read_ready_line(self) -> str:
        assert self._proc is not None
        assert self._proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._proc.stdout

        def read() -> None:  # a thread, because a pipe read cannot time out portably
            with contextlib.suppress(OSError, ValueError):
                lines.put(stdout.readline())

        threading.Thread(target=read, daemon=True).start()
        try:
            line = lines.get(timeout=_READY_TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"the server process was not ready in {_READY_TIMEOUT} s") from None
        if not line:
            code = self._proc.wait()
            raise RuntimeError(f"the server process exited with code {code} before serving")
        return line

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; waits for the process either way."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(_TERMINATE_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
