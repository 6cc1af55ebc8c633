"""Files written whole or not at all: the manifest, its exports, the crawl's graph, the
plan of ``--procs``, ``--summary-json``. Each goes through a temporary file beside its
target, renamed over it when complete and removed when anything fails (a full disk, a
folder made read-only), so no reader ever sees half a file and nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["replacing", "write_text_whole"]


@contextlib.contextmanager
def replacing(target: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """The temporary path to write ``target`` through (``target`` + ``suffix``): renamed
    over ``target`` when the block ends, removed when it raises."""
    final = Path(target)
    tmp = final.with_name(final.name + suffix)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_whole(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` whole (``replacing``); a path that is not a regular
    file (``/dev/stdout``, a FIFO) is written as it is, never replaced, and a symbolic
    link keeps pointing where it did. An OSError names ``path``."""
    try:
        try:
            mode: int | None = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            return
        where = path if mode is None else os.path.realpath(path)
        with replacing(where, f".{os.getpid()}.tmp") as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None
