"""The scale-out flags of ``aiograb get``: --procs, --dask, --parts, --io-threads."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from aiograb._core.config import DEFAULT_IO_THREADS, Limits, RequestPolicy
from aiograb._core.errors import UsageError
from aiograb._core.stats import Progress, Summary

__all__ = ["SCALE_EXAMPLES", "add_scale_options", "run_scaled", "scale_wanted"]

SCALE_EXAMPLES = """\
every core, then a Dask cluster (the input is planned once into parts by host,
OUT/parts/NNNNN/ each; OUT/manifest.jsonl is the merged manifest; rerun to resume):
  aiograb get urls.txt -o images/ --procs auto -c 2000
  aiograb get urls.txt -o /shared/images/ --dask local:4
  aiograb get urls.txt -o /shared/images/ --dask tcp://scheduler:8786
"""


def _procs(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--procs takes a number or auto, not {text!r}") from None
    if not 1 <= n <= 1024:
        raise argparse.ArgumentTypeError("--procs must be between 1 and 1024")
    return n


def add_scale_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scale-out")
    g.add_argument(
        "--procs",
        type=_procs,
        default=1,
        metavar="N|auto",
        help="event-loop processes on this machine; auto = the cores (default 1). "
        "-c is the total over all of them",
    )
    g.add_argument(
        "--dask",
        metavar="local:N|tcp://HOST:PORT",
        help="run the parts as Dask tasks: local:N starts a LocalCluster of N worker "
        "processes; tcp://... uses a running scheduler. OUT must be on a file system "
        "every worker sees. Needs pip install 'aiograb[dask]'",
    )
    g.add_argument(
        "--parts",
        type=int,
        default=None,
        help="parts to plan the input into (first run only; default: one per process)",
    )
    g.add_argument(
        "--io-threads",
        type=int,
        default=DEFAULT_IO_THREADS,
        help="threads that create, write and rename the files when storing them on the "
        "event loop is measured slow, so the loop never waits for the disk (on a fast one "
        "it stores them itself: cheaper); bodies are handed over in batches. 0 = always "
        "on the loop (default %(default)s; raise it on a network file system, where each "
        "file is a round trip), e.g. --io-threads 8",
    )


def scale_wanted(args: argparse.Namespace) -> bool:
    """``--procs``/``--dask`` given, or OUT holds a planned run (resumed with any ``--procs``)."""
    from aiograb._store.parts import is_parted

    if not hasattr(args, "procs"):
        return False
    return args.procs != 1 or bool(args.dask) or is_parted(args.out)


def run_scaled(
    args: argparse.Namespace,
    rows: Callable[[], Iterable[Any]],
    limits: Limits,
    policy: RequestPolicy,
    retry_failed: bool,
    on_progress: Callable[[Progress], None],
    pipeline: Any,
) -> Summary:
    """``--procs`` or ``--dask``: plan (first run), run the parts, merge."""
    from aiograb._scale.procs import default_procs, process_pool, run_parted

    if args.engine != "async":
        raise UsageError("--procs and --dask need --engine async")
    if args.procs != 1 and args.dask:
        raise UsageError("give --procs or --dask, not both")
    common: dict[str, Any] = dict(
        parts=args.parts,
        limits=limits,
        policy=policy,
        retry_failed=retry_failed,
        io_threads=args.io_threads,
        pipeline=pipeline,
        on_progress=on_progress,
        use_uvloop=not args.no_uvloop,
    )
    if args.dask:
        from aiograb._http.default import transport_name
        from aiograb._scale.dask import open_dask, parse_dask

        with open_dask(parse_dask(args.dask), transport=transport_name(limits)) as dask:
            # A LocalCluster's workers are this machine's processes: no canary.
            return run_parted(
                rows,
                args.out,
                dask.executor,
                width=dask.width,
                probe=False if dask.local else dask.probe,
                own_processes=dask.local,
                **common,
            )
    from aiograb._http.default import transport_name

    procs = default_procs() if args.procs == "auto" else args.procs
    with process_pool(procs, transport_name(limits)) as pool:
        return run_parted(
            rows, args.out, pool, width=procs, own_processes=True, probe=False, **common
        )
