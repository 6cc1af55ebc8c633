"""``aiograb manifest``: export a run's manifest (its journal) to Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aiograb._cli.options import HelpFormatter
from aiograb._core.stats import ExitCode

__all__ = ["add_parser", "cmd_manifest"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "manifest",
        help="export a run's manifest (from its journal) to Parquet",
        description="Write every row of OUT's journal (the manifest) to a Parquet file. "
        "Needs pyarrow: pip install 'aiograb[parquet]'.",
        epilog="example:\n  aiograb manifest out/ --to manifest.parquet",
        formatter_class=HelpFormatter,
    )
    p.add_argument("out", type=Path, help="an output folder of 'aiograb get'")
    p.add_argument("--to", type=Path, required=True, help="the Parquet file to write")
    p.set_defaults(func=cmd_manifest)


def cmd_manifest(args: argparse.Namespace) -> int:
    from aiograb._store.export import export_manifest

    n = export_manifest(args.out, args.to)
    print(f"{n} rows -> {args.to}")
    return int(ExitCode.OK)
