"""Issue 10, item 17: the blocking API called inside a running loop (Jupyter) is one clear error."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import pytest

import aiograb
from aiograb import UsageError
from tests.helpers import run


@pytest.mark.parametrize(
    ("call", "async_name"),
    [
        (lambda out: aiograb.download(["http://127.0.0.1:9/a.png"], out), "download_async"),
        (lambda out: aiograb.crawl(["http://127.0.0.1:9/"], out), "crawl_async"),
    ],
)
def test_blocking_call_inside_a_running_loop(tmp_path: Path, call: object, async_name: str) -> None:
    async def notebook_cell() -> None:
        with pytest.raises(UsageError, match=rf"await aiograb\.{async_name}\(") as info:
            call(tmp_path / "out")  # type: ignore[operator]
        assert "running event loop" in str(info.value)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(notebook_cell())
        gc.collect()  # a coroutine never awaited would warn when collected
    assert [str(w.message) for w in caught] == []
    assert not (tmp_path / "out").exists()  # nothing started
