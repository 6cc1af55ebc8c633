"""The IO pool of the files output: files stored from IO threads, every guarantee kept."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

import pytest

from aiograb import Limits, RequestPolicy, RetryPolicy, Timeouts, UsageError
from aiograb._core.stats import os_threads
from aiograb._core.urls import parse_url, url_key
from aiograb._get.download import run_get
from aiograb._get.sources import InputRow
from aiograb._store.sinks import SPILL_BYTES, FileSink
from aiograb.testing import RunningServer, image_bytes
from tests.helpers import by_url, run

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=30, connect=10))


def test_commit_returns_at_once_and_settle_waits_for_the_rename(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, io_threads=1)
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


def test_the_loop_thread_does_no_file_io(server: RunningServer, tmp_path: Path) -> None:
    """With a pool, every file of the output is renamed into place off the loop's thread."""
    import os

    loop_thread = threading.get_ident()
    renames: list[tuple[int, str]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:  # observes the real call, which still happens
        renames.append((threading.get_ident(), str(dst)))
        real_replace(src, dst)

    rows = [InputRow(line=i, url=server.url(f"/img/{i}.png")) for i in range(1, 21)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", replace)
        summary = asyncio.run(
            run_get(rows, tmp_path, limits=Limits(concurrency=8, per_host=0), io_threads=2)
        )
    assert summary.counts == {"ok": 20}
    files = [(t, dst) for t, dst in renames if dst.endswith(".png")]
    assert len(files) == 20
    assert all(t != loop_thread for t, _ in files)
