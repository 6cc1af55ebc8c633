"""Issue 10, item 23 (part): --resize-only-if-bigger keeps small images as they are."""

from __future__ import annotations

import io

from PIL import Image

from aiograb import ImageOptions
from aiograb._images.work import process


def _png(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_small_images_are_kept_big_ones_resized() -> None:
    opts = ImageOptions(resize="keep-ratio", image_size=256, resize_only_if_bigger=True)
    small = process(_png(100, 80), opts)
    assert small.data is None  # the downloaded bytes, untouched
    assert (small.info["width"], small.info["height"]) == (100, 80)
    big = process(_png(1024, 512), opts)
    assert big.data is not None
    with Image.open(io.BytesIO(big.data)) as img:
        assert img.size == (512, 256)  # keep-ratio: the smaller side becomes image_size
    wide = process(_png(300, 100), opts)  # the smaller side is within image_size: kept
    assert wide.data is None


def test_without_the_option_small_images_are_upscaled() -> None:
    plain = process(_png(100, 80), ImageOptions(resize="keep-ratio", image_size=256))
    assert plain.data is not None
    with Image.open(io.BytesIO(plain.data)) as img:
        assert img.size == (320, 256)


def test_small_images_are_still_reencoded_when_asked() -> None:
    opts = ImageOptions(
        resize="center-crop", image_size=256, encode="webp", resize_only_if_bigger=True
    )
    out = process(_png(64, 64), opts)
    assert (out.ext, out.info["width"]) == ("webp", 64)
