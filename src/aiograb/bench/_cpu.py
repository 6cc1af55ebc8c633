"""The CPU work of the "CPU on the loop vs in a pool" measurement: decode and resize
one downloaded image, either inline (on the calling thread, e.g. the event loop)
or in a process pool.

``process_file`` is a plain picklable function of a path, so a processor can
later call the image pipeline instead without changing how it is scheduled.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import Any

__all__ = [
    "CPU_MODES",
    "InlineProcessor",
    "PoolProcessor",
    "Processor",
    "make_processor",
    "process_file",
]

CPU_MODES = ("none", "inline", "pool")
POOL_NICENESS = 10


def process_file(path: str, thumb: int) -> dict[str, Any]:
    """Decode the image at ``path`` fully and make a ``thumb``-pixel thumbnail (in memory).

    Returns what it learnt and where it ran (pid, thread), e.g.
    ``{"width": 640, "height": 480, "pid": 123, "thread": 456}``.
    """
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        width, height = img.size
        small = img.convert("RGB")
        small.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
    return {"width": width, "height": height, "pid": os.getpid(), "thread": threading.get_ident()}


def _noop() -> int:
    return os.getpid()


def _lower_priority() -> None:
    # Batch CPU work yields to the downloading loop when the cores are busy.
    os.nice(POOL_NICENESS)


class Processor:
    """Something that processes downloaded files; ``finish`` waits for all of them.

    ``done`` holds what ``process_file`` returned for each file, ``failed`` counts
    files it could not process (a per-file failure is data, as in a download).
    """

    def __init__(self, thumb: int) -> None:
        self.thumb = thumb
        self.done: list[dict[str, Any]] = []
        self.failed = 0

    def submit(self, path: str) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Wait until every submitted file is processed."""

    def close(self) -> None:
        """Release what the processor holds (a pool)."""


class InlineProcessor(Processor):
    """Process each file right away, on the calling thread (blocking it meanwhile)."""

    def submit(self, path: str) -> None:
        try:
            self.done.append(process_file(path, self.thumb))
        except Exception:  # a file that does not decode is counted, as a download failure is
            self.failed += 1


class PoolProcessor(Processor):
    """Process files in a ``ProcessPoolExecutor``; the caller only submits.

    The workers are started (spawn) and warmed by ``start``, before the timed run,
    so the measurement is of the steady state, not of interpreter start-up. They
    run at a lower priority (nice 10) so that, when cores are scarce, the event
    loop still gets the CPU it needs to keep the downloads going.
    """

    def __init__(self, thumb: int, workers: int) -> None:
        super().__init__(thumb)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_lower_priority,
        )
        self._workers = workers
        self._futures: list[Future[dict[str, Any]]] = []

    def start(self) -> None:
        wait([self._pool.submit(_noop) for _ in range(self._workers)])

    def submit(self, path: str) -> None:
        self._futures.append(self._pool.submit(process_file, path, self.thumb))

    def finish(self) -> None:
        for future in self._futures:
            try:
                self.done.append(future.result())
            except Exception:  # as in InlineProcessor
                self.failed += 1
        self._futures.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_processor(mode: str, thumb: int, workers: int) -> Processor | None:
    """The processor of a CPU mode (``none`` has none); a pool is started and warm."""
    if mode == "none":
        return None
    if mode == "inline":
        return InlineProcessor(thumb)
    if mode == "pool":
        pool = PoolProcessor(thumb, workers)
        pool.start()
        return pool
    raise ValueError(f"unknown cpu mode {mode!r}")
