"""The CPU work on one image (what runs in the worker processes), on real images."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from aiograb import ImageOptions, UsageError
from aiograb._images.work import ImageFailure, dhash, handle, process, target_size
from aiograb.testing import image_bytes


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def photo(w: int = 640, h: int = 480) -> Image.Image:
    return Image.open(io.BytesIO(image_bytes(5, "png", size="small"))).convert("RGB").resize((w, h))


def decoded(data: bytes | None) -> Image.Image:
    assert data is not None
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def failure(data: bytes, options: ImageOptions) -> str:
    with pytest.raises(ImageFailure) as info:
        process(data, options)
    return info.value.code


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("no", (640, 480)),
        ("keep-ratio", (341, 256)),
        ("keep-ratio-largest", (256, 192)),
        ("center-crop", (256, 256)),
        ("border", (256, 256)),
    ],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_resize_modes_give_the_right_size_and_mode(
    mode: str, expected: tuple[int, int], fmt: str
) -> None:
    data = encode(photo(), fmt)
    result = process(data, ImageOptions(resize=mode, image_size=256, encode="jpg", quality=90))
    img = decoded(result.data)
    assert img.size == expected
    assert img.mode == "RGB"
    assert img.format == "JPEG"
    assert (result.info["width"], result.info["height"]) == expected
    assert (result.info["original_width"], result.info["original_height"]) == (640, 480)


def test_border_pads_with_white_and_keeps_the_picture_centred() -> None:
    black = encode(Image.new("RGB", (400, 200), (0, 0, 0)), "PNG")
    img = decoded(process(black, ImageOptions(resize="border", image_size=100, encode="png")).data)
    assert img.size == (100, 100)
    assert img.getpixel((50, 5)) == (255, 255, 255)  # the border, above the picture
    assert img.getpixel((50, 50)) == (0, 0, 0)


def test_jpeg_draft_path_matches_a_full_decode_closely() -> None:
    data = image_bytes(3, "jpg", size="large")
    fast = decoded(process(data, ImageOptions(resize="keep-ratio", encode="png")).data)
    full_img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = target_size("keep-ratio", *full_img.size, 256)
    full = full_img.resize((w, h), Image.Resampling.LANCZOS)
    assert fast.size == full.size
    diff = [abs(a - b) for a, b in zip(fast.tobytes(), full.tobytes(), strict=True)]
    assert sum(diff) / len(diff) < 3.0  # mean error in 8-bit levels


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(photo(300, 100), "JPEG", exif=exif.tobytes())
    result = process(data, ImageOptions(resize="keep-ratio-largest", image_size=150, encode="jpg"))
    assert decoded(result.data).size == (50, 150)
    assert (result.info["original_width"], result.info["original_height"]) == (100, 300)


@pytest.mark.parametrize(
    ("make", "source_mode"),
    [
        (lambda: encode(photo().convert("CMYK"), "JPEG"), "CMYK"),
        (lambda: encode(Image.new("I;16", (300, 200), 40000), "PNG"), "I;16"),
        (lambda: encode(photo().convert("P"), "PNG"), "P"),
        (lambda: encode(photo().convert("LA"), "PNG"), "LA"),
        (lambda: encode(photo().convert("L"), "JPEG"), "L"),
    ],
)
def test_unusual_modes_end_as_rgb(make: object, source_mode: str) -> None:
    assert callable(make)
    result = process(make(), ImageOptions(resize="center-crop", image_size=64, encode="jpg"))
    img = decoded(result.data)
    assert (img.size, img.mode) == ((64, 64), "RGB")
    # info describes what is stored; the downloaded image's mode is original_mode (issue 10)
    assert (result.info["mode"], result.info["original_mode"]) == ("RGB", source_mode)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    data = encode(Image.new("I;16", (64, 64), 32768), "PNG")
    img = decoded(
        process(data, ImageOptions(resize="keep-ratio", image_size=32, encode="png")).data
    )
    assert 120 <= img.getpixel((10, 10))[0] <= 135  # half of 65535 -> about 128, not 255


def test_transparency_goes_on_white_for_jpeg_and_stays_for_png() -> None:
    clear = Image.new("RGBA", (80, 80), (255, 0, 0, 0))
    data = encode(clear, "PNG")
    as_jpg = decoded(process(data, ImageOptions(resize="keep-ratio", image_size=40)).data)
    assert as_jpg.mode == "RGB"
    assert all(v > 245 for v in as_jpg.getpixel((20, 20)))
    options = ImageOptions(resize="keep-ratio", image_size=40, encode="png")
    as_png = decoded(process(data, options).data)
    assert as_png.mode == "RGBA"
    assert as_png.getpixel((20, 20))[3] == 0


def test_animated_gif_keeps_the_first_frame_and_says_how_many() -> None:
    frames = [Image.new("RGB", (50, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    result = process(out.getvalue(), ImageOptions(resize="keep-ratio", image_size=20))
    assert result.info["frames"] == 3
    red, green, _ = decoded(result.data).getpixel((10, 10))
    assert red > 200 > green


def test_verify_only_keeps_the_bytes_and_reports_the_image() -> None:
    data = image_bytes(2, "webp")
    result = process(data, ImageOptions(verify=True))
    assert result.data is None
    assert result.ext == "webp"
    width, height = Image.open(io.BytesIO(data)).size
    assert result.info == {"format": "webp", "mode": "RGB", "width": width, "height": height}


def test_skip_reencode_keeps_an_image_that_needs_no_change() -> None:
    data = encode(photo(256, 256), "JPEG")
    options = ImageOptions(resize="center-crop", image_size=256, encode="jpg", skip_reencode=True)
    assert process(data, options).data is None
    assert process(data, ImageOptions(resize="center-crop", encode="jpg")).data is not None
    assert process(encode(photo(256, 256), "PNG"), options).data is not None  # format differs


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_bad_images_get_precise_classes() -> None:
    jpg = image_bytes(1, "jpg", size="medium")
    verify = ImageOptions(verify=True)
    assert failure(jpg[: len(jpg) // 2], verify) == "corrupt_image"
    assert failure(b"\xff\xd8\xff\xe0" + b"\x00" * 200, verify) == "corrupt_image"
    assert failure(b"", verify) == "corrupt_image"
    assert failure(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', verify) == (
        "not_raster"
    )
    assert failure(b"\x00\x00\x00\x1cftypheic" + b"\x00" * 64, verify) == "unsupported_image"
    assert failure(png_header_only(60_000, 60_000), verify) == "too_many_pixels"
    assert failure(png_header_only(1_000_000, 1_000_000), verify) == "too_many_pixels"
    assert failure(jpg, ImageOptions(max_pixels=1000)) == "too_many_pixels"
    small = encode(photo(50, 300), "PNG")
    assert failure(small, ImageOptions(min_size=64)) == "too_small"
    assert failure(small, ImageOptions(max_aspect_ratio=3)) == "bad_aspect_ratio"
    assert process(small, ImageOptions(min_size=50, max_aspect_ratio=6)).data is None


def test_handle_turns_failures_into_results() -> None:
    options = ImageOptions(verify=True).to_dict()
    assert handle({"options": options, "data": b"nope"})["code"] == "corrupt_image"
    ok = handle({"options": options, "data": image_bytes(0, "png")})
    assert ok["ok"]
    assert ok["info"]["format"] == "png"


def test_dhash_sees_near_duplicates_and_tells_different_pictures_apart() -> None:
    img = photo()
    near = Image.open(io.BytesIO(encode(img.resize((320, 240)), "JPEG", quality=60)))
    other = Image.open(io.BytesIO(image_bytes(9, "png")))
    h, h_near, h_other = (int(dhash(x), 16) for x in (img, near, other))
    assert (h ^ h_near).bit_count() <= 3
    assert (h ^ h_other).bit_count() > 10


def test_options_are_validated() -> None:
    with pytest.raises(UsageError, match="resize"):
        ImageOptions(resize="stretch")
    with pytest.raises(UsageError, match="encode"):
        ImageOptions(encode="bmp")
    with pytest.raises(UsageError, match="quality"):
        ImageOptions(quality=0)
