"""The sockets libcurl asks the curl transport to watch, and how the loop watches them.

libcurl says per socket what to wait for (``CURLMOPT_SOCKETFUNCTION``: in, out, both,
or nothing more) and is told back which are ready (``socket_action``). On a reused
keep-alive connection that is "in" when a request starts and "remove" when it ends:
twice per request. Handed to the loop as ``add_reader``/``remove_reader``, that is a
Python handle, a libuv poll handle made and freed, an ``ioctl`` and two ``epoll_ctl``
per request — measured at 14 % of a 1,000-call fan-out's CPU (BENCHMARKS.md, "#12
fan-out, fourth pass").

``EpollWatch`` keeps libcurl's sockets in an epoll set of its own instead, one
``epoll_ctl`` per change, and the loop watches that set's single descriptor: when it is
readable, ``ready`` reads every ready socket (``epoll_wait`` with no wait) and hands
each to libcurl in one call with both directions. Sockets stay in the set exactly
while libcurl asks for them, so a descriptor libcurl closes and the system gives out
again is never mistaken for the old one. Level-triggered, like the loop's own: what
is not read now is reported again.

``LoopWatch`` is the loop's ``add_reader``/``add_writer``, for a system without epoll.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Protocol

import pycurl

__all__ = ["EpollWatch", "LoopWatch", "SocketWatch", "socket_watch"]

_POLL_IN, _POLL_OUT, _POLL_REMOVE = pycurl.POLL_IN, pycurl.POLL_OUT, pycurl.POLL_REMOVE
_CSELECT_IN, _CSELECT_OUT = pycurl.CSELECT_IN, pycurl.CSELECT_OUT

Act = Callable[[list[tuple[int, int]]], None]  # (socket, CSELECT_* bits) for each ready one


class SocketWatch(Protocol):
    """What the transport asks of a watcher."""

    def update(self, fd: int, what: int) -> None:
        """libcurl's wish for ``fd`` (``POLL_IN``, ``POLL_OUT``, both, ``POLL_REMOVE``)."""

    def close(self) -> None: ...


if hasattr(select, "epoll"):
    _EPOLLIN, _EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
    _EPOLL_BAD = select.EPOLLERR | select.EPOLLHUP
    # libcurl's wish → the epoll mask
    _MASKS = {_POLL_IN: _EPOLLIN, _POLL_OUT: _EPOLLOUT, _POLL_IN | _POLL_OUT: _EPOLLIN | _EPOLLOUT}


class EpollWatch:
    """libcurl's sockets in an epoll set of their own, watched by the loop as one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, act: Act) -> None:
        self._loop = loop
        self._act = act
        self._epoll = select.epoll()
        self._masks: dict[int, int] = {}  # socket -> the epoll mask it is registered with
        loop.add_reader(self._epoll.fileno(), self.ready)

    def update(self, fd: int, what: int) -> None:
        before = self._masks.get(fd)
        if what == _POLL_REMOVE:
            if before is not None:
                del self._masks[fd]
                try:  # noqa: SIM105 (per request: contextlib.suppress costs more)
                    self._epoll.unregister(fd)
                except OSError:  # closed already: the system dropped it from the set
                    pass
            return
        mask = _MASKS[what]
        if before == mask:
            return
        self._masks[fd] = mask
        try:
            if before is None:
                self._epoll.register(fd, mask)
            else:
                self._epoll.modify(fd, mask)
        except FileExistsError:  # in the set under another mask: never seen, but harmless
            self._epoll.modify(fd, mask)
        except FileNotFoundError:  # closed and given out again without a "remove" first
            self._epoll.register(fd, mask)

    def ready(self) -> None:
        masks = self._masks
        events = []
        for fd, got in self._epoll.poll(0):
            mask = masks.get(fd, 0)
            if got & _EPOLL_BAD:  # an error or hang-up: libcurl finds out by trying
                got |= mask
            bits = (_CSELECT_IN if got & mask & _EPOLLIN else 0) | (
                _CSELECT_OUT if got & mask & _EPOLLOUT else 0
            )
            if bits:
                events.append((fd, bits))
        if events:
            self._act(events)

    def close(self) -> None:
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._masks.clear()


class LoopWatch:
    """libcurl's sockets as the loop's readers and writers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, act: Act) -> None:
        self._loop = loop
        self._act = act
        self._fds: dict[int, int] = {}

    def _on_ready(self, fd: int, bits: int) -> None:
        self._act([(fd, bits)])

    def update(self, fd: int, what: int) -> None:
        loop = self._loop
        before = self._fds.get(fd, 0)
        if what == _POLL_REMOVE:
            what = 0
        if what & _POLL_IN and not before & _POLL_IN:
            loop.add_reader(fd, self._on_ready, fd, _CSELECT_IN)
        elif before & _POLL_IN and not what & _POLL_IN:
            loop.remove_reader(fd)
        if what & _POLL_OUT and not before & _POLL_OUT:
            loop.add_writer(fd, self._on_ready, fd, _CSELECT_OUT)
        elif before & _POLL_OUT and not what & _POLL_OUT:
            loop.remove_writer(fd)
        if what:
            self._fds[fd] = what
        else:
            self._fds.pop(fd, None)

    def close(self) -> None:
        for fd, what in self._fds.items():
            if what & _POLL_IN:
                self._loop.remove_reader(fd)
            if what & _POLL_OUT:
                self._loop.remove_writer(fd)
        self._fds.clear()


def socket_watch(loop: asyncio.AbstractEventLoop, act: Act) -> SocketWatch:
    """An ``EpollWatch`` where the system has epoll, else a ``LoopWatch``."""
    if hasattr(select, "epoll"):
        return EpollWatch(loop, act)
    return LoopWatch(loop, act)
