"""CPU work on image bytes: verify, filter, resize, re-encode, perceptual hash.

This runs in worker processes (see ``workers.py``), never on the event loop.
It imports only the standard library and Pillow, so a worker loads this one
file by path instead of the whole ``aiograb`` package (less start-up time and
memory per worker). Requests and results are plain dicts and bytes, so they
pickle the same whatever name this module was loaded under.

``process(data, options)`` is the whole pipeline for one image::

    open (header only) ── checks: pixels, min size, aspect ratio
      └─ decode (JPEG: DCT-domain downscale first, ``draft``) ── EXIF orientation
          └─ to RGB/RGBA ── resize (``reduce`` fast path, then Lanczos) ── encode

A failure is an ``ImageFailure`` with a stable code: ``corrupt_image``,
``too_many_pixels``, ``too_small``, ``bad_aspect_ratio``, ``not_raster`` (SVG,
HTML, ...), ``unsupported_image`` (an image format Pillow cannot read).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ENCODINGS",
    "RESIZE_MODES",
    "ImageFailure",
    "ImageOptions",
    "Processed",
    "dhash",
    "handle",
    "process",
]

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb threshold (~ 9459 x 9459)
RESIZE_MODES = ("no", "keep-ratio", "keep-ratio-largest", "center-crop", "border")
ENCODINGS = ("jpg", "png", "webp")
_PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SOURCE_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "MPO": "jpg"}
# Raster formats we decode; trying only these keeps Pillow's rarer parsers off untrusted bytes.
_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "MPO", "AVIF")
# Images in formats we do not decode (HEIC/AVIF are "ftyp" boxes at offset 4): JPEG XL.
_OTHER_IMAGE_MAGIC = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL ")
# JPEG: decode at 1/2, 1/4 or 1/8 scale in the DCT domain while the result stays at least
# this many times the target size, then finish with a Lanczos resize (exact enough: see
# BENCHMARKS.md, "draft" vs full decode).
_DRAFT_MARGIN = 1.0
_REDUCING_GAP = 3.0
# Downscaling after the DCT-domain step: Pillow's antialiased bilinear (a triangle filter
# as wide as the scale factor) costs what BOX does and is within 1 dB of a Lanczos resize
# after JPEG encoding, where BOX loses 2 dB (benchmarks/bench_resize.py reports PSNR).
# Upscaling uses Lanczos, as img2dataset does.
_DOWNSCALE = "BILINEAR"
_UPSCALE = "LANCZOS"


def _import_pil() -> None:
    # Pillow is imported on first use, so the parent (which only builds ImageOptions)
    # never loads it: the event-loop process does no image work at all.
    global Image, ImageOps, UnidentifiedImageError
    from PIL import Image, ImageOps, UnidentifiedImageError


class ImageFailure(Exception):
    """An image that cannot be used; ``code`` is the manifest's error class."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _usage_error(message: str) -> Exception:
    # Imported here, not at the top: a worker loads this file without the package,
    # and it only ever sees options that were validated in the parent already.
    from aiograb._core.errors import UsageError

    return UsageError(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageOptions:
    """What to check and how to transform each image.

    >>> ImageOptions(resize="center-crop", image_size=256, encode="jpg", quality=90)

    ``encode=None`` keeps the downloaded bytes unless a resize needs new ones
    (then JPEG). ``skip_reencode`` keeps them also when a resize turns out to
    change nothing and the format is already the one asked for.
    """

    verify: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_size: int = 0
    max_aspect_ratio: float = 0.0  # 0 = no limit
    resize: str = "no"
    image_size: int = 256
    encode: str | None = None
    quality: int = 95
    skip_reencode: bool = False
    phash: bool = False
    resize_only_if_bigger: bool = False  # an image within image_size keeps its size

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise _usage_error(f"resize must be one of {', '.join(RESIZE_MODES)}")
        if self.encode is not None and self.encode not in ENCODINGS:
            raise _usage_error(f"encode must be one of {', '.join(ENCODINGS)}")
        if self.image_size < 1:
            raise _usage_error("image_size must be >= 1")
        if not 1 <= self.quality <= 100:
            raise _usage_error("quality must be between 1 and 100")
        if self.max_pixels < 1 or self.min_size < 0 or self.max_aspect_ratio < 0:
            raise _usage_error("max_pixels must be >= 1; min_size, max_aspect_ratio >= 0")

    @property
    def transforms(self) -> bool:
        """True when the stored bytes may differ from the downloaded ones."""
        return self.resize != "no" or self.encode is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Processed:
    data: bytes | None  # None: keep the downloaded bytes as they are
    ext: str  # extension of what is stored
    info: dict[str, Any]


def _open(data: bytes | str, opts: ImageOptions) -> Image.Image:
    source: Any = data if isinstance(data, str) else io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd EXIF/ICC; errors still raise
            img = Image.open(source, formats=_formats())
    except UnidentifiedImageError:
        head = _head(data)
        if b"<svg" in head.lower() or head.lstrip().startswith((b"<?xml", b"<")):
            raise ImageFailure("not_raster", "not a raster image (SVG, HTML or XML)") from None
        if head[4:8] == b"ftyp" or head.startswith(_OTHER_IMAGE_MAGIC):
            raise ImageFailure("unsupported_image", "image format not supported") from None
        raise ImageFailure("corrupt_image", "not a decodable image") from None
    except Image.DecompressionBombError as exc:
        raise ImageFailure("too_many_pixels", str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageFailure("corrupt_image", f"bad image header: {exc}") from None
    w, h = img.size
    if w * h > opts.max_pixels:
        raise ImageFailure(
            "too_many_pixels", f"{w}x{h} = {w * h} pixels > max_pixels={opts.max_pixels}"
        )
    if w < 1 or h < 1:
        raise ImageFailure("corrupt_image", f"image has no pixels ({w}x{h})")
    if min(w, h) < opts.min_size:
        raise ImageFailure("too_small", f"{w}x{h}: smaller than min_size={opts.min_size}")
    ratio = max(w, h) / min(w, h)
    if opts.max_aspect_ratio and ratio > opts.max_aspect_ratio:
        raise ImageFailure(
            "bad_aspect_ratio", f"{w}x{h}: aspect ratio {ratio:.2f} > {opts.max_aspect_ratio:g}"
        )
    return img


def _formats() -> tuple[str, ...]:
    Image.init()  # registers every plugin; only those we want and have are tried
    return tuple(f for f in _FORMATS if f in Image.OPEN)


def _head(data: bytes | str) -> bytes:
    if isinstance(data, bytes):
        return data[:512]
    with open(data, "rb") as fh:
        return fh.read(512)


def _load(img: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
    except Image.DecompressionBombError as exc:
        raise ImageFailure("too_many_pixels", str(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageFailure("corrupt_image", f"cannot decode: {exc}") from None


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block is no reason to drop the image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def target_size(mode: str, w: int, h: int, size: int) -> tuple[int, int]:
    """The (width, height) an image of w x h ends at under ``mode`` (img2dataset's rules)."""
    if mode == "no":
        return w, h
    if mode in ("center-crop", "border"):
        return size, size
    scale = size / (min(w, h) if mode == "keep-ratio" else max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _scaled_size(mode: str, w: int, h: int, size: int) -> tuple[int, int]:
    """The size the whole picture is scaled to before a crop or a border."""
    if mode == "center-crop":
        return target_size("keep-ratio", w, h, size)
    if mode == "border":
        return target_size("keep-ratio-largest", w, h, size)
    return target_size(mode, w, h, size)


def _to_rgb(img: Image.Image, keep_alpha: bool) -> Image.Image:
    """RGB (or RGBA when the source has alpha and the output can hold it)."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16-bit and float grey: scale to 8 bits instead of clipping at 255.
        img = img.convert("I") if mode != "F" else img
        img = img.point(lambda v: v * (1 / 256) if mode != "F" else v).convert("L")
        mode = "L"
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa")
    if has_alpha:
        rgba = img.convert("RGBA")
        if keep_alpha:
            return rgba
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img if mode == "RGB" else img.convert("RGB")


def _resize(img: Image.Image, mode: str, size: int) -> Image.Image:
    w, h = img.size
    scaled = _scaled_size(mode, w, h, size)
    down = scaled[0] * scaled[1] < w * h
    resample = getattr(Image.Resampling, _DOWNSCALE if down else _UPSCALE)
    if mode == "center-crop":
        # Resize only the centred square that survives the crop: one pass, no waste.
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        box = (left, top, left + side, top + side)
        return img.resize((size, size), resample, box=box, reducing_gap=_REDUCING_GAP)
    if scaled != (w, h):
        img = img.resize(scaled, resample, reducing_gap=_REDUCING_GAP)
    if mode == "border":  # white, as img2dataset pads
        canvas = Image.new(img.mode, (size, size), (255,) * len(img.getbands()))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        return canvas
    return img


def _encode(img: Image.Image, ext: str, quality: int) -> bytes:
    out = io.BytesIO()
    if ext == "jpg":
        img.save(out, "JPEG", quality=quality)
    elif ext == "webp":
        img.save(out, "WEBP", quality=quality)
    else:
        img.save(out, "PNG", compress_level=6)
    return out.getvalue()


def dhash(img: Image.Image) -> str:
    """A 64-bit difference hash (perceptual): 16 hex digits; near pictures differ in few bits."""
    _import_pil()
    small = img.convert("L").resize((9, 8), Image.Resampling.BOX)
    px = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{bits:016x}"


def _bigger(opts: ImageOptions, w: int, h: int) -> bool:
    """Whether the resize would shrink the image (img2dataset's test): the side it
    sets (the smaller one for keep-ratio and center-crop, else the larger) is over size."""
    side = min(w, h) if opts.resize in ("keep-ratio", "center-crop") else max(w, h)
    return side > opts.image_size


def process(data: bytes | str, opts: ImageOptions) -> Processed:
    """Check and transform one image (``data``: the bytes, or a path to them)."""
    _import_pil()
    img = _open(data, opts)
    src_format = img.format or ""
    info: dict[str, Any] = {"format": src_format.lower(), "mode": img.mode}
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        info["frames"] = frames  # animated: the first frame is what gets processed
    w, h = img.size
    if opts.resize_only_if_bigger and opts.resize != "no" and not _bigger(opts, w, h):
        opts = replace(opts, resize="no")  # small already: kept as it is (img2dataset's option)
    if not opts.transforms:
        if opts.verify or opts.phash:
            _load(img)
        if opts.phash:
            info["phash"] = dhash(img)
        info.update(width=w, height=h)
        return Processed(None, _SOURCE_EXT.get(src_format, src_format.lower()), info)

    orientation = _orientation(img)
    ow, oh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    final = target_size(opts.resize, ow, oh, opts.image_size)
    ext = opts.encode or "jpg"
    if (
        opts.skip_reencode
        and final == (ow, oh)
        and orientation == 1
        and _SOURCE_EXT.get(src_format) == ext
        and frames == 1
    ):
        if opts.verify or opts.phash:
            _load(img)
        if opts.phash:
            info["phash"] = dhash(img)
        info.update(width=w, height=h)
        return Processed(None, ext, info)

    if src_format == "JPEG" and opts.resize != "no":
        sw, sh = _scaled_size(opts.resize, ow, oh, opts.image_size)
        if orientation in (5, 6, 7, 8):
            sw, sh = sh, sw
        want = (int(sw * _DRAFT_MARGIN), int(sh * _DRAFT_MARGIN))
        if want[0] <= w and want[1] <= h:
            img.draft("RGB", want)
    _load(img)
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    img = _to_rgb(img, keep_alpha=ext != "jpg")
    if opts.resize != "no":
        img = _resize(img, opts.resize, opts.image_size)
    if opts.phash:
        info["phash"] = dhash(img)
    data_out = _encode(img, ext, opts.quality)
    info.update(width=img.width, height=img.height, original_width=ow, original_height=oh)
    # format and mode describe what is stored; the downloaded image's go under original_*.
    info.update(
        original_format=info["format"],
        original_mode=info["mode"],
        format=_PIL_FORMAT[ext].lower(),
        mode=img.mode,
    )
    return Processed(data_out, ext, info)


# -- the worker side of the pool: plain dicts in, plain dicts out ------------

_OPTIONS: dict[tuple[tuple[str, Any], ...], ImageOptions] = {}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Process one pool request ``{"data" | "path", "options"}``; never raises."""
    key = tuple(sorted(request["options"].items()))
    opts = _OPTIONS.get(key)
    if opts is None:
        opts = _OPTIONS[key] = ImageOptions(**request["options"])
    source = request.get("data")
    if source is None:
        source = os.fspath(request["path"])
    try:
        result = process(source, opts)
    except ImageFailure as exc:
        return {"ok": False, "code": exc.code, "message": str(exc)}
    except MemoryError:
        return {"ok": False, "code": "too_many_pixels", "message": "out of memory decoding"}
    except Exception as exc:  # a Pillow bug on hostile bytes fails this image only
        return {"ok": False, "code": "corrupt_image", "message": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "data": result.data, "ext": result.ext, "info": result.info}
