"""Running a coroutine on a fresh event loop, uvloop when it is installed."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "run_loop"]

T = TypeVar("T")


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def run_loop(coro: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    uv = _uvloop() if use_uvloop else None
    factory = uv.new_event_loop if uv is not None else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def loop_name(use_uvloop: bool = True) -> str:
    uv = _uvloop() if use_uvloop else None
    return f"uvloop {uv.__version__}" if uv is not None else "asyncio"
