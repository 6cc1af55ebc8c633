"""The ``aiograb`` console script's entry point; the CLI lives in ``aiograb._cli``."""

from aiograb._cli.main import main

__all__ = ["main"]
