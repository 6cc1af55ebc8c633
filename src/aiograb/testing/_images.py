"""Deterministic, real images (and non-image bytes) for the test server.

Every picture is made with Pillow from ``random.Random`` seeded by
``(seed, size, pool index)``, so the same arguments always give the same bytes
within one Pillow version. The pool index is ``n % POOL_SIZE``: the server can
serve tens of thousands of distinct URLs while Pillow draws at most
``POOL_SIZE`` pictures per (format, size, seed); encoded bodies are cached.

Sizes (body size in bytes, for every format; dimensions vary by index):

=========  ==================  =======================================
size       body                look
=========  ==================  =======================================
thumb      6 – 30 KB           80–300 px a side (median ~14 KB: web thumbnails)
small      10 KiB – 50 KB      120–400 px a side, shapes on a gradient
medium     100 – 500 KB        500–1000 px a side
large      1 – 3 MB            1400–2600 px a side, soft, photo-like
=========  ==================  =======================================

The dimensions are a starting point: when an encoding lands outside its size
window the picture is redrawn at a scaled size (at most a few times), so each
format may have its own dimensions for the same index.

Example::

    >>> from aiograb.testing import image_bytes
    >>> image_bytes(7, "png")[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import functools
import io
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "EXTENSIONS",
    "POOL_SIZE",
    "SIZES",
    "content_type",
    "file_bytes",
    "image_bytes",
    "warm_cache",
]

POOL_SIZE = 64
"""How many distinct pictures exist per (format, size, seed)."""

_CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}
EXTENSIONS: tuple[str, ...] = tuple(_CONTENT_TYPES)
"""The image extensions that :func:`image_bytes` can make."""


@dataclass(frozen=True, slots=True)
class _SizeClass:
    side: tuple[int, int]  # starting width/height range in pixels
    accept: tuple[int, int]  # body size window in bytes
    target: tuple[int, int]  # body size aimed at, drawn per index
    noise: float  # amplitude of the grain; grain is what keeps bodies from compressing to nothing
    blur: float  # soften shapes (large pictures look more like photos)


_SIZE_CLASSES = {
    "thumb": _SizeClass((80, 300), (6_000, 30_000), (9_000, 20_000), 24.0, 0.0),
    "small": _SizeClass((120, 400), (10_240, 50_000), (14_000, 40_000), 24.0, 0.0),
    "medium": _SizeClass((500, 1000), (102_400, 500_000), (140_000, 400_000), 28.0, 1.0),
    "large": _SizeClass((1400, 2600), (1_048_576, 3_000_000), (1_300_000, 2_600_000), 32.0, 2.5),
}
SIZES: tuple[str, ...] = tuple(_SIZE_CLASSES)
"""The size classes: ``thumb``, ``small``, ``medium``, ``large``."""

_MAX_REDRAWS = 5


def content_type(ext: str) -> str:
    """The MIME type for an image extension, e.g. ``content_type("jpg") == "image/jpeg"``."""
    try:
        return _CONTENT_TYPES[ext.lower()]
    except KeyError:
        raise ValueError(f"unknown image extension {ext!r}; expected one of {EXTENSIONS}") from None


def image_bytes(n: int, ext: str, *, seed: int = 0, size: str = "small") -> bytes:
    """The encoded image number ``n`` in format ``ext`` (``jpg``, ``png``, ``webp``, ``gif``).

    Indices ``n`` and ``n + POOL_SIZE`` give the same picture. Raises
    :class:`ValueError` for an unknown extension or size.

    Example::

        body = image_bytes(3, "webp", size="medium")   # 100-500 KB of WebP
    """
    ext = ext.lower()
    content_type(ext)  # validates
    if size not in _SIZE_CLASSES:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")
    return _cached(size)(n % POOL_SIZE, ext, seed)


def warm_cache(
    *, seed: int = 0, sizes: tuple[str, ...] = ("small",), exts: tuple[str, ...] = EXTENSIONS
) -> None:
    """Draw every pool picture ahead of time, so that serving never runs Pillow."""
    for size in sizes:
        for ext in exts:
            for index in range(POOL_SIZE):
                image_bytes(index, ext, seed=seed, size=size)


def file_bytes(n: int, size_bytes: int) -> bytes:
    """``size_bytes`` deterministic pseudo-random bytes for file number ``n``.

    The body starts with ``b"AGRB"`` (when long enough) so it can never be
    mistaken for an image by its magic bytes.
    """
    if size_bytes < 0:
        raise ValueError("size_bytes must be >= 0")
    return _file_bytes(n, size_bytes)


@functools.lru_cache(maxsize=128)
def _file_bytes(n: int, size_bytes: int) -> bytes:
    body = random.Random(f"aiograb-file:{n}").randbytes(size_bytes)
    return (b"AGRB" + body[4:])[:size_bytes]


# One cache per size class so a few large pictures cannot evict every small one.
# Worst case held: thumb 1024 * 30 KB, small 1024 * 50 KB, medium 256 * 500 KB, large 16 * 3 MB.
@functools.lru_cache(maxsize=1024)
def _thumb(index: int, ext: str, seed: int) -> bytes:
    return _make(index, ext, seed, "thumb")


@functools.lru_cache(maxsize=1024)
def _small(index: int, ext: str, seed: int) -> bytes:
    return _make(index, ext, seed, "small")


@functools.lru_cache(maxsize=256)
def _medium(index: int, ext: str, seed: int) -> bytes:
    return _make(index, ext, seed, "medium")


@functools.lru_cache(maxsize=16)
def _large(index: int, ext: str, seed: int) -> bytes:
    return _make(index, ext, seed, "large")


def _cached(size: str) -> functools._lru_cache_wrapper[bytes]:
    return {"thumb": _thumb, "small": _small, "medium": _medium, "large": _large}[size]


@dataclass(frozen=True, slots=True)
class _Shape:
    kind: str
    box: tuple[float, float, float, float]  # relative to the picture (0..1)
    points: tuple[tuple[float, float], ...]
    color: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class _Spec:
    """Everything random about one picture, independent of its pixel size."""

    index: int
    width: int
    height: int
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    angle: float
    shapes: tuple[_Shape, ...]
    noise_seed: int
    target: int


def _spec(index: int, seed: int, size: str) -> _Spec:
    cls = _SIZE_CLASSES[size]
    rng = random.Random(f"aiograb-image:{seed}:{size}:{index}")

    def color() -> tuple[int, int, int]:
        return (rng.randrange(256), rng.randrange(256), rng.randrange(256))

    shapes = []
    for _ in range(rng.randint(3, 10)):
        x0, y0 = rng.random(), rng.random()
        box = (x0, y0, x0 + rng.uniform(0.1, 0.6), y0 + rng.uniform(0.1, 0.6))
        points = tuple((rng.random(), rng.random()) for _ in range(rng.randint(3, 6)))
        kind = rng.choice(("ellipse", "rectangle", "polygon"))
        shapes.append(_Shape(kind, box, points, color()))
    return _Spec(
        index=index,
        width=rng.randint(*cls.side),
        height=rng.randint(*cls.side),
        colors=(color(), color()),
        angle=rng.uniform(0.0, 360.0),
        shapes=tuple(shapes),
        noise_seed=rng.randrange(2**32),
        target=rng.randint(*cls.target),
    )


def _draw(spec: _Spec, width: int, height: int, cls: _SizeClass) -> Image.Image:
    gradient = Image.linear_gradient("L").rotate(spec.angle, Image.Resampling.BILINEAR)
    mask = gradient.resize((width, height), Image.Resampling.BILINEAR)
    first, second = (Image.new("RGB", (width, height), c) for c in spec.colors)
    img = Image.composite(first, second, mask)
    draw = ImageDraw.Draw(img)
    for shape in spec.shapes:
        x0, y0, x1, y1 = shape.box
        box = (x0 * width, y0 * height, x1 * width, y1 * height)
        if shape.kind == "ellipse":
            draw.ellipse(box, fill=shape.color)
        elif shape.kind == "rectangle":
            draw.rectangle(box, fill=shape.color)
        else:
            draw.polygon([(x * width, y * height) for x, y in shape.points], fill=shape.color)
    label_size = max(12, min(width, height) // 5)
    draw.text(
        (width * 0.05, height * 0.05),
        f"#{spec.index}",
        fill=(255, 255, 255),
        font=ImageFont.load_default(size=label_size),
        stroke_width=max(1, label_size // 12),
        stroke_fill=(0, 0, 0),
    )
    if cls.blur:
        img = img.filter(ImageFilter.GaussianBlur(cls.blur))
    return _add_grain(img, spec.noise_seed, cls.noise)


def _add_grain(img: Image.Image, noise_seed: int, amplitude: float) -> Image.Image:
    # Uniform grain from our own RNG (Image.effect_noise uses C's unseeded rand()).
    raw = random.Random(noise_seed).randbytes(img.width * img.height * 3)
    scale = amplitude / 128.0
    table = [max(0, min(255, round(128 + (v - 128) * scale))) for v in range(256)] * 3
    grain = Image.frombytes("RGB", img.size, raw).point(table)
    return ImageChops.add(img, grain, scale=1.0, offset=-128)


def _encode(img: Image.Image, ext: str) -> bytes:
    out = io.BytesIO()
    if ext == "jpg":
        img.save(out, "JPEG", quality=88)
    elif ext == "png":
        img.save(out, "PNG", compress_level=6)
    elif ext == "webp":
        img.save(out, "WEBP", quality=85, method=2)
    else:
        img.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, "GIF")
    return out.getvalue()


def _make(index: int, ext: str, seed: int, size: str) -> bytes:
    cls = _SIZE_CLASSES[size]
    spec = _spec(index, seed, size)
    width, height = spec.width, spec.height
    low, high = cls.accept
    body = b""
    for _ in range(_MAX_REDRAWS):
        body = _encode(_draw(spec, width, height, cls), ext)
        if low <= len(body) <= high:
            break
        # Bytes grow roughly with the pixel count: rescale both sides toward the target.
        factor = math.sqrt(spec.target / len(body))
        width, height = max(16, round(width * factor)), max(16, round(height * factor))
    return body
