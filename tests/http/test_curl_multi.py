"""The curl transport's multi handles on a real loop: each socket to its own lane."""

from __future__ import annotations

import asyncio
import socket

import pycurl

from aiograb._http.curl_lanes import LANE_WIDTH
from aiograb._http.curl_multi import Multis
from aiograb._http.curl_sockets import socket_watch
from tests.helpers import run


def test_a_lanes_late_remove_leaves_a_socket_another_lane_watches() -> None:
    """A descriptor one lane let go of and another took: the first one's late "remove"
    must not stop the loop watching it for the second."""

    async def main() -> tuple[bool, bool, list[tuple[int, int]]]:
        loop = asyncio.get_running_loop()
        multis = Multis(loop, 200, lambda _handle, _failure: None)
        first = multis.lanes.all[0]
        for _ in range(LANE_WIDTH + 1):  # a destination over one lane's width: a second lane
            second = multis.lanes.take("x")[0]
        assert second is not first
        seen: list[tuple[int, int]] = []
        assert multis._watch is not None
        multis._watch.close()
        multis._watch = socket_watch(loop, seen.extend)  # what the loop reports, kept
        ours, theirs = socket.socketpair()
        try:
            fd = ours.fileno()
            multis._on_socket(first, pycurl.POLL_IN, fd)
            multis._on_socket(second, pycurl.POLL_IN, fd)  # the same number, now the second's
            multis._on_socket(first, pycurl.POLL_REMOVE, fd)  # the first's, late
            theirs.send(b"x")
            for _ in range(5):
                await asyncio.sleep(0.01)
            kept = multis._fd_lane.get(fd) is second
            multis._on_socket(second, pycurl.POLL_REMOVE, fd)
            return kept, fd not in multis._fd_lane, seen
        finally:
            ours.close()
            theirs.close()
            multis.close()

    kept, gone, seen = run(main())
    assert kept
    assert gone
    assert seen  # still reported readable after the first lane's "remove"
