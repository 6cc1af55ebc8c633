"""The image options of ``aiograb get`` and ``aiograb crawl``, and their ``ImagePipeline``.

This module only maps flags to ``ImageOptions`` and ``ImagePipeline``; the pipeline
(and the engine behind it) is imported only when a flag asks for it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from aiograb._core.errors import UsageError
from aiograb._images.defaults import (
    DEDUP_MODES,
    DEFAULT_PHASH_DISTANCE,
    DEFAULT_SHARD_SIZE,
    OUTPUT_FORMATS,
)
from aiograb._images.work import DEFAULT_MAX_PIXELS, ENCODINGS, RESIZE_MODES, ImageOptions

if TYPE_CHECKING:
    from aiograb._images.pipeline import ImagePipeline

__all__ = ["IMAGE_EXAMPLES", "add_image_options", "pipeline_from_args"]

IMAGE_EXAMPLES = """\
image datasets (CPU work runs in --workers processes, never on the event loop):
  aiograb get urls.parquet --url-column url --caption-column caption -o ds/ \\
      --resize keep-ratio --image-size 256 --encode jpg --quality 90 --min-size 64 \\
      --format webdataset --shard-size 10000 --workers 2
  aiograb get urls.txt -o out/ --verify --dedup perceptual
"""


def add_image_options(
    p: argparse.ArgumentParser, *, output_flag: str = "--format", captions: bool = True
) -> None:
    """The image pipeline's flags. ``aiograb crawl`` names the output ``--output-format``
    (its ``--format`` is the graph's) and has no input columns for captions."""
    g = p.add_argument_group(
        "images (any of these turns the image pipeline on)",
        "Bad images end as manifest rows: corrupt_image, too_many_pixels, too_small, "
        "bad_aspect_ratio, not_raster, unsupported_image, worker_crashed.",
    )
    g.add_argument("--verify", action="store_true", help="decode every image fully")
    g.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help=f"refuse larger images (decompression bombs; default {DEFAULT_MAX_PIXELS})",
    )
    g.add_argument(
        "--min-size", type=int, default=None, help="refuse images whose short side is smaller"
    )
    g.add_argument(
        "--max-aspect-ratio", type=float, default=None, help="refuse images longer than this ratio"
    )
    g.add_argument("--resize", choices=RESIZE_MODES, default=None, help="resize mode (default no)")
    g.add_argument(
        "--resize-only-if-bigger",
        action="store_true",
        help="with --resize: keep images no larger than --image-size as they are "
        "(img2dataset's option)",
    )
    g.add_argument(
        "--image-size", type=int, default=None, help="target size in pixels (default 256)"
    )
    g.add_argument(
        "--encode", choices=ENCODINGS, default=None, help="re-encode to this format (resize: jpg)"
    )
    g.add_argument("--quality", type=int, default=None, help="jpg/webp quality (default 95)")
    g.add_argument(
        "--skip-reencode",
        action="store_true",
        help="keep the downloaded bytes when no change is needed",
    )
    g.add_argument(
        "--dedup",
        choices=DEDUP_MODES,
        default=None,
        help="content (default with the pipeline): same bytes stored once; perceptual: "
        "also mark near-duplicates (phash)",
    )
    g.add_argument(
        "--phash-distance",
        type=int,
        default=DEFAULT_PHASH_DISTANCE,
        help="bits two perceptual hashes may differ by to be near-duplicates (default %(default)s)",
    )
    g.add_argument(
        output_flag,
        dest="image_format",
        choices=OUTPUT_FORMATS,
        default=None,
        help="output (default files)",
    )
    g.add_argument(
        "--shard-size",
        type=int,
        default=DEFAULT_SHARD_SIZE,
        help="samples per webdataset/parquet shard (default %(default)s)",
    )
    g.add_argument(
        "--workers", type=int, default=None, help="image worker processes (default: cores)"
    )
    if captions:
        g.add_argument(
            "--caption-column", default=None, help="input column written as {key}.txt (webdataset)"
        )


def pipeline_from_args(args: argparse.Namespace, extra: list[str]) -> ImagePipeline | None:
    """The pipeline the flags ask for, or None when no image flag is given."""
    wanted = (
        args.verify
        or args.skip_reencode
        or any(
            getattr(args, name, None) is not None
            for name in (
                "max_pixels", "min_size", "max_aspect_ratio", "resize", "image_size", "encode",
                "quality", "dedup", "image_format", "workers", "caption_column",
            )
        )
    )  # fmt: skip
    if not wanted:
        return None
    if getattr(args, "engine", "async") != "async":
        raise UsageError(
            "the image pipeline (--verify, --resize, --format ...) needs --engine async"
        )
    from aiograb._images.pipeline import ImagePipeline  # the engine: only when asked for

    given = {
        name: value
        for name in (
            "max_pixels", "min_size", "max_aspect_ratio", "resize", "image_size", "quality"
        )
        if (value := getattr(args, name)) is not None
    }  # fmt: skip
    options = ImageOptions(
        verify=args.verify,
        encode=args.encode,
        skip_reencode=args.skip_reencode,
        resize_only_if_bigger=args.resize_only_if_bigger,
        **given,
    )
    return ImagePipeline(
        options,
        workers=args.workers,
        output=args.image_format or "files",
        shard_size=args.shard_size,
        dedup=args.dedup or "content",
        phash_distance=args.phash_distance,
        caption_column=getattr(args, "caption_column", None),
        extra_columns=extra,
    )
