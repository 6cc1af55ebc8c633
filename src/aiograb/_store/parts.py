"""The layout of a parted output (``--procs``, ``--dask``) and its rows in input order.

``OUT/plan.json`` (the plan), ``OUT/parts/NNNNN/`` (one ordinary output each).

Each part's journal lists its rows by input line (``Journal.rows``); the
parts hold disjoint lines, so a k-way merge by line gives exactly the order a
one-process run writes. Paths are rewritten to be relative to OUT
(``parts/00003/ab/<key>.jpg``). Read only after the parts have finished.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from aiograb._store.journal import JOURNAL_NAME, Journal

__all__ = ["PARTS_DIR", "PLAN_NAME", "is_parted", "merged_rows"]

PLAN_NAME = "plan.json"
PARTS_DIR = "parts"


def is_parted(out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` is the output of a run with several parts (``--procs``, ``--dask``)."""
    return (Path(out) / PLAN_NAME).is_file() and (Path(out) / PARTS_DIR).is_dir()


def _part_rows(journal: Journal, prefix: str) -> Iterator[tuple[tuple[bool, int], dict[str, Any]]]:
    for record in journal.rows():
        if record.get("path"):
            record["path"] = f"{prefix}/{record['path']}"
        line = record.get("line")
        yield (line is None, line or 0), record


def merged_rows(out: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every row of every part, in input order, paths relative to ``out``."""
    root = Path(out) / PARTS_DIR
    with ExitStack() as stack:
        streams = []
        for part in sorted(p for p in root.iterdir() if (p / JOURNAL_NAME).is_file()):
            journal = Journal(part / JOURNAL_NAME, readonly=True)
            stack.callback(journal.close)
            streams.append(_part_rows(journal, f"{PARTS_DIR}/{part.name}"))
        for _, record in heapq.merge(*streams, key=lambda item: item[0]):
            yield record
