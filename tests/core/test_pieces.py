"""Pure pieces: sniffing, Retry-After parsing, config validation, host slots (URLs: test_urls)."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import time

import pytest

from aiograb import FakeClock, Limits, LoopClock, RetryPolicy, UsageError
from aiograb._core.content import AcceptPolicy, sniff
from aiograb._core.errors import NotAccepted
from aiograb._fetch.fetcher import parse_retry_after
from aiograb._fetch.politeness import Politeness
from aiograb.testing import image_bytes
from tests.helpers import run


@pytest.mark.parametrize("ext", ["jpg", "png", "gif", "webp"])
def test_sniff_real_images(ext: str) -> None:
    expected = {"jpg": "image/jpeg"}.get(ext, f"image/{ext}")
    assert sniff(image_bytes(1, ext)[:32]) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"GIF87a...", "image/gif"),
        (b"MM\x00*....", "image/tiff"),
        (b"II*\x00....", "image/tiff"),
        (b"\x00\x00\x01\x00\x01\x00", "image/x-icon"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl"),  # same first byte as ICO
        (b"\x00\x00\x00\x1cftypavif", "image/avif"),
        (b"%PDF-1.7", "application/pdf"),
        (b"\n\t <svg xmlns='http://www.w3.org/2000/svg'>", "image/svg+xml"),
        (b"  <!DOCTYPE html><p>", "text/html"),
        (b'{"ok": true}', None),
        (b"BMP is not a bitmap header here?", "image/bmp"),
        (b"", None),
    ],
)
def test_sniff_signatures_sharing_a_first_byte(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


def test_accept_policy_trusts_bytes_not_headers() -> None:
    image = AcceptPolicy("image")
    png = image_bytes(1, "png")[:32]
    assert image.check_body(png, "application/octet-stream", "u") == "image/png"
    with pytest.raises(NotAccepted) as info:
        image.check_body(b"<!DOCTYPE html><html>", "image/jpeg", "u")
    assert info.value.code == "not_image"
    with pytest.raises(NotAccepted):
        image.check_header("text/html; charset=utf-8", "u")
    with pytest.raises(NotAccepted) as empty:
        image.check_body(b"", "image/png", "u")
    assert empty.value.code == "empty_body"
    assert AcceptPolicy("any").check_body(b"hello", "text/plain", "u") == "text/plain"
    pdf = AcceptPolicy("application/pdf")
    assert pdf.check_body(b"%PDF-1.7 ....", "application/pdf", "u") == "application/pdf"


def test_retry_after_parsing() -> None:
    now = time.time()
    assert parse_retry_after("120", now) == 120.0
    future = email.utils.formatdate(now + 60, usegmt=True)
    parsed = parse_retry_after(future, now)
    assert parsed is not None
    assert 58 <= parsed <= 61
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_config_validation_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Limits(concurrency=0)
    with pytest.raises(UsageError):
        Limits(per_host=-1)
    with pytest.raises(UsageError):
        RetryPolicy(retries=-1)
    delays = [RetryPolicy(backoff=1, max_backoff=8).delay(a, 0.999) for a in range(1, 7)]
    assert delays == sorted(delays)
    assert max(delays) <= 8


def test_a_paused_host_does_not_hold_up_another() -> None:
    async def main() -> tuple[float, float]:
        slots = Politeness(Limits(per_host=2), LoopClock())
        slots.pause("a.example", 0.3)
        t0 = time.monotonic()

        async def take(host: str) -> float:
            async with slots.slot(host):
                return time.monotonic() - t0

        a, b = await asyncio.gather(take("a.example"), take("b.example"))
        return a, b

    a, b = run(main())
    assert b < 0.1
    assert a >= 0.29


def test_rate_limit_spaces_requests_per_host() -> None:
    async def main() -> list[float]:
        clock = FakeClock()
        slots = Politeness(Limits(per_host=0, rate=4), clock)
        starts = []
        for _ in range(5):
            async with slots.slot("h"):
                starts.append(clock.now())
        async with slots.slot("other"):  # another host is not spaced
            starts.append(clock.now())
        return starts

    starts = run(main())
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts[:5])]
    assert gaps == [0.25, 0.25, 0.25, 0.25]
    assert starts[5] == starts[4]


def test_slots_are_forgotten_when_idle() -> None:
    async def main() -> int:
        slots = Politeness(Limits(per_host=4), FakeClock())
        for i in range(1000):
            async with slots.slot(f"host{i}"):
                pass
        return len(slots)

    assert run(main()) == 0
