"""The image pipeline's choices and defaults, as plain constants.

Apart from ``pipeline.py`` so that the CLI can build its parser (choices, help
texts) without importing the engine behind the pipeline.
"""

from __future__ import annotations

__all__ = ["DEDUP_MODES", "DEFAULT_PHASH_DISTANCE", "DEFAULT_SHARD_SIZE", "OUTPUT_FORMATS"]

DEDUP_MODES = ("none", "content", "perceptual")
OUTPUT_FORMATS = ("files", "webdataset", "parquet")
DEFAULT_SHARD_SIZE = 10_000
DEFAULT_PHASH_DISTANCE = 3
