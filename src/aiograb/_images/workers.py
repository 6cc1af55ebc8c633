"""A process pool driven from the event loop: no threads in the parent.

``concurrent.futures.ProcessPoolExecutor`` would add a management thread and a
queue-feeder thread to the parent, and a worker that dies (a decoder segfault)
breaks the whole executor and every item in flight with it. Here each worker
is a child process (``python -c``) joined to the parent by one socketpair; the
parent talks to it with asyncio streams on the loop it already runs:

    loop ──frame──> worker k (one request at a time) ──frame──> loop

A frame is a 4-byte big-endian length and a pickle of plain data (dicts,
bytes, str). A worker holds at most ``depth`` (2) requests and answers them in
order, so a worker that dies fails exactly the request it was working on
(``worker_crashed``) and is replaced; a request queued behind it goes to
another worker, and the others go on. A request that runs past ``timeout``
(counted from when the worker could start on it) kills its worker
(``worker_timeout``). Workers ignore SIGINT (the parent decides when to stop)
and exit when their socket closes, so a parent killed with -9 leaves no
orphans behind.

The child loads this file and the handler module by path (``handler`` names a
``.py`` file with ``handle(request: dict) -> dict``), not the aiograb package:
this module imports only the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["PoolStatistics", "WorkerPool"]

_LEN = struct.Struct(">I")
_BOOT = (
    "import importlib.util as u, sys\n"
    "s = u.spec_from_file_location('_aiograb_workers', sys.argv[1])\n"
    "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m)\n"
    "m.child_main(sys.argv[2], int(sys.argv[3]))\n"
)


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    workers: int
    requests: int
    crashed: int
    timed_out: int
    started: int  # processes started, replacements included


class _WorkerGone(Exception):
    """The worker died; ``culprit``: the request it died on (else it never got there)."""

    def __init__(self, culprit: bool) -> None:
        super().__init__("worker gone")
        self.culprit = culprit


class _Worker:
    """One child process and the parent's end of its socket.

    Requests are pipelined (the pool gives each worker ``depth`` of them): they
    queue in the socket and the worker answers them in order, so it never
    waits for the loop between two images. Each caller reads its own answer in
    turn; when the worker dies, the caller at the head of the line is the one
    whose request killed it, and those behind it never reached it.
    """

    def __init__(self, handler: str, env: dict[str, str] | None) -> None:
        parent, child = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, __file__, handler, str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self._sock = parent
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._opening = asyncio.Lock()
        self._tail: asyncio.Future[None] | None = None  # done when the last caller has read
        self.dead = False  # out of step or gone: no more requests
        self.replaced = False
        self._blamed = False

    async def _streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._opening:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)
        assert self._reader is not None
        return self._reader, self._writer

    async def call(self, payload: bytes, limit: float) -> bytes:
        prev, mine = self._tail, asyncio.get_running_loop().create_future()
        self._tail = mine
        try:
            reader, writer = await self._streams()
            if self.dead:
                raise _WorkerGone(culprit=False)
            try:  # one frame per request: no await between the two writes
                writer.write(_LEN.pack(len(payload)))
                writer.write(payload)
                await writer.drain()
            except ConnectionError as exc:  # not delivered: another worker can take it
                self.dead = True
                raise _WorkerGone(culprit=False) from exc
            if prev is not None:
                await prev  # answers come in order: the one before ours first
            if self.dead:
                raise _WorkerGone(culprit=False)
            try:
                # The clock starts when the worker can start on this request.
                async with asyncio.timeout(limit):
                    head = await reader.readexactly(_LEN.size)
                    return await reader.readexactly(_LEN.unpack(head)[0])
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                culprit, self._blamed, self.dead = not self._blamed, True, True
                raise _WorkerGone(culprit) from exc
        except BaseException:
            self.dead = True  # a time-out or cancellation leaves the stream out of step
            raise
        finally:
            if not mine.done():
                mine.set_result(None)

    def exit_reason(self) -> str:
        code = self.proc.poll()
        if code is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=1.0)
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"worker process killed by {signal.Signals(-code).name}"
        return f"worker process exited (status {code})"

    def close(self, *, kill: bool = False) -> None:
        """Close the socket: the worker sees EOF and exits."""
        # shutdown() now: a transport's close() only takes effect on the next loop turn.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._writer is not None:
            self._writer.close()
        else:
            self._sock.close()
        if kill and self.proc.poll() is None:
            self.proc.kill()

    def reap(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class WorkerPool:
    """N worker processes running ``handler``'s ``handle``; use as an async context manager.

    >>> async with WorkerPool("/path/to/handler.py", workers=2) as pool:
    ...     result = await pool.call({"data": b"..."})

    ``call`` waits for room (backpressure: at most ``workers * depth``
    requests are in the pool; ``depth`` 2 keeps a worker busy while the loop
    gets round to its answer) and never raises for a failed request: a dead
    or stuck worker gives ``{"ok": False, "code": "worker_crashed" |
    "worker_timeout", "message": ...}``; requests queued behind a crash are
    sent to another worker. Only cancellation propagates.
    """

    def __init__(
        self,
        handler: str | os.PathLike[str],
        *,
        workers: int,
        timeout: float = 120.0,
        depth: int = 2,
        env: dict[str, str] | None = None,
    ) -> None:
        if workers < 1 or depth < 1:
            raise ValueError("workers and depth must be >= 1")
        self._handler = os.fspath(handler)
        self._n = workers
        self._depth = depth
        self._timeout = timeout
        self._env = env
        # One entry per request a worker may hold; entries of dead workers are skipped.
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._requests = self._crashed = self._timed_out = self._started = 0
        self._closed = False

    async def __aenter__(self) -> WorkerPool:
        for _ in range(self._n):
            self._spawn()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> None:
        worker = _Worker(self._handler, self._env)
        self._all.add(worker)
        self._started += 1
        for _ in range(self._depth):
            self._idle.put_nowait(worker)

    def _replace(self, worker: _Worker) -> None:
        """Retire a worker that died or fell out of step, and start another (once)."""
        worker.dead = True
        if worker.replaced:
            return
        worker.replaced = True
        worker.close(kill=True)
        worker.reap(5.0)
        self._all.discard(worker)
        if not self._closed:
            self._spawn()

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise RuntimeError("the pool is closed")
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        self._requests += 1
        for _ in range(3):  # a request that never reached a live worker is tried again
            worker = await self._idle.get()
            while worker.dead:  # a stale entry of a retired worker
                worker = await self._idle.get()
            try:
                answer = await worker.call(payload, self._timeout)
            except _WorkerGone as gone:
                message = worker.exit_reason() if gone.culprit else ""
                self._replace(worker)
                if gone.culprit:
                    self._crashed += 1
                    return {"ok": False, "code": "worker_crashed", "message": message}
                continue
            except TimeoutError:
                self._replace(worker)
                self._timed_out += 1
                return {
                    "ok": False,
                    "code": "worker_timeout",
                    "message": f"no answer from the worker in {self._timeout:g} s",
                }
            except BaseException:
                self._replace(worker)
                raise
            if not self._closed:
                self._idle.put_nowait(worker)
            result: dict[str, Any] = pickle.loads(answer)
            return result
        self._crashed += 1
        return {"ok": False, "code": "worker_crashed", "message": "workers kept dying"}

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(
            workers=self._n,
            requests=self._requests,
            crashed=self._crashed,
            timed_out=self._timed_out,
            started=self._started,
        )

    def close(self) -> None:
        """Stop every worker: close the sockets, then reap (kill what lingers)."""
        self._closed = True
        workers = list(self._all)
        for worker in workers:
            worker.close()
        for worker in workers:
            worker.reap(5.0)
        self._all.clear()


# -- the child side ----------------------------------------------------------


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _load_handler(path: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("_aiograb_handler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    handle: Callable[[dict[str, Any]], dict[str, Any]] = module.handle
    return handle


def child_main(handler: str, fd: int) -> None:
    """Serve requests on socket ``fd`` until it closes (or the parent goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handle = _load_handler(handler)
    sock = socket.socket(fileno=fd)
    # A parent that stops (or is killed) with an answer unread resets the socket:
    # that is an ordinary end for a worker, not an error to print.
    with sock, contextlib.suppress(ConnectionError):
        while True:
            head = _recv_exactly(sock, _LEN.size)
            if head is None:
                return
            body = _recv_exactly(sock, _LEN.unpack(head)[0])
            if body is None:
                return
            answer = pickle.dumps(handle(pickle.loads(body)), protocol=pickle.HIGHEST_PROTOCOL)
            sock.sendall(_LEN.pack(len(answer)) + answer)
