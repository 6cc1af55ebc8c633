"""Where a request's answer stands: the transport's word to a hedge timer.

A hedge is worth sending only for a request whose answer has not come: one that went
out and whose connection has nothing to read. When the loop is busy (a burst of
answers being read), a timer fires late and cannot tell an answer still on its way
from one already waiting in a socket. A transport that can look says so here.

The client sets ``WATCH`` (a context variable, so nothing is threaded through the
fetcher's signature) to an ``AnswerWatch`` in the task that sends the first copy; a
transport that can tell hands the watch its exchange (``watch.exchange = ...``, the
latest one after a redirect). ``state()`` is then one of:

- ``ANSWERING``: the answer has begun (its head is read): no hedge;
- ``WAITING``: bytes wait in its socket, not read yet (the loop is busy): look again;
- ``SILENT``: sent, and nothing to read: a hedge now races no answer;
- ``UNKNOWN``: nobody can say (not sent yet, a transport without the means: aiohttp's).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

__all__ = ["ANSWERING", "SILENT", "UNKNOWN", "WAITING", "WATCH", "AnswerWatch", "Answering"]

UNKNOWN, SILENT, WAITING, ANSWERING = 0, 1, 2, 3


class Answering(Protocol):
    def answer_state(self) -> int:
        """One of ``UNKNOWN``, ``SILENT``, ``WAITING``, ``ANSWERING``."""
        ...


class AnswerWatch:
    """The first copy's exchange, as its transport handed it over (None until then)."""

    __slots__ = ("exchange",)

    def __init__(self) -> None:
        self.exchange: Answering | None = None

    def state(self) -> int:
        exchange = self.exchange
        return UNKNOWN if exchange is None else exchange.answer_state()


WATCH: ContextVar[AnswerWatch | None] = ContextVar("aiograb_answer_watch", default=None)
