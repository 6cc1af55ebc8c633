"""Running a coroutine on a fresh event loop, uvloop when it is installed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from aiograb._core.errors import UsageError

__all__ = [
    "GC_THRESHOLD0",
    "check_no_running_loop",
    "loop_name",
    "run_loop",
    "run_stoppable",
    "stop_signals",
    "tuned_gc",
]

T = TypeVar("T")

# Generation-0 collections every this many net allocations instead of CPython's 700.
# Measured with gc.callbacks over a 10k-file get (BENCHMARKS.md, "#13 peers"): at 700,
# ~75 young and ~7 older collections took ~12 us of CPU per file; at 5000 with the
# start-up heap frozen, 6 young collections and no older ones, under 1 us per file.
# A fan-out keeps every call's objects alive while it is in flight (~20-40 per call):
# at W = 1000 a round peaks above 20,000 net objects, so at 5000 each round paid ~7
# young collections of ~1.3 ms and one older of ~11 ms, ~15 us a call, 10-20 % of its
# CPU; at 50,000 two young ones in a whole run (BENCHMARKS.md, "#12 fan-out, fifth
# pass"). Garbage without cycles is freed at once whatever this is.
GC_THRESHOLD0 = 50_000


@contextlib.contextmanager
def tuned_gc(threshold0: int = GC_THRESHOLD0) -> Iterator[None]:
    """For one run: the heap built so far (modules, config) is frozen out of the
    collector's sight and generation 0 is collected less often; both are restored after."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold0, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def run_loop(coro: Coroutine[Any, Any, T], *, use_uvloop: bool = True) -> T:
    uv = _uvloop() if use_uvloop else None
    factory = uv.new_event_loop if uv is not None else None
    with tuned_gc(), asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def loop_name(use_uvloop: bool = True) -> str:
    uv = _uvloop() if use_uvloop else None
    return f"uvloop {uv.__version__}" if uv is not None else "asyncio"


def check_no_running_loop(blocking: str, async_name: str) -> None:
    """Raise UsageError when called from inside a running event loop (Jupyter, async code).

    Checked before any coroutine exists, so there is no "never awaited" warning.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise UsageError(
        f"aiograb.{blocking}() cannot run inside a running event loop (Jupyter, async "
        f"code): use 'await aiograb.{async_name}(...)' there"
    )


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals that stop a run gently: Ctrl-C, SIGTERM (a job scheduler's, a
    container's stop) and SIGHUP (the terminal went away), unless SIGHUP is ignored
    (``nohup``: the user asked the run to outlive the terminal)."""
    hangup = () if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else (signal.SIGHUP,)
    return (signal.SIGINT, signal.SIGTERM, *hangup)


def run_stoppable(
    main: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    *,
    use_uvloop: bool = True,
    names: tuple[str, str] = ("download", "download_async"),
) -> T:
    """Run ``main(stop)`` on a fresh loop; ``stop_signals()`` set ``stop`` instead of killing.

    The first signal asks the run to stop gently (journal and manifest are still
    written); a second one gets the default behaviour. Off the main thread, where
    signal handlers cannot be installed, ``stop`` is simply never set by a signal.
    Inside a running loop it raises UsageError naming ``names`` (blocking, async).
    """
    check_no_running_loop(*names)

    async def runner() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: int) -> None:
            loop.remove_signal_handler(sig)
            stop.set()

        installed = []
        for sig in stop_signals():
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                pass
        try:
            return await main(stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return run_loop(runner(), use_uvloop=use_uvloop)
