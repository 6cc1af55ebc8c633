"""The curl transport's socket watchers, on real sockets and a real loop."""

from __future__ import annotations

import asyncio
import os
import select
import socket

import pycurl
import pytest

from aiograb._http.curl_sockets import EpollWatch, LoopWatch
from tests.helpers import run

WATCHERS: list[type[LoopWatch] | type[EpollWatch]] = [LoopWatch]
if hasattr(select, "epoll"):
    WATCHERS.append(EpollWatch)


async def _settle() -> None:
    for _ in range(5):  # a few turns of the loop: it polls between them
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("make", WATCHERS, ids=lambda m: m.__name__)
def test_a_watched_socket_is_reported_while_libcurl_asks_for_it(
    make: type[LoopWatch] | type[EpollWatch],
) -> None:
    async def main() -> None:
        seen: list[tuple[int, int]] = []
        watch = make(asyncio.get_running_loop(), seen.extend)
        ours, theirs = socket.socketpair()
        try:
            fd = ours.fileno()
            watch.update(fd, pycurl.POLL_OUT)  # writable at once
            await _settle()
            assert (fd, pycurl.CSELECT_OUT) in seen
            watch.update(fd, pycurl.POLL_IN)  # not readable yet: nothing more
            seen.clear()
            await _settle()
            assert seen == []
            theirs.send(b"x")
            await _settle()
            assert set(seen) == {(fd, pycurl.CSELECT_IN)}
            assert len(seen) >= 2  # level-triggered: reported again while unread
            watch.update(fd, pycurl.POLL_REMOVE)
            seen.clear()
            await _settle()
            assert seen == []  # readable still, but no longer asked for
        finally:
            watch.close()
            ours.close()
            theirs.close()

    run(main())


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux's")
def test_a_number_closed_without_remove_and_given_out_again_is_watched_anew() -> None:
    """libcurl announces "remove" before it closes; if a socket went without, the
    number's next socket must still be watched, not taken for the old one."""

    async def main() -> None:
        seen: list[tuple[int, int]] = []
        watch = EpollWatch(asyncio.get_running_loop(), seen.extend)
        a, b = socket.socketpair()
        try:
            fd = a.fileno()
            watch.update(fd, pycurl.POLL_IN)
            a.close()  # the system drops it from the epoll set
            c, d = socket.socketpair()
            if c.fileno() != fd:  # take the old number for the new socket
                os.dup2(c.fileno(), fd)
                c.close()
                c = socket.socket(fileno=fd)
            watch.update(fd, pycurl.POLL_IN | pycurl.POLL_OUT)  # modify: not found → register
            d.send(b"y")
            await _settle()
            assert (fd, pycurl.CSELECT_IN | pycurl.CSELECT_OUT) in seen
            watch.update(fd, pycurl.POLL_REMOVE)
            c.close()
            d.close()
        finally:
            watch.close()
            b.close()

    run(main())


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux's")
def test_every_ready_socket_comes_in_one_batch() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        batches: list[list[tuple[int, int]]] = []
        watch = EpollWatch(loop, batches.append)
        pairs = [socket.socketpair() for _ in range(50)]
        try:
            for ours, theirs in pairs:
                watch.update(ours.fileno(), pycurl.POLL_IN)
                theirs.send(b"z")
            await _settle()
            assert {fd for fd, _ in batches[0]} == {ours.fileno() for ours, _ in pairs}
            for ours, _ in pairs:
                watch.update(ours.fileno(), pycurl.POLL_REMOVE)
        finally:
            watch.close()
            for ours, theirs in pairs:
                ours.close()
                theirs.close()

    run(main())
