"""Where a request's answer stands, as the curl transport tells a hedge timer
(``_http/answers.py``), against a real server that answers when the test says so."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from yarl import URL

from aiograb._core.config import Limits, Timeouts
from aiograb._http.answers import ANSWERING, SILENT, UNKNOWN, WAITING, WATCH, AnswerWatch
from aiograb._http.curl_transport import CurlTransport
from tests.helpers import run, serve_app

pytestmark = pytest.mark.one_transport  # the curl transport, whichever the run tests

TIMEOUTS = Timeouts(total=10, connect=5)


def test_silent_while_the_server_thinks_waiting_while_unread_answering_once_read() -> None:
    states: list[int] = []

    async def main() -> None:
        go = asyncio.Event()

        async def slow(request: web.Request) -> web.Response:
            await go.wait()
            return web.Response(body=b"answer")

        app = web.Application()
        app.router.add_get("/slow", slow)
        async with serve_app(app) as base:
            transport = CurlTransport(Limits())
            watch = AnswerWatch()
            token = WATCH.set(watch)
            try:
                exchange = transport.send(
                    "GET", URL(f"{base}/slow"), headers={}, body=None, timeouts=TIMEOUTS
                )
                WATCH.reset(token)
                states.append(watch.state())  # handed to libcurl, not driven yet
                entered = asyncio.ensure_future(exchange.__aenter__())
                for _ in range(200):  # until libcurl has sent it (bounded: 2 s)
                    await asyncio.sleep(0.01)
                    if watch.state() != UNKNOWN:
                        break
                states.append(watch.state())  # sent; the server holds the answer
                go.set()
                await asyncio.sleep(0)  # the handler writes the answer...
                await asyncio.sleep(0)
                # ... which lands in the socket while the loop is held: unread by libcurl.
                time.sleep(0.1)  # noqa: ASYNC251 (the loop is busy, on purpose)
                states.append(watch.state())
                response = await entered
                states.append(watch.state())
                assert await response.read_all() == b"answer"
                await exchange.__aexit__(None, None, None)
            finally:
                await transport.aclose()

    run(main())
    assert states == [UNKNOWN, SILENT, WAITING, ANSWERING]
