"""The IO pool of the files output: files stored from IO threads where the medium is
measured to be slow (``Placement``), every guarantee kept."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from aiograb import Limits, RequestPolicy, RetryPolicy, Timeouts, UsageError
from aiograb._core.errors import WriteError
from aiograb._core.stats import os_threads
from aiograb._core.urls import parse_url, url_key
from aiograb._get.download import run_get
from aiograb._get.sources import InputRow
from aiograb._store.sinks import BATCH_FILES, PROBE_EVERY, SPILL_BYTES, FileSink, Placement
from aiograb.testing import RunningServer, image_bytes
from tests.helpers import by_url, run

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=30, connect=10))


def slow_medium() -> Placement:
    """Every store on the loop counts as slow: files go to the pool (but one in
    ``PROBE_EVERY``, the probe, which these tests' few files never reach)."""
    return Placement(limit=-1.0, inline=False, preempted=never)


def never() -> int:
    """A machine where nothing preempts the loop's thread: every slow store votes."""
    return 0


def test_commit_returns_at_once_and_settle_waits_for_the_rename(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, io_threads=1, placement=slow_medium())
    sink.prepare()
    body = b"\x89PNG" + bytes(range(256)) * 40
    gate = threading.Event()
    blocker = sink.pool.submit(gate.wait, 10) if sink.pool else None  # the one thread is busy
    seen: dict[str, object] = {}

    async def main() -> None:
        writers = [sink.open(f"{i:02d}" + "a" * 30) for i in range(2)]
        stored = []
        for w in writers:
            w.write(body)
            stored.append(w.commit("image/png"))  # does not wait for the disk
        # Both bodies wait for the busy thread: committed, but not in place yet.
        seen["before"] = [(tmp_path / str(s.path)).exists() for s in stored]
        gate.set()
        for w in writers:
            await w.settle()
        seen["stored"] = stored

    run(main())
    assert blocker is not None
    assert blocker.result() is True
    assert seen["before"] == [False, False]
    stored = seen["stored"]
    assert isinstance(stored, list)
    for s in stored:
        assert (tmp_path / s.path).read_bytes() == body
        assert s.sha256 == hashlib.sha256(body).hexdigest()
        assert s.size == len(body)
    assert not list((tmp_path / ".aiograb-tmp").iterdir())
    sink.close()
    assert sink.pool is not None
    assert sink.pool._shutdown


def test_a_write_error_in_an_io_thread_is_a_failed_row_and_no_file(
    server: RunningServer, tmp_path: Path
) -> None:
    good, bad = server.url("/img/1.png"), server.url("/img/2.png")
    blocked = url_key(str(parse_url(bad)))[:2]
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / blocked).write_text("a file where the folder should be")
    rows = [InputRow(line=1, url=good), InputRow(line=2, url=bad)]
    summary = run(
        run_get(rows, tmp_path, limits=Limits(concurrency=4, per_host=0), policy=FAST, io_threads=2)
    )
    done = by_url(tmp_path)
    if blocked == url_key(str(parse_url(good)))[:2]:
        pytest.skip("both keys share a folder")
    assert done[good]["state"] == "ok"
    assert (tmp_path / done[good]["path"]).read_bytes() == image_bytes(1, "png")
    assert done[bad]["state"] == "failed"
    assert done[bad]["error"] == "write_error"
    assert done[bad]["path"] is None
    assert summary.counts == {"ok": 1, "failed": 1}
    assert not list((tmp_path / ".aiograb-tmp").iterdir())  # the temp file went too


@pytest.mark.parametrize("io_threads", [0, 3])
def test_files_arrive_whole_through_the_pool(
    server: RunningServer, tmp_path: Path, io_threads: int
) -> None:
    large = server.url("/img/5.png?size=large")  # spills while streaming: rename in the pool
    urls = [server.url(f"/img/{i}.jpg") for i in range(60)] + [large]
    rows = [InputRow(line=i, url=u) for i, u in enumerate(urls, 1)]
    before = os_threads()  # this test process: the loop, plus the test server's thread
    summary = run(
        run_get(
            rows,
            tmp_path,
            limits=Limits(concurrency=32, per_host=0),
            policy=FAST,
            io_threads=io_threads,
        )
    )
    assert summary.counts == {"ok": 61}
    done = by_url(tmp_path)
    for i, url in enumerate(urls[:60]):
        assert (tmp_path / done[url]["path"]).read_bytes() == image_bytes(i, "jpg")
    big = (tmp_path / done[large]["path"]).read_bytes()
    assert len(big) > SPILL_BYTES
    assert hashlib.sha256(big).hexdigest() == done[large]["sha256"]
    # IP-only URLs: at most the fixed pool more, however many were in flight.
    assert summary.io_threads == io_threads
    assert summary.peak_threads <= before + io_threads
    assert not list((tmp_path / ".aiograb-tmp").iterdir())


def test_io_threads_is_validated(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="io_threads"):
        FileSink(tmp_path, io_threads=-1)


def _store_many(sink: FileSink, n: int, body: bytes = b"GIF89a" + b"z" * 300) -> list[str]:
    """Commit ``n`` bodies from as many writers in one turn of the loop, then settle
    them; the keys."""
    keys = [f"{i:032x}" for i in range(n)]

    async def main() -> None:
        writers = [sink.open(k) for k in keys]
        for w in writers:
            w.write(body)
            w.commit("image/gif")
        for w in writers:
            await w.settle()

    run(main())
    for k in keys:
        assert (tmp := sink.root / k[:2] / f"{k}.gif").read_bytes() == body, tmp
    return keys


def _renames(mp: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Record the thread of every ``os.replace`` (the real call still happens)."""
    import os

    renames: list[tuple[int, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        renames.append((threading.get_ident(), str(dst)))
        real_replace(src, dst)

    mp.setattr(os, "replace", replace)
    return renames


def test_on_a_slow_medium_the_loop_thread_does_no_file_io(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, io_threads=2, placement=slow_medium())
    sink.prepare()
    with pytest.MonkeyPatch.context() as mp:
        renames = _renames(mp)
        _store_many(sink, 20)
    sink.close()
    assert len(renames) == 20
    assert all(t != threading.get_ident() for t, _ in renames)
    assert sink.placement.pooled_files == 20


def test_on_a_fast_medium_files_stay_on_the_loop_and_no_thread_starts(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, io_threads=2, placement=Placement(limit=10.0))
    sink.prepare()
    with pytest.MonkeyPatch.context() as mp:
        renames = _renames(mp)
        _store_many(sink, 100)
    assert sink.pool is not None
    assert not sink.pool._threads  # never asked for work: no thread was started
    sink.close()
    assert len(renames) == 100
    assert all(t == threading.get_ident() for t, _ in renames)
    assert sink.placement.pooled_files == 0


def test_placement_moves_to_the_pool_when_the_medium_turns_slow_and_back(tmp_path: Path) -> None:
    """Real stores, timed; the limit stands for the medium's speed changing."""
    placement = Placement(limit=10.0, preempted=never)
    sink = FileSink(tmp_path, io_threads=1, placement=placement)
    sink.prepare()
    _store_many(sink, Placement.WINDOW)
    assert placement.inline
    assert placement.pooled_files == 0
    placement.limit = -1.0  # every store is now "slow"
    _store_many(sink, Placement.WINDOW)  # a window of them on the loop, then the vote
    assert not placement.inline
    _store_many(sink, PROBE_EVERY - 1)
    assert placement.pooled_files == PROBE_EVERY - 1
    placement.limit = 10.0  # fast again: two probes in a row bring the files back
    _store_many(sink, 2 * PROBE_EVERY)
    assert placement.inline
    sink.close()


def test_one_slow_store_in_a_window_moves_nothing() -> None:
    placement = Placement(limit=100e-6, preempted=never)
    for i in range(Placement.WINDOW * 4):
        assert placement.on_loop()
        placement.observe(0.05 if i % 8 == 0 else 20e-6)  # a 50 ms stall now and then
    assert placement.inline
    assert placement.pooled_files == 0
    for _ in range(Placement.WINDOW // 2 + 1):  # most of a window slow: the pool
        placement.on_loop()
        placement.observe(0.05)
    for _ in range(Placement.WINDOW // 2 - 1):
        placement.on_loop()
        placement.observe(20e-6)
    assert not placement.inline
    assert not placement.on_loop()
    assert placement.pooled_files == 1


class _Counting:
    """Counts the tasks a sink hands to its IO pool (the hand-offs of the loop)."""

    def __init__(self, sink: FileSink) -> None:
        assert sink.pool is not None
        self.tasks = 0
        submit = sink.pool.submit

        def counted(fn: Any, /, *args: Any) -> Any:
            self.tasks += 1
            return submit(fn, *args)

        sink.pool.submit = counted  # type: ignore[method-assign]


def test_the_files_of_one_loop_turn_are_one_hand_off(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, io_threads=2, placement=slow_medium())
    sink.prepare()
    counting = _Counting(sink)
    n = BATCH_FILES + 8  # a full batch, then the rest of the turn
    body = b"\x89PNG" + b"x" * 500
    # The first key's folder is a file: that one fails; the batch's others do not.
    keys = ["zz" + "0" * 30] + [f"{i:032x}" for i in range(1, n)]
    (tmp_path / "zz").write_text("in the way")
    outcomes: list[object] = []

    async def main() -> None:
        writers = [sink.open(k) for k in keys]
        for w in writers:  # one turn of the loop: no await in between
            w.write(body)
            w.commit("image/png")
        for w in writers:
            try:
                await w.settle()
                outcomes.append("ok")
            except WriteError as exc:
                outcomes.append(exc)

    run(main())
    sink.close()
    assert counting.tasks == 2  # not n: BATCH_FILES, then the 8 left at the end of the turn
    assert isinstance(outcomes[0], WriteError)
    assert outcomes[1:] == ["ok"] * (n - 1)
    for k in keys[1:]:
        assert (tmp_path / k[:2] / f"{k}.png").read_bytes() == body
    assert not list((tmp_path / ".aiograb-tmp").iterdir())


def test_a_cancelled_writer_leaves_its_batch_settling(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, io_threads=1, placement=slow_medium())
    sink.prepare()
    gate = threading.Event()
    assert sink.pool is not None
    sink.pool.submit(gate.wait, 10)  # the thread is busy: the batch waits behind it
    body = b"GIF89a" + b"y" * 100
    keys = [f"{i:032x}" for i in range(3)]

    async def main() -> None:
        writers = [sink.open(k) for k in keys]
        for w in writers:
            w.write(body)
            w.commit("image/gif")
        first = asyncio.ensure_future(writers[0].settle())
        await asyncio.sleep(0)
        first.cancel()  # e.g. Ctrl-C reached that worker
        gate.set()
        for w in writers[1:]:
            await w.settle()
        with pytest.raises(asyncio.CancelledError):
            await first

    run(main())
    sink.close()
    for k in keys:  # the file of the cancelled writer was stored all the same
        assert (tmp_path / k[:2] / f"{k}.gif").read_bytes() == body


def test_a_slow_store_while_the_thread_was_preempted_does_not_vote() -> None:
    """A busy machine, not a slow disk: the OS took the core away during the stores."""
    switches = iter(range(1, 1000))
    placement = Placement(limit=100e-6, preempted=lambda: next(switches))
    for _ in range(Placement.WINDOW * 3):  # every slow store saw a new preemption
        placement.on_loop()
        placement.observe(0.01)
    assert placement.inline
    calm = Placement(limit=100e-6, preempted=never)
    for _ in range(Placement.WINDOW):
        calm.on_loop()
        calm.observe(0.01)
    assert not calm.inline


def test_involuntary_switches_counts_this_threads_preemptions() -> None:
    """A spinning process on this thread's core: the OS preempts us, and it shows."""
    import os
    import subprocess
    import sys
    import time

    from aiograb._store.sinks import involuntary_switches

    old = os.sched_getaffinity(0)
    cpu = min(old)
    hog = subprocess.Popen(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"]
    )
    try:
        os.sched_setaffinity(0, {cpu})  # this thread only
        first = involuntary_switches()
        ends = time.monotonic() + 5.0
        while involuntary_switches() == first and time.monotonic() < ends:
            sum(range(10_000))  # on the CPU, until the OS takes it away
        assert involuntary_switches() > first
    finally:
        hog.kill()
        hog.wait()
        os.sched_setaffinity(0, old)
