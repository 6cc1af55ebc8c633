"""Flags shared by the commands, and their translation into the library's values.

``add_request_options`` + ``request_config``: the flags of ``get`` and ``crawl``
that become ``Limits`` and ``RequestPolicy``. A new request option (a proxy, a CA
bundle, cookies, ...) goes in one of its groups, and its translation in
``request_config``: both commands get it, with the same help.

``add_output_options`` + ``summary_dict``/``write_summary_json``: the display
flags and the ``--summary-json`` file. ``HelpFormatter`` is the commands' help
layout. All of it is cheap to import: it runs when the parser is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from aiograb._cli.display import say
from aiograb._cli.network import add_network_options, network_from_args
from aiograb._core.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DISALLOWED_HEADER_DIRECTIVES,
    DEFAULT_MAX_BYTES,
    DEFAULT_PER_HOST,
    DEFAULT_USER_AGENT,
    DEFAULT_USER_AGENT_TOKEN,
    TRANSPORTS,
    Limits,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
)
from aiograb._core.stats import ExitCode, Summary

__all__ = [
    "EXIT_CODES_HELP",
    "HelpFormatter",
    "add_output_options",
    "add_request_options",
    "check_output_args",
    "parse_header",
    "parse_size",
    "print_summary",
    "request_config",
    "summary_dict",
    "summary_stream",
    "write_summary_json",
]

EXIT_CODES_HELP = (
    f"exit codes: {ExitCode.OK:d} all ok, {ExitCode.FAILED:d} some URLs failed, "
    f"{ExitCode.USAGE:d} usage/input error (also: OUT in use, a damaged journal, input "
    f"broken mid-stream), {ExitCode.OS_ERROR:d} file system refused (disk full or OUT "
    f"made read-only: fix it and run again; OUT removed during the run), "
    f"{ExitCode.INTERRUPTED:d} "
    "interrupted (Ctrl-C, SIGTERM, or SIGHUP unless under nohup)."
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; ``{journal}`` in them names the journal file.

    The name is looked up only when help is shown: the journal module is not light.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "{journal}" in text:
            from aiograb._store.journal import JOURNAL_NAME

            text = text.replace("{journal}", JOURNAL_NAME)
        return super()._fill_text(text, width, indent)


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


def add_request_options(p: argparse.ArgumentParser) -> None:
    """The ``Limits`` and ``RequestPolicy`` flags of ``get`` and ``crawl``."""
    _add_limits(p.add_argument_group("concurrency and politeness"))
    _add_policy(p.add_argument_group("request policy"))
    add_network_options(p)


def _add_limits(g: argparse._ArgumentGroup) -> None:
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
    g.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="",
        help="HTTP client: curl (default: libcurl on the same event loop) or aiohttp, "
        "e.g. --transport aiohttp; the environment variable AIOGRAB_TRANSPORT sets the default",
    )


def _add_policy(g: argparse._ArgumentGroup) -> None:
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
    g.add_argument(
        "--user-agent-token",
        default=DEFAULT_USER_AGENT_TOKEN,
        metavar="TOKEN",
        help="the product token robots rules name us by (RFC 9309): robots.txt groups "
        "(crawl) and 'X-Robots-Tag: aiograb: noai' (default %(default)s; "
        "e.g. --user-agent-token mybot)",
    )
    g.add_argument(
        "--disallowed-header-directives",
        default=",".join(DEFAULT_DISALLOWED_HEADER_DIRECTIVES),
        metavar="LIST",
        help="X-Robots-Tag directives (for all agents or for --user-agent-token) that "
        "forbid keeping a body: its row is x_robots_tag; '' honours none "
        "(default %(default)s; e.g. --disallowed-header-directives noai,noimageai)",
    )


def request_config(args: argparse.Namespace) -> tuple[Limits, RequestPolicy]:
    """The flags of ``add_request_options`` as the library's value objects.

    They validate themselves (``UsageError``, in the library's option names).
    """
    from aiograb._core.fdlimit import fit_to_fd_limit

    limits = Limits(
        concurrency=args.concurrency,
        per_host=args.per_host,
        rate=args.rate,
        transport=args.transport,
    )
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
        user_agent_token=args.user_agent_token,
        disallowed_header_directives=tuple(args.disallowed_header_directives.split(",")),
        network=network_from_args(args),
    )
    return limits, policy


def add_output_options(p: argparse.ArgumentParser) -> None:
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
    from aiograb._cli.logmode import add_log_options

    add_log_options(g)


def summary_dict(summary: Summary) -> dict[str, Any]:
    """A run's ``Summary`` as the JSON object of ``--summary-json``."""
    return {
        "out_dir": str(summary.out_dir),
        "manifest": str(summary.manifest),
        "manifest_written": summary.manifest_written,
        "journals_written_back": summary.journals_written_back,
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
        "input_read": summary.input_read,
        "processes": summary.processes,
        "io_threads": summary.io_threads,
        "files_by_io_pool": summary.files_by_io_pool,
        "part_errors": list(summary.part_errors),
        "exit_code": summary.exit_code,
        "input": dataclasses.asdict(summary.input) if summary.input else None,
        "input_error": summary.input_error,
        "storage_error": summary.storage_error,
        "storage_stop": summary.storage_stop,
        "folder_lost": summary.folder_lost,
    }


def write_summary_json(path: Path | None, data: dict[str, Any]) -> None:
    """Write ``data`` to ``--summary-json FILE`` when the flag was given (``-``: stdout)."""
    if path is None:
        return
    text = json.dumps(data, indent=2)
    if str(path) == "-":
        say(text, sys.stdout)
    else:
        from aiograb._store.atomic import write_text_whole

        write_text_whole(path, text + "\n")


def summary_stream(args: argparse.Namespace) -> TextIO:
    """Where the text summary goes: stdout, or stderr when stdout carries the JSON."""
    return sys.stderr if str(args.summary_json) == "-" else sys.stdout


def print_summary(args: argparse.Namespace, text: str, summary: Summary) -> None:
    """The text summary, then one line per way the run ended early (to stderr)."""
    say(text, summary_stream(args))
    for problem in (summary.input_error, summary.storage_error):
        if problem is not None:
            say(f"aiograb: error: {problem}")


def check_output_args(args: argparse.Namespace) -> None:
    """Check ``-o`` and ``--summary-json`` before anything is fetched: a typo in a
    path must not be found out after a whole run."""
    from aiograb._store.check import check_writable_file, ensure_output_folder

    ensure_output_folder(args.out)
    if args.summary_json is not None and str(args.summary_json) != "-":
        check_writable_file(args.summary_json, "--summary-json")
