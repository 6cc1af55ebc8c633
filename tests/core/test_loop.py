"""The run loop: GC tuned for a run's duration and restored after."""

from __future__ import annotations

import asyncio
import gc

from aiograb._core.loop import GC_THRESHOLD0, run_loop


def test_a_run_tunes_gc_and_restores_it() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()

    async def inside() -> tuple[tuple[int, int, int], int]:
        await asyncio.sleep(0)
        return gc.get_threshold(), gc.get_freeze_count()

    threshold, frozen = run_loop(inside(), use_uvloop=False)
    assert threshold == (GC_THRESHOLD0, before[1], before[2])
    assert frozen > frozen_before  # the start-up heap is out of the collector's sight
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
