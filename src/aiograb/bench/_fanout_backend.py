"""The fan-out benchmark's backend: many "replicas" behind one port, with a
reproducible latency per call.

``GET /call?key=K&ns=N`` answers after ``assigned_latency(K)``: log-normal
around a 20 ms median, and a 0.1 % tail of 400 ms. A repeated request for the
same key within namespace ``N`` (a hedge, a retry) "lands on another replica"
and takes the median. ``GET /stats`` returns the counters as JSON. Latencies
depend only on the key, so every client sees the same draws.

A bare asyncio protocol, not a web framework, so that the backend costs a few
microseconds per call and the clients are what is measured. Run it with::

    python -m aiograb.bench._fanout_backend [--port 0]   # prints "port N", then serves
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiograb.bench._fanout_model import MEDIAN_S, assigned_latency

__all__ = ["main", "serve"]

_STATUS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "


@dataclass
class _State:
    requests: int = 0
    repeats: int = 0
    cancelled: int = 0  # answers never sent: the client went away first
    connections: int = 0
    seen: set[tuple[str, str]] = field(default_factory=set)

    def stats(self) -> bytes:
        body = {
            "requests": self.requests,
            "repeats": self.repeats,
            "cancelled": self.cancelled,
            "connections": self.connections,
        }
        return json.dumps(body).encode()


def _query(text: str) -> dict[str, str]:
    out = {}
    for part in text.split("&"):
        name, _, value = part.partition("=")
        out[name] = value
    return out


class _Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (no pipelining)."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._buf = b""
        self._pending: asyncio.TimerHandle | None = None
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._state.connections += 1
        self._transport = transport  # uvloop's is not an asyncio.Transport subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
            self._state.cancelled += 1
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while (end := self._buf.find(b"\r\n\r\n")) >= 0:
            head, self._buf = self._buf[:end], self._buf[end + 4 :]
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            self._handle(parts[1] if len(parts) > 1 else "/")

    def _handle(self, target: str) -> None:
        path, _, query = target.partition("?")
        state = self._state
        if path != "/call":
            self._send(state.stats())
            return
        params = _query(query)
        key = params.get("key", "")
        state.requests += 1
        seen = (params.get("ns", ""), key)
        if seen in state.seen:
            state.repeats += 1
            delay = MEDIAN_S
        else:
            state.seen.add(seen)
            delay = assigned_latency(key)
        body = b'{"key":"%s","ms":%.1f}' % (key.encode(), delay * 1000)
        loop = asyncio.get_running_loop()
        self._pending = loop.call_later(delay, self._send, body)

    def _send(self, body: bytes) -> None:
        self._pending = None
        if self._transport is not None:
            self._transport.write(b"%s%d\r\n\r\n%s" % (_STATUS, len(body), body))


async def serve(port: int, ready: asyncio.Future[int] | None = None) -> None:
    state = _State()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(state), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    if ready is not None:
        ready.set_result(bound)
    print(f"port {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    from aiograb._core.loop import run_loop

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve(args.port))


if __name__ == "__main__":
    main()
