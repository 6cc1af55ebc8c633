"""A shard the file system refuses is given up whole, and what points at it goes too:
its rows fail, and a duplicate of one of its images, attached later, is never recorded
as stored in a shard that is not there (nor in one that a later shard's number took)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aiograb._core.errors import WriteError
from aiograb._core.models import Outcome, Stored
from aiograb._images.outputs import Held, Sample, TarShards
from aiograb._store.journal import PendingRow


def _held(i: int) -> Held:
    return Held(PendingRow(i, f"k{i}", f"http://127.0.0.1:9/{i}.png"), Outcome(url=f"{i}"), f"k{i}")


def _sample(i: int) -> Sample:
    body = b"\x89PNG\r\n\x1a\n" + bytes([i]) * 100
    staged = Stored(size=len(body), sha256=hashlib.sha256(body).hexdigest(), body=body)
    return Sample(f"k{i}", staged, None, "png", "image/png", {"key": f"k{i}"})


def test_a_shard_that_cannot_be_renamed_fails_its_rows_and_its_duplicates(tmp_path: Path) -> None:
    recorded: list[Held] = []

    def commit(items: list[Held]) -> bool:
        recorded.extend(items)
        return True

    shards = TarShards(tmp_path, 2, commit, set())
    (tmp_path / "00000.tar").mkdir()  # where the full shard is renamed: EISDIR
    first = _held(1)
    assert shards.store(first, _sample(1)) == "00000.tar"
    with pytest.raises(WriteError, match="cannot complete"):
        shards.store(_held(2), _sample(2))  # full: the rename fails, the shard is given up
    assert [h.row.id for h in recorded] == [1]  # the other row fails, recorded at once
    assert not first.outcome.ok
    assert first.outcome.stored is None
    assert isinstance(first.outcome.error, WriteError)
    assert not list(tmp_path.glob("*.part"))

    duplicate = _held(3)  # same bytes as row 1, which was in the shard given up
    with pytest.raises(WriteError, match="cannot complete"):
        shards.attach("00000.tar", duplicate)
    assert duplicate not in recorded

    (tmp_path / "00000.tar").rmdir()
    assert shards.store(_held(4), _sample(4)) == "00001.tar"  # the next shard, a new name
    shards.store(_held(5), _sample(5))
    assert (tmp_path / "00001.tar").is_file()
    assert [h.row.id for h in recorded] == [1, 4, 5]
