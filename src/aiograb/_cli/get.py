"""``aiograb get``: its flags, and the call into ``download_async`` (or a blocking engine).

``run_download`` (progress bar, run, summary) is shared with ``aiograb demo``.
New request options go in ``options.add_request_options``; options only ``get``
has (input, engine) go in ``add_parser`` below.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiograb._cli.display import ProgressDisplay, format_summary
from aiograb._cli.images import IMAGE_EXAMPLES, add_image_options, pipeline_from_args
from aiograb._cli.network import NETWORK_EXAMPLES
from aiograb._cli.options import (
    EXIT_CODES_HELP,
    HelpFormatter,
    add_output_options,
    add_request_options,
    check_output_args,
    print_summary,
    request_config,
    summary_dict,
    write_summary_json,
)
from aiograb._cli.scale import SCALE_EXAMPLES, add_scale_options, run_scaled, scale_wanted
from aiograb._core.config import DEFAULT_IO_THREADS, ENGINES, Limits, RequestPolicy
from aiograb._get.sources import FORMATS

if TYPE_CHECKING:
    from aiograb._core.stats import Summary
    from aiograb._images.pipeline import ImagePipeline

__all__ = ["add_parser", "cmd_get", "estimate_rows", "run_download"]

_EXAMPLES = f"""\
examples:
  aiograb get urls.txt -o images/
  aiograb get https://example.org/a.jpg https://example.org/b.png -o images/
  aiograb get urls.csv --url-column image_url -o images/ -c 1000 --per-host 32 --retries 3
  zcat urls.txt.gz | aiograb get - -o images/
  aiograb get urls.txt -o images/ --retry-failed      # after a run, retry only what failed

Run the same command again after a crash, Ctrl-C or a lost terminal: it resumes, and nothing
already done is fetched again. Output: files under OUT/ab/<key>.<ext>,
OUT/manifest.jsonl (one line per distinct URL) and the journal OUT/{{journal}}.
{EXIT_CODES_HELP}
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "get",
        help="download a list of URLs to files plus a manifest",
        description="Download every URL of a list (txt, csv, tsv, jsonl, parquet, "
        "optionally .gz, or - for stdin) into a folder.",
        epilog=_EXAMPLES + "\n" + IMAGE_EXAMPLES + "\n" + NETWORK_EXAMPLES + "\n" + SCALE_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "input",
        nargs="+",
        help="URL list file, - for stdin, or one or more URLs (https://host/a.jpg)",
    )
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    g = p.add_argument_group("input")
    g.add_argument(
        "--url-column",
        help="column/key holding the URLs (csv, tsv, jsonl, parquet; "
        "default: url, then image_url, then the only column)",
    )
    g.add_argument(
        "--input-format",
        choices=FORMATS,
        help="force the input format (default: from the extension)",
    )
    g.add_argument(
        "--save-columns",
        default="",
        help="comma-separated extra columns to carry into the manifest, e.g. caption",
    )
    g.add_argument(
        "--retry-failed", action="store_true", help="also retry rows that failed in earlier runs"
    )
    g.add_argument(
        "--verify-hash",
        metavar="COLUMN[:sha256|md5]",
        help="check each body against the hash in this input column (as img2dataset "
        "does); a mismatch is a hash_mismatch row, e.g. --verify-hash sha256 or "
        "--verify-hash md5sum:md5",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="async",
        help="async (default): one event-loop thread; threads: a pool of -c threads with "
        "blocking urllib3; sync: one request at a time (for comparison, see 'aiograb bench')",
    )
    add_request_options(p)
    add_image_options(p)
    add_output_options(p)
    add_scale_options(p)
    p.set_defaults(func=cmd_get)


def cmd_get(args: argparse.Namespace) -> int:
    check_output_args(args)
    limits, policy = request_config(args)
    extra = [c.strip() for c in args.save_columns.split(",") if c.strip()]
    pipeline = pipeline_from_args(args, extra)
    if args.caption_column and args.caption_column not in extra:
        extra.append(args.caption_column)
    if args.verify_hash:
        from aiograb._core.errors import UsageError
        from aiograb._get.api import parse_verify_hash

        checked = parse_verify_hash(args.verify_hash)
        if args.engine != "async" or pipeline is not None:
            raise UsageError("--verify-hash needs the async engine and no image options")
        if checked is not None and checked[0] not in extra:
            extra.append(checked[0])
    rows, source = _inputs(args, extra)
    expected = None if args.quiet or not sys.stderr.isatty() else estimate_rows(source)
    return run_download(
        args,
        rows,
        limits,
        policy,
        retry_failed=args.retry_failed,
        engine=args.engine,
        expected=expected,
        pipeline=pipeline,
    )


def _inputs(args: argparse.Namespace, extra: list[str]) -> tuple[Iterable[Any], str]:
    """The rows of ``get``'s inputs: one list file (or -), or URLs given as arguments."""
    from aiograb._core.errors import UsageError
    from aiograb._get.sources import is_url_argument, open_source, url_arguments

    inputs: list[str] = args.input
    urls = [arg for arg in inputs if is_url_argument(arg)]
    if urls:
        if len(urls) != len(inputs):
            raise UsageError("give either one URL list file or URLs as arguments, not both")
        if args.url_column or extra or args.input_format:
            raise UsageError("URLs given as arguments have no columns or format")
        return url_arguments(urls), "-"
    if len(inputs) > 1:
        raise UsageError(
            f"give one URL list file, not {len(inputs)} (URLs as arguments start with https://)"
        )
    rows = open_source(
        inputs[0], url_column=args.url_column, extra_columns=extra, fmt=args.input_format
    )
    return rows, inputs[0]


def estimate_rows(source: str) -> int | None:
    """Lines in a plain text input (for the progress bar's ETA), or None when it would cost."""
    path = Path(source)
    if source == "-" or path.suffix in (".gz", ".parquet", ".pq") or not path.is_file():
        return None
    if path.stat().st_size > 2 << 30:
        return None
    lines = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
    return lines


def run_download(
    args: argparse.Namespace,
    rows: Iterable[Any],
    limits: Limits,
    policy: RequestPolicy,
    *,
    retry_failed: bool = False,
    engine: str = "async",
    expected: int | None = None,
    pipeline: ImagePipeline | None = None,
) -> int:
    """Download ``rows`` into ``args.out`` with a progress bar; print the summary.

    Reads the display flags of ``options.add_output_options`` from ``args``.
    """
    from aiograb._cli.logmode import progress_log

    display = ProgressDisplay(
        enabled=not args.quiet and sys.stderr.isatty(),
        expected=expected,
        log=progress_log(args, expected),
    )
    _tune_gc()
    with display:
        if scale_wanted(args):
            summary = run_scaled(
                args, lambda: rows, limits, policy, retry_failed, display.update, pipeline
            )
        elif engine == "async":
            summary = _run_async(args, rows, limits, policy, retry_failed, display, pipeline)
        else:
            summary = _run_blocking(args, rows, limits, policy, retry_failed, display, engine)
    print_summary(args, format_summary(summary), summary)
    write_summary_json(args.summary_json, summary_dict(summary))
    return summary.exit_code


def _tune_gc() -> None:
    # The CLI owns its process: move what start-up allocated out of the collector's
    # way, and collect young objects less often. A bulk download creates many
    # short-lived containers per file; measured -8% CPU (BENCHMARKS.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_async(
    args: argparse.Namespace,
    rows: Iterable[Any],
    limits: Limits,
    policy: RequestPolicy,
    retry_failed: bool,
    display: ProgressDisplay,
    pipeline: ImagePipeline | None,
) -> Summary:
    from aiograb._core.loop import run_stoppable
    from aiograb._get.api import download_async

    return run_stoppable(
        lambda stop: download_async(
            rows,
            args.out,
            limits=limits,
            policy=policy,
            retry_failed=retry_failed,
            stop=stop,
            on_progress=display.update,
            on_outcome=display.outcome,
            pipeline=pipeline,
            verify_hash=getattr(args, "verify_hash", None),  # demo has no such flag
            io_threads=getattr(args, "io_threads", DEFAULT_IO_THREADS),
        ),
        use_uvloop=not args.no_uvloop,
    )


def _run_blocking(
    args: argparse.Namespace,
    rows: Iterable[Any],
    limits: Limits,
    policy: RequestPolicy,
    retry_failed: bool,
    display: ProgressDisplay,
    engine: str,
) -> Summary:
    import threading

    from aiograb._core.loop import stop_signals
    from aiograb._get.blocking import run_get_blocking

    stop = threading.Event()

    def on_signal(sig: int, _frame: object) -> None:
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        stop.set()

    for sig in stop_signals():
        signal.signal(sig, on_signal)
    return run_get_blocking(
        rows,
        args.out,
        engine=engine,
        limits=limits,
        policy=policy,
        retry_failed=retry_failed,
        stop=stop,
        on_progress=display.update,
        on_outcome=display.outcome,
    )
