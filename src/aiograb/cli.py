"""The ``aiograb`` console script's entry point; the CLI lives in ``aiograb._cli``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``aiograb`` command (``sys.argv[1:]`` by default); return its exit code.
    A run in parts starts its fork server before the CLI is imported (``_cli/early.py``)."""
    from aiograb._cli.early import start_workers

    start_workers(sys.argv[1:] if argv is None else argv)
    from aiograb._cli.main import main as run

    return run(argv)
