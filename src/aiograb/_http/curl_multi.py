"""libcurl's multi handles on the running loop: the curl transport's engine room.

``Multis`` owns the multi handles (the lanes of ``curl_lanes.py``) and drives them from
the loop, one thread: libcurl says per socket what to wait for
(``CURLMOPT_SOCKETFUNCTION`` → the one epoll set of ``curl_sockets.py``) and when to
wake it (``CURLMOPT_TIMERFUNCTION`` → ``loop.call_later``, one timer per lane), and the
loop hands back what is ready (``socket_action``), each socket to the lane it belongs
to. A finished transfer is handed to ``finish``, the transport's; what a request is
made of (options, headers, routes, DNS) stays in ``curl_transport.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pycurl

from aiograb._http.curl_exchange import Easy
from aiograb._http.curl_lanes import Lane, Lanes
from aiograb._http.curl_sockets import SocketWatch, socket_watch

__all__ = ["Finish", "Multis"]

_POLL_REMOVE, _SOCKET_TIMEOUT = pycurl.POLL_REMOVE, pycurl.SOCKET_TIMEOUT

Finish = Callable[[Any, "tuple[int, str] | None"], None]  # (easy handle, (errno, message))


class Multis:
    """The multi handles of one transport, on ``loop``: they share ``concurrency``
    connections; a destination's transfers go to a lane with room for them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, concurrency: int, finish: Finish) -> None:
        self._loop = loop
        self._finish = finish
        self._fd_lane: dict[int, Lane] = {}  # each watched socket's lane
        self._watch: SocketWatch | None = socket_watch(loop, self._on_ready)
        self.lanes = Lanes(self._new_lane, concurrency, self._limit)
        self._closed = False

    def _new_lane(self, index: int) -> Lane:
        multi = pycurl.CurlMulti()
        lane = Lane(index, multi)
        multi.setopt(
            pycurl.M_SOCKETFUNCTION, lambda what, fd, _m, _s: self._on_socket(lane, what, fd)
        )
        multi.setopt(pycurl.M_TIMERFUNCTION, lambda ms: self._on_timer(lane, ms))
        return lane

    @staticmethod
    def _limit(lane: Lane) -> None:
        """libcurl's limits of ``lane``: its room, open and kept (at a new connection
        over it, libcurl first closes the lane's oldest idle ones)."""
        lane.multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, lane.room)
        lane.multi.setopt(pycurl.M_MAXCONNECTS, lane.room)

    # -- transfers ---------------------------------------------------------------------------

    def add(self, easy: Easy, key: object) -> None:
        """Hand ``easy``'s transfer to libcurl, in a lane with room for ``key``."""
        lane, easy.load = self.lanes.take(key)
        easy.lane, easy.key = lane, key
        lane.multi.add_handle(easy.curl)

    def remove(self, easy: Easy) -> None:
        """Take ``easy`` out of its lane (nothing if it is in none)."""
        lane = easy.lane
        if lane is None:
            return
        easy.lane = None
        lane.multi.remove_handle(easy.curl)
        self.lanes.give_back(easy.key, easy.load, lane)

    def close(self) -> None:
        """Stop every timer and the watch, and close the multi handles (their
        transfers removed by the caller first)."""
        self._closed = True
        for lane in self.lanes.all:
            if lane.timer is not None:
                lane.timer.cancel()
                lane.timer = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        self._fd_lane.clear()
        for lane in self.lanes.all:
            lane.multi.close()

    # -- libcurl → loop --------------------------------------------------------------------

    def _on_socket(self, lane: Lane, what: int, fd: int) -> None:
        fd_lane = self._fd_lane
        if what == _POLL_REMOVE:
            if fd_lane.get(fd) is not lane:  # not this lane's (any more): leave it watched
                return
            del fd_lane[fd]
        else:
            fd_lane[fd] = lane
        if self._watch is not None:
            self._watch.update(fd, what)

    def _on_timer(self, lane: Lane, ms: int) -> None:
        # libcurl moves its deadline many times per transfer: a timer that fires no later
        # than the new one is kept (firing early is harmless; it saves a TimerHandle a call).
        timer = lane.timer
        if ms < 0:
            if timer is not None:
                timer.cancel()
                lane.timer = None
            return
        loop = self._loop
        deadline = loop.time() + ms / 1000
        if timer is not None:
            if lane.deadline <= deadline:
                return
            timer.cancel()
        lane.deadline = deadline
        lane.timer = loop.call_later(ms / 1000, self._on_timeout, lane)

    def _on_timeout(self, lane: Lane) -> None:
        lane.timer = None
        if self._closed:
            return
        _, running = lane.multi.socket_action(_SOCKET_TIMEOUT, 0)
        if running < lane.added:
            self._collect(lane)

    def _on_ready(self, events: list[tuple[int, int]]) -> None:
        """Hand libcurl what is ready: (socket, CSELECT_* bits), each to its lane."""
        if self._closed:
            return
        fd_lane = self._fd_lane
        for fd, bits in events:
            lane = fd_lane.get(fd)
            if lane is None:  # removed by an earlier socket's action in this batch
                continue
            _, running = lane.multi.socket_action(fd, bits)
            if running < lane.added:
                self._collect(lane)

    def _collect(self, lane: Lane) -> None:
        multi, finish = lane.multi, self._finish
        while True:
            queued, ok, failed = multi.info_read()
            for handle in ok:
                finish(handle, None)
            for handle, errno, message in failed:
                finish(handle, (errno, message))
            if not queued:
                return
