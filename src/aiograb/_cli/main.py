"""The ``aiograb`` command: a thin layer over the library.

Each command parses its flags into the library's value objects, calls one
library function, prints, and maps our exceptions to exit codes:
0 all ok · 1 finished, some URLs failed · 2 usage or input error ·
130 interrupted (resumable) · 70 internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from aiograb import __about__
from aiograb._cli.bench import add_bench_parser
from aiograb._cli.display import ProgressDisplay, format_summary
from aiograb._cli.images import (
    IMAGE_EXAMPLES,
    add_image_options,
    add_manifest_command,
    pipeline_from_args,
)
from aiograb._core.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_PER_HOST,
    DEFAULT_USER_AGENT,
    Limits,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
)
from aiograb._core.errors import UsageError
from aiograb._core.loop import run_stoppable
from aiograb._core.stats import Summary
from aiograb._store.journal import JOURNAL_NAME

__all__ = ["main"]

ENGINES = ("async", "threads", "sync")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130

_GET_EXAMPLES = f"""\
examples:
  aiograb get urls.txt -o images/
  aiograb get https://example.org/a.jpg https://example.org/b.png -o images/
  aiograb get urls.csv --url-column image_url -o images/ -c 1000 --per-host 32 --retries 3
  zcat urls.txt.gz | aiograb get - -o images/
  aiograb get urls.txt -o images/ --retry-failed      # after a run, retry only what failed

Run the same command again after a crash or Ctrl-C: it resumes, and nothing
already done is fetched again. Output: files under OUT/ab/<key>.<ext>,
OUT/manifest.jsonl (one line per distinct URL) and the journal OUT/{JOURNAL_NAME}.
exit codes: 0 all ok, 1 some URLs failed, 2 usage/input error, 130 interrupted.
"""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``10M`` -> 10485760; ``0`` -> 0 (no limit)."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500K, 20M, 1G)")
    power = " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * 1024**power)


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"header must be 'Name: value', not {text!r}")
    return name.strip(), value.strip()


def _add_request_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("concurrency and politeness")
    g.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="requests in flight at once, over all hosts (default %(default)s)",
    )
    g.add_argument(
        "--per-host",
        type=int,
        default=DEFAULT_PER_HOST,
        help="requests in flight per host; 0 = no limit (default %(default)s: polite to "
        "real sites; use 0 for your own servers)",
    )
    g.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="requests per second per host; 0 = no limit (e.g. --rate 5)",
    )
    g = p.add_argument_group("request policy")
    g.add_argument(
        "--retries",
        type=int,
        default=3,
        help="retries after connect errors, timeouts, resets, 408/429/5xx "
        "(exponential backoff with jitter; default %(default)s)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="deadline in seconds for one attempt, headers and body (default %(default)s)",
    )
    g.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to establish a connection (default %(default)s)",
    )
    g.add_argument(
        "--max-redirects",
        type=int,
        default=10,
        help="redirects to follow; loops are detected (default %(default)s)",
    )
    g.add_argument(
        "--max-bytes",
        type=parse_size,
        default=DEFAULT_MAX_BYTES,
        help="abort bodies larger than this, early (Content-Length) or while streaming, "
        "as too_large; e.g. 20M; 0 = no limit (default 100M)",
    )
    g.add_argument(
        "--accept",
        default="image",
        help="'image' (default: checked by Content-Type and magic bytes, so an HTML "
        "page is never saved as .jpg), 'any', or MIME types: image/png,image/jpeg",
    )
    g.add_argument(
        "-H",
        "--header",
        type=parse_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable)",
    )
    g.add_argument(
        "--user-agent", default=DEFAULT_USER_AGENT, help="User-Agent header (default names aiograb)"
    )


def _policy(args: argparse.Namespace) -> tuple[Limits, RequestPolicy]:
    from aiograb._core.fdlimit import fit_to_fd_limit

    limits = Limits(concurrency=args.concurrency, per_host=args.per_host, rate=args.rate)
    limits, warning = fit_to_fd_limit(limits)
    if warning is not None:  # "concurrency" is -c here
        print(f"aiograb: warning: {warning.replace('concurrency ', '-c ')}", file=sys.stderr)
    policy = RequestPolicy(
        timeouts=Timeouts(total=args.timeout, connect=args.connect_timeout),
        retry=RetryPolicy(retries=args.retries),
        max_redirects=args.max_redirects,
        max_bytes=args.max_bytes,
        accept=args.accept,
        headers=dict(args.header),
        user_agent=args.user_agent,
    )
    return limits, policy


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line plus a hint, not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


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
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser(
        "get",
        help="download a list of URLs to files plus a manifest",
        description="Download every URL of a list (txt, csv, tsv, jsonl, parquet, "
        "optionally .gz, or - for stdin) into a folder.",
        epilog=_GET_EXAMPLES + "\n" + IMAGE_EXAMPLES,
        formatter_class=fmt,
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
        choices=("txt", "csv", "tsv", "jsonl", "parquet"),
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
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="async",
        help="async (default): one event-loop thread; threads: a pool of -c threads with "
        "blocking urllib3; sync: one request at a time (for comparison, see 'aiograb bench')",
    )
    _add_request_options(p)
    add_image_options(p)
    _add_output_options(p)
    p.set_defaults(func=cmd_get)
    add_manifest_command(sub)

    from aiograb._cli.crawl import add_crawl_parser

    add_crawl_parser(sub, fmt)

    p = sub.add_parser(
        "serve",
        help="run the local test image server (tests, demo, bench)",
        description="Serve deterministic images and fault routes on loopback. "
        "See the README for its routes.",
        epilog="example:\n  aiograb serve --port 8080 --latency-ms 100",
        formatter_class=fmt,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    p.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default %(default)s)"
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay before every response, in ms (default 0)",
    )
    p.add_argument(
        "--bandwidth-kbps",
        type=float,
        default=0.0,
        help="pace every body at this many KB/s; 0 = unlimited (default)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the generated images (default 0)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "demo",
        help="start the local server and download thousands of images",
        description="Start the local image server in a subprocess with ~100 ms "
        "latency and download its images at high concurrency. "
        "Needs no network.",
        epilog="example:\n  aiograb demo -n 5000 -c 1000",
        formatter_class=fmt,
    )
    p.add_argument("-n", type=int, default=3000, help="images to download (default %(default)s)")
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=500,
        help="requests in flight (default %(default)s)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="server latency per response (default %(default)s)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("aiograb-demo"),
        help="output folder, emptied first if it holds an earlier demo (default %(default)s)",
    )
    _add_output_options(p)
    p.set_defaults(func=cmd_demo)
    add_bench_parser(sub, fmt)
    return parser


def _add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("display")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar, summary only")
    g.add_argument(
        "--summary-json",
        type=Path,
        metavar="FILE",
        help="also write the summary as JSON to FILE; - writes it to stdout "
        "(the text summary then goes to stderr)",
    )
    g.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")


def _summary_dict(summary: Summary) -> dict[str, Any]:
    return {
        "out_dir": str(summary.out_dir),
        "manifest": str(summary.manifest),
        "counts": summary.counts,
        "errors": summary.errors,
        "fetched": summary.fetched,
        "ok": summary.ok,
        "failed": summary.failed,
        "bytes": summary.bytes,
        "elapsed": summary.elapsed,
        "files_per_second": summary.files_per_second,
        "mb_per_second": summary.mb_per_second,
        "retries": summary.retries,
        "peak_threads": summary.peak_threads,
        "peak_rss_mb": summary.peak_rss_mb,
        "interrupted": summary.interrupted,
        "exit_code": summary.exit_code,
        "input": dataclasses.asdict(summary.input) if summary.input else None,
        "input_error": summary.input_error,
        "storage_error": summary.storage_error,
    }


def _tune_gc() -> None:
    # The CLI owns its process: move what start-up allocated out of the collector's
    # way, and collect young objects less often. A bulk download creates many
    # short-lived containers per file; measured -8% CPU (BENCHMARKS.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _run_download(
    args: argparse.Namespace,
    rows: Any,
    limits: Limits,
    policy: RequestPolicy,
    retry_failed: bool = False,
    engine: str = "async",
    expected: int | None = None,
    pipeline: Any = None,
) -> int:
    display = ProgressDisplay(enabled=not args.quiet and sys.stderr.isatty(), expected=expected)
    _tune_gc()
    with display:
        if engine == "async":
            summary = _run_async(args, rows, limits, policy, retry_failed, display, pipeline)
        else:
            summary = _run_blocking(args, rows, limits, policy, retry_failed, display, engine)
    print(format_summary(summary), flush=True, file=summary_stream(args))
    if summary.input_error is not None:
        print(f"aiograb: error: {summary.input_error}", file=sys.stderr)
    if summary.storage_error is not None:
        print(f"aiograb: error: {summary.storage_error}", file=sys.stderr)
    write_summary_json(args, _summary_dict(summary))
    return summary.exit_code


def check_output_args(args: argparse.Namespace) -> None:
    """Check ``-o`` and ``--summary-json`` before anything is fetched: a typo in a
    path must not be found out after a whole run."""
    from aiograb._store.check import check_writable_file, ensure_output_folder

    ensure_output_folder(args.out)
    if args.summary_json is not None and str(args.summary_json) != "-":
        check_writable_file(args.summary_json, "--summary-json")


def summary_stream(args: argparse.Namespace) -> Any:
    """Where the text summary goes: stdout, or stderr when stdout carries the JSON."""
    return sys.stderr if str(args.summary_json) == "-" else sys.stdout


def write_summary_json(args: argparse.Namespace, data: dict[str, Any]) -> None:
    if args.summary_json is None:
        return
    text = json.dumps(data, indent=2) + "\n"
    if str(args.summary_json) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        args.summary_json.write_text(text)


def _run_async(
    args: argparse.Namespace,
    rows: Any,
    limits: Limits,
    policy: RequestPolicy,
    retry_failed: bool,
    display: ProgressDisplay,
    pipeline: Any = None,
) -> Summary:
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
            pipeline=pipeline,
        ),
        use_uvloop=not args.no_uvloop,
    )


def _run_blocking(
    args: argparse.Namespace,
    rows: Any,
    limits: Limits,
    policy: RequestPolicy,
    retry_failed: bool,
    display: ProgressDisplay,
    engine: str,
) -> Summary:
    import threading

    from aiograb._get.blocking import run_get_blocking

    stop = threading.Event()

    def on_signal(sig: int, _frame: object) -> None:
        signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.default_int_handler)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
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
    )


def cmd_get(args: argparse.Namespace) -> int:
    check_output_args(args)
    limits, policy = _policy(args)
    extra = [c.strip() for c in args.save_columns.split(",") if c.strip()]
    pipeline = pipeline_from_args(args, extra)
    if args.caption_column and args.caption_column not in extra:
        extra.append(args.caption_column)
    rows, source = _get_inputs(args, extra)
    expected = None if args.quiet or not sys.stderr.isatty() else estimate_rows(source)
    return _run_download(
        args,
        rows,
        limits,
        policy,
        retry_failed=args.retry_failed,
        engine=args.engine,
        expected=expected,
        pipeline=pipeline,
    )


def _get_inputs(args: argparse.Namespace, extra: list[str]) -> tuple[Any, str]:
    """The rows of ``get``'s inputs: one list file (or -), or URLs given as arguments."""
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


def cmd_serve(args: argparse.Namespace) -> int:
    from aiograb.testing import ServerConfig, serve

    serve(
        args.host,
        args.port,
        ServerConfig(
            latency_ms=args.latency_ms, bandwidth_kbps=args.bandwidth_kbps, seed=args.seed
        ),
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from aiograb.testing import ServerConfig, ServerProcess

    out: Path = args.out
    if out.exists():
        if not (out / JOURNAL_NAME).exists():
            raise UsageError(f"{out} exists and is not an earlier demo's output; pick another -o")
        shutil.rmtree(out)
    exts = ("jpg", "png", "webp", "gif")
    limits = Limits(concurrency=args.concurrency, per_host=0)
    with ServerProcess(ServerConfig(latency_ms=args.latency_ms), warm=True) as server:
        print(
            f"local image server: {server.base_url} ({args.latency_ms:g} ms latency per "
            f"response); downloading {args.n} images, {args.concurrency} in flight, "
            "on one event-loop thread",
            flush=True,
        )
        urls = (f"{server.base_url}/img/{i}.{exts[i % 4]}" for i in range(args.n))
        code = _run_download(args, urls, limits, RequestPolicy(), expected=args.n)
    print(f"files: {out}/  manifest: {out / 'manifest.jsonl'}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"aiograb: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("aiograb: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("AIOGRAB_DEBUG"):
            raise
        print(
            f"aiograb: internal error: {type(exc).__name__}: {exc} "
            "(set AIOGRAB_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
