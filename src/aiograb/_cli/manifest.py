"""``aiograb manifest``: export a run's manifest (its journal) to Parquet, CSV or JSONL."""

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
        help="export a run's manifest (from its journal) to Parquet, CSV or JSONL",
        description="Write every row of OUT's journal (the manifest) to a file whose "
        "extension names the format: .parquet (needs pyarrow: pip install "
        "'aiograb[parquet]'), .csv or .jsonl. Also rebuilds a lost manifest.",
        epilog="examples:\n  aiograb manifest out/ --to manifest.parquet\n"
        "  aiograb manifest out/ --to manifest.csv\n"
        "  aiograb manifest out/ --to out/manifest.jsonl   # rebuild the manifest",
        formatter_class=HelpFormatter,
    )
    p.add_argument("out", type=Path, help="an output folder of 'aiograb get'")
    p.add_argument(
        "--to", type=Path, required=True, help="the file to write: .parquet, .csv or .jsonl"
    )
    p.set_defaults(func=cmd_manifest)


def cmd_manifest(args: argparse.Namespace) -> int:
    from aiograb._store.export import export_manifest

    n = export_manifest(args.out, args.to)
    print(f"{n} rows -> {args.to}")
    return int(ExitCode.OK)
