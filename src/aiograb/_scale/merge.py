"""One manifest for a parted output: ``OUT/manifest.jsonl`` from the parts' journals."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aiograb._scale.plan import Plan
from aiograb._store.parts import merged_rows

__all__ = ["write_merged_manifest"]


def write_merged_manifest(plan: Plan, target: Path) -> int:
    """Rewrite ``target`` (OUT/manifest.jsonl) from the parts, atomically; return the rows."""
    tmp = target.with_name(target.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for record in merged_rows(plan.out):
            fh.write(json.dumps(record, ensure_ascii=False))
            fh.write("\n")
            n += 1
    os.replace(tmp, target)
    return n
