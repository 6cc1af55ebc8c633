"""One manifest for a parted output: ``OUT/manifest.jsonl`` from the parts' manifests.

A part that finished in this run has just rewritten its own ``manifest.jsonl``
from its journal (``RunState.close``, in the part's process, beside the other
parts), with the encoder the merged manifest uses. So the merge copies lines
instead of decoding rows and encoding them again: a k-way merge by input line
number, read from the head of each line, with the path prefixed by the part's
folder (``ab/<key>.jpg`` -> ``parts/00003/ab/<key>.jpg``). The output is the
same, byte for byte, as encoding the journals' rows here (``fresh=()``), at a
tenth of the cost (BENCHMARKS.md, "#11 scale-out, second pass").

A part whose task failed, or that could not write its manifest (a full disk),
has none to trust: its rows come from its journal, read-only. Either way the
merge streams: one line per part is in memory, whatever the size of the run.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Collection, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

from aiograb._scale.plan import PARTS_DIR, Plan
from aiograb._store.atomic import replacing
from aiograb._store.journal import JOURNAL_NAME, Journal, manifest_line

__all__ = ["MANIFEST_NAME", "merged_lines", "write_merged_manifest"]

MANIFEST_NAME = "manifest.jsonl"

# The head of a manifest line: its first fields are url, line, state and path, in
# that order (journal.MANIFEST_FIELDS). The URL is a JSON string, so a quote in it
# is escaped and cannot end the match early. A line that does not match (none
# should) takes the slow path: decoded, rewritten, encoded again.
_HEAD = re.compile(
    r'\{"url": "[^"\\]*(?:\\.[^"\\]*)*", "line": (-?\d+|null), "state": "\w*", "path": ("?)'
)

_Keyed = tuple[bool, int, int, str]  # (no line, line, part order, text): heapq.merge's order


def _slow(text: str, prefix: str, order: int) -> _Keyed:
    record = json.loads(text)
    if record.get("path"):
        record["path"] = f"{prefix}/{record['path']}"
    line = record.get("line")
    return line is None, line or 0, order, manifest_line(record)


def _keyed(lines: Iterable[str], prefix: str, order: int) -> Iterator[_Keyed]:
    """A part's manifest lines, sorted by input line, with their merge keys."""
    head = _HEAD.match
    prefix = prefix + "/"
    for text in lines:
        m = head(text)
        if m is None:
            yield _slow(text, prefix[:-1], order)
            continue
        line, quote = m.groups()
        end = m.end()
        if quote and text[end] != '"':  # a path (not null, not ""): prefix it
            text = text[:end] + prefix + text[end:]
        if line == "null":
            yield True, 0, order, text
        else:
            yield False, int(line), order, text


def _sources(plan: Plan, fresh: Collection[int], stack: ExitStack) -> list[Iterator[_Keyed]]:
    streams = []
    for order, part in enumerate(plan.parts):
        folder = plan.part_dir(part)
        if not (folder / JOURNAL_NAME).is_file():
            continue  # never started: no rows yet
        lines: Iterable[str]
        if part.index in fresh and (folder / MANIFEST_NAME).is_file():
            lines = stack.enter_context(
                (folder / MANIFEST_NAME).open(encoding="utf-8", newline="\n")
            )
        else:
            journal = Journal(folder / JOURNAL_NAME, readonly=True)
            stack.callback(journal.close)
            lines = journal.manifest_lines()
        streams.append(_keyed(lines, f"{PARTS_DIR}/{part.name}", order))
    return streams


def merged_lines(plan: Plan, *, fresh: Collection[int] = ()) -> Iterator[str]:
    """The merged manifest's lines in input order. ``fresh``: the indexes of the parts
    whose own manifest matches their journal (their task ended in this run)."""
    with ExitStack() as stack:
        for *_, text in heapq.merge(*_sources(plan, fresh, stack)):
            yield text


def write_merged_manifest(plan: Plan, target: Path, *, fresh: Collection[int] = ()) -> int:
    """Rewrite ``target`` (OUT/manifest.jsonl) from the parts, atomically; return the rows."""
    n = 0
    with replacing(target) as tmp, tmp.open("w", encoding="utf-8") as fh:
        write = fh.write
        for text in merged_lines(plan, fresh=fresh):
            write(text)
            n += 1
    return n
