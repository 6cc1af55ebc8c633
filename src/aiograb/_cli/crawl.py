"""``aiograb crawl``: its flags, and the call into ``crawl_async``.

Request options are shared with ``get`` (``options.add_request_options``); the
scope and keep flags below become ``CrawlOptions``, the image flags an ``ImagePipeline``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiograb._cli.display import ProgressDisplay, format_crawl_summary
from aiograb._cli.images import add_image_options, pipeline_from_args
from aiograb._cli.network import NETWORK_EXAMPLES
from aiograb._cli.options import (
    EXIT_CODES_HELP,
    HelpFormatter,
    add_output_options,
    add_request_options,
    check_output_args,
    parse_size,
    print_summary,
    request_config,
    summary_dict,
    write_summary_json,
)
from aiograb._crawl.options import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_LINKS_PER_PAGE,
    DEFAULT_MAX_PAGES_PER_HOST,
    DEFAULT_MAX_URL_LENGTH,
    DEFAULT_PARSE_TIMEOUT,
    SCOPES,
    CrawlOptions,
)

__all__ = ["add_parser", "cmd_crawl"]

_EXAMPLES = f"""\
examples:
  aiograb crawl https://example.org/gallery/ -o out/   # same site: follow links, save images
  aiograb crawl seeds.txt -o out/ --depth 3 --max-pages 50000 \\
      --include '/photos/' --exclude '\\?sort='
  aiograb crawl https://example.org/ -o out/ --pages-only --format jsonl   # just the graph
  aiograb crawl https://example.org/ -o out/ --image-scope domain \
      --image-exclude '/thumbs/'   # images from the site's own hosts only, no thumbnails

Run the same command again after a crash or Ctrl-C: it resumes from the journal,
and no page already done is fetched again. Output: images as in 'aiograb get'
(OUT/ab/<key>.<ext>), OUT/manifest.jsonl (every page, image and skipped link with
its class: out_of_scope, robots_disallowed, nofollow, depth_limit, ...) and
OUT/pages.jsonl (page -> links, page -> images with alt text).
robots.txt is obeyed (Crawl-delay included) unless --ignore-robots; links to
loopback, private or link-local addresses are refused (blocked_address) unless a
seed is on such an address or --allow-private is given.
{EXIT_CODES_HELP}
"""
_NETWORK_EXAMPLES = NETWORK_EXAMPLES.replace("aiograb get urls.txt", "aiograb crawl URL")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "crawl",
        help="crawl pages from seeds and download every image they show",
        description="Crawl pages from seed URLs (or files of seed URLs), following links "
        "within scope, and download every image the pages show.",
        epilog=_EXAMPLES + "\n" + _NETWORK_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("seeds", nargs="+", help="seed URLs, or files of seed URLs (txt/csv/jsonl)")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    g = p.add_argument_group("scope")
    g.add_argument(
        "--scope",
        choices=SCOPES,
        default="domain",
        help="follow pages on the seeds' hosts, registrable domains (default), or any",
    )
    g.add_argument(
        "--depth",
        type=int,
        default=DEFAULT_MAX_DEPTH,
        help="link hops from a seed (default %(default)s; 0 = the seeds only)",
    )
    g.add_argument("--max-pages", type=int, default=0, help="pages in all (default: no limit)")
    g.add_argument(
        "--max-pages-per-host",
        type=int,
        default=DEFAULT_MAX_PAGES_PER_HOST,
        help="pages per host, a guard against traps (default %(default)s)",
    )
    g.add_argument(
        "--max-url-length",
        type=int,
        default=DEFAULT_MAX_URL_LENGTH,
        help="longer URLs are skipped (url_too_long; default %(default)s)",
    )
    g.add_argument(
        "--max-links-per-page",
        type=int,
        default=DEFAULT_MAX_LINKS_PER_PAGE,
        help="links and images one page, stylesheet or sitemap may add; the rest is one "
        "links_cut row (default %(default)s; e.g. --max-links-per-page 5000)",
    )
    g.add_argument(
        "--max-page-bytes",
        type=parse_size,
        default="10M",
        help="larger pages are not read (too_large; default 10M)",
    )
    g.add_argument(
        "--parse-off-loop-bytes",
        type=parse_size,
        default="64K",
        help="larger pages, stylesheets and sitemaps are parsed in a worker process "
        "(default 64K; 0 = all of them; e.g. --parse-off-loop-bytes 1M)",
    )
    g.add_argument(
        "--parse-timeout",
        type=float,
        default=DEFAULT_PARSE_TIMEOUT,
        metavar="SECONDS",
        help="a page parsed off the loop that takes longer is a parse_timeout row "
        "(default %(default)s; e.g. --parse-timeout 10)",
    )
    g.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="REGEX",
        help="follow only page URLs matching one of these (repeatable)",
    )
    g.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="never follow page URLs matching one of these (repeatable)",
    )
    g.add_argument(
        "--follow-nofollow",
        action="store_true",
        help="also follow rel=nofollow links, and links of meta robots nofollow pages",
    )
    g.add_argument(
        "--sitemaps",
        action="store_true",
        help="also seed from the Sitemap: lines of each site's robots.txt",
    )
    g.add_argument(
        "--ignore-robots", action="store_true", help="do not obey robots.txt (the summary says so)"
    )
    g.add_argument(
        "--image-scope",
        choices=SCOPES,
        default="any",
        help="fetch images from the seeds' hosts, registrable domains, or any host"
        " (default: any, as sites serve images from CDNs)",
    )
    g.add_argument(
        "--image-include",
        action="append",
        default=[],
        metavar="REGEX",
        help="fetch only image URLs matching one of these (repeatable), e.g. '\\.jpe?g$'",
    )
    g.add_argument(
        "--image-exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="never fetch image URLs matching one of these (repeatable), e.g. '/thumbs/'",
    )
    g.add_argument(
        "--allow-private",
        action="store_true",
        help="allow links to loopback, private and link-local addresses",
    )
    g = p.add_argument_group("what to keep")
    g.add_argument(
        "--all-sizes", action="store_true", help="every srcset candidate, not only the largest"
    )
    g.add_argument("--css", action="store_true", help="fetch linked stylesheets for their images")
    g.add_argument("--data-uris", action="store_true", help="save images inlined as data: URIs")
    g.add_argument(
        "--pages-only",
        action="store_true",
        help="crawl pages and write the graph; download no image",
    )
    g.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        default="jsonl",
        help="graph export: pages.jsonl (default), or graph.csv with one edge a line",
    )
    add_request_options(p)
    add_image_options(p, output_flag="--output-format", captions=False)
    p.add_argument(
        "--caption-from",
        choices=("alt",),
        default=None,
        help="write each image's alt text as its caption ({key}.txt in webdataset "
        "shards, the caption column of parquet ones), e.g. --caption-from alt",
    )
    add_output_options(p)
    p.set_defaults(func=cmd_crawl)


def _seeds(args: list[str]) -> Iterator[str]:
    """Each argument is a seed URL, or a file (or - for stdin) listing seed URLs."""
    from aiograb._core.errors import InputError
    from aiograb._get.sources import open_source

    for arg in args:
        if arg == "-" or Path(arg).exists():
            for row in open_source(arg):
                yield row.url
        elif "://" in arg:
            yield arg
        else:
            raise InputError(f"{arg}: no such file, and not a URL (http://... or https://...)")


def cmd_crawl(args: argparse.Namespace) -> int:
    from aiograb._core.loop import run_stoppable
    from aiograb._crawl.api import crawl_async

    check_output_args(args)
    limits, policy = request_config(args)
    options = _crawl_options(args)
    seeds = list(_seeds(args.seeds))  # reads the files now: a missing one is a usage error
    # An image row of a crawl carries the page it was found on and its alt text.
    args.caption_column = "alt" if args.caption_from == "alt" else None
    pipeline = pipeline_from_args(args, [])
    from aiograb._cli.logmode import progress_log

    display = ProgressDisplay(
        enabled=not args.quiet and sys.stderr.isatty(), log=progress_log(args)
    )
    with display:
        result = run_stoppable(
            lambda stop: crawl_async(
                seeds,
                args.out,
                options=options,
                limits=limits,
                policy=policy,
                stop=stop,
                on_progress=display.update,
                pipeline=pipeline,
            ),
            use_uvloop=not args.no_uvloop,
        )
    print_summary(args, format_crawl_summary(result), result.summary)
    data = summary_dict(result.summary)
    data.update(kinds=result.kinds, robots=result.robots, graph=str(result.graph))
    data["graph_written"] = result.graph_written
    write_summary_json(args.summary_json, data)
    return result.exit_code


def _crawl_options(args: argparse.Namespace) -> CrawlOptions:
    return CrawlOptions(
        scope=args.scope,
        max_depth=args.depth,
        max_pages=args.max_pages,
        max_pages_per_host=args.max_pages_per_host,
        max_url_length=args.max_url_length,
        max_links_per_page=args.max_links_per_page,
        max_page_bytes=args.max_page_bytes,
        parse_off_loop_bytes=args.parse_off_loop_bytes,
        parse_timeout=args.parse_timeout,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        follow_nofollow=args.follow_nofollow,
        obey_robots=not args.ignore_robots,
        allow_private=args.allow_private,
        sitemaps=args.sitemaps,
        css=args.css,
        data_uris=args.data_uris,
        all_sizes=args.all_sizes,
        pages_only=args.pages_only,
        graph_format=args.format,
        image_scope=args.image_scope,
        image_include=tuple(args.image_include),
        image_exclude=tuple(args.image_exclude),
    )
