"""The ``aiograb`` command: the root parser, and where exceptions become exit codes.

Each command lives in its own module (``get``, ``crawl``, ``manifest``, ``serve``
for ``serve`` and ``demo``, ``bench``) as ``add_parser(sub)`` plus the function it
sets as ``func``: it parses its flags into the library's value objects, calls the
public library, prints, and returns an exit code. This module alone turns
exceptions into a one-line message and an exit code (``ExitCode``, defined once in
``_core/stats.py`` because ``Summary.exit_code`` gives the same codes):

    0 all ok · 1 finished, some URLs failed · 2 usage or input error ·
    74 the file system refused (output folder, disk full, port in use) ·
    130 interrupted (resumable) · 70 internal error, i.e. a bug in aiograb.

``AIOGRAB_DEBUG=1`` shows the traceback of an internal error instead.

Start-up stays light: building the parser imports no engine, aiohttp, Pillow or
rich (commands import what they run inside their function), so ``--version`` and
``--help`` answer at once.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from aiograb import __about__
from aiograb._cli import bench, crawl, get, manifest, serve
from aiograb._cli.display import say
from aiograb._core.errors import UsageError
from aiograb._core.stats import ExitCode

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line plus a hint, not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aiograb",
        description="Download and crawl images (and any files) at very high concurrency "
        "from one event-loop thread.",
        epilog="Run 'aiograb COMMAND --help' for a command's options. "
        "Try 'aiograb demo' first: it needs no network.",
    )
    parser.add_argument("--version", action="version", version=f"aiograb {__about__.__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    # The order of `aiograb --help`.
    get.add_parser(sub)
    manifest.add_parser(sub)
    crawl.add_parser(sub)
    serve.add_serve_parser(sub)
    serve.add_demo_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``aiograb`` command; returns its exit code (``ExitCode``)."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        from aiograb._cli.words import as_flags  # the library's option names, as flags

        return _fail(ExitCode.USAGE, f"error: {as_flags(str(exc))}")
    except KeyboardInterrupt:
        return _fail(ExitCode.INTERRUPTED, "interrupted")
    except OSError as exc:  # not ours to fix: a folder, a disk, a port
        if os.environ.get("AIOGRAB_DEBUG"):
            raise
        return _fail(ExitCode.OS_ERROR, f"error: {_os_message(exc)}")
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("AIOGRAB_DEBUG"):
            raise
        return _fail(
            ExitCode.INTERNAL,
            f"internal error: {type(exc).__name__}: {exc} (set AIOGRAB_DEBUG=1 for a traceback)",
        )
    return code


def _fail(code: ExitCode, message: str) -> int:
    say(f"aiograb: {message}")
    return int(code)


def _os_message(exc: OSError) -> str:
    """``[Errno 13] Permission denied: 'out'`` -> ``out: permission denied``."""
    # Not every OSError has a text strerror (TimeoutError subclasses pass other arguments).
    reason = exc.strerror.lower() if isinstance(exc.strerror, str) and exc.strerror else str(exc)
    names = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # nothing was lost: say what to do
        reason += ": free some space, then run the same command again"
    return f"{' -> '.join(names)}: {reason}" if names else reason


if __name__ == "__main__":
    sys.exit(main())
