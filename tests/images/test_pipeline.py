"""The image pipeline end to end: process pool, outputs, dedup, bad images, crashes."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image

from aiograb import (
    ImageOptions,
    ImagePipeline,
    Limits,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
    UsageError,
    download_async,
)
from aiograb._core.models import InputRow
from aiograb._core.stats import Summary
from aiograb._images.outputs import COMMIT_MARKER
from aiograb.testing import RunningServer, image_bytes
from tests.helpers import by_url, manifest, run, serve_app

FAST = RequestPolicy(retry=RetryPolicy(retries=0), timeouts=Timeouts(total=10, connect=2))
RESIZE = ImageOptions(resize="keep-ratio", image_size=64, encode="jpg", quality=90)


async def get_async(
    rows: list[InputRow] | list[str],
    out: Path,
    pipeline: ImagePipeline,
    *,
    policy: RequestPolicy = FAST,
    concurrency: int = 8,
    stop: asyncio.Event | None = None,
) -> Summary:
    items = [
        r if isinstance(r, InputRow) else InputRow(line=i, url=r) for i, r in enumerate(rows, 1)
    ]
    return await download_async(
        items,
        out,
        limits=Limits(concurrency=concurrency, per_host=0),
        policy=policy,
        pipeline=pipeline,
        stop=stop,
    )


def get(rows: list[InputRow] | list[str], out: Path, pipeline: ImagePipeline, **kw: Any) -> Summary:
    return run(get_async(rows, out, pipeline, **kw))


def tar_members(out: Path) -> dict[str, dict[str, bytes]]:
    """Every sample of every complete shard, by key, read with the standard library."""
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                data = tar.extractfile(member)
                assert data is not None
                samples.setdefault(key, {})[ext] = data.read()
    return samples


def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


@asynccontextmanager
async def bodies_server(
    bodies: dict[str, tuple[bytes, str]],
) -> AsyncIterator[Callable[[str], str]]:
    """A tiny aiohttp app on port 0 serving fixed bodies: /b/{name}."""

    async def serve(request: web.Request) -> web.Response:
        body, ctype = bodies[request.match_info["name"]]
        return web.Response(body=body, headers={"Content-Type": ctype})

    app = web.Application()
    app.router.add_get("/b/{name}", serve)
    async with serve_app(app) as base:
        yield lambda name: f"{base}/b/{name}"


def test_webdataset_shards_hold_resized_samples_with_metadata(
    server: RunningServer, tmp_path: Path
) -> None:
    rows = [
        InputRow(
            line=i,
            url=server.url(f"/img/{i}.jpg?size=medium"),
            extra={"caption": f"picture {i}", "license": "cc0"},
        )
        for i in range(1, 36)
    ]
    pipeline = ImagePipeline(
        RESIZE,
        workers=2,
        output="webdataset",
        shard_size=15,
        caption_column="caption",
        extra_columns=["caption", "license"],
    )
    summary = get(rows, tmp_path, pipeline)
    assert summary.counts == {"ok": 35}
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == ["00000.tar", "00001.tar", "00002.tar"]
    assert not list(tmp_path.glob("*.part"))
    assert not (tmp_path / COMMIT_MARKER).exists()
    samples = tar_members(tmp_path)
    assert len(samples) == 35
    by_key = {json.loads(s["json"])["url"]: s for s in samples.values()}
    records = by_url(tmp_path)
    for row in rows:
        sample = by_key[row.url]
        assert set(sample) == {"jpg", "json", "txt"}
        meta = json.loads(sample["json"])
        assert sample["txt"].decode() == f"picture {row.line}"
        assert (meta["caption"], meta["license"]) == (f"picture {row.line}", "cc0")
        img = Image.open(io.BytesIO(sample["jpg"]))
        assert min(img.size) == 64
        assert img.mode == "RGB"
        assert (meta["width"], meta["height"]) == img.size
        record = records[row.url]
        assert record["path"] in {"00000.tar", "00001.tar", "00002.tar"}
        assert record["key"] == meta["key"]
        assert (record["width"], record["height"]) == img.size
        assert record["bytes"] == len(sample["jpg"])


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_shards_are_readable_by_the_webdataset_package(
    server: RunningServer, tmp_path: Path
) -> None:
    wds = pytest.importorskip("webdataset")
    urls = [server.url(f"/img/{i}.png") for i in range(20)]
    pipeline = ImagePipeline(RESIZE, workers=1, output="webdataset", shard_size=8)
    get(urls, tmp_path, pipeline)
    shards = [str(p) for p in sorted(tmp_path.glob("*.tar"))]
    assert len(shards) == 3
    seen = []
    for sample in wds.WebDataset(shards, shardshuffle=False):
        assert min(Image.open(io.BytesIO(sample["jpg"])).size) == 64
        seen.append(json.loads(sample["json"])["url"])
    assert sorted(seen) == sorted(urls)


def test_parquet_shards_hold_image_bytes_and_columns(server: RunningServer, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        InputRow(line=i, url=server.url(f"/img/{i}.webp"), extra={"caption": f"c{i}", "n": i})
        for i in range(12)
    ]
    options = ImageOptions(resize="center-crop", image_size=48, encode="webp", quality=80)
    pipeline = ImagePipeline(
        options,
        workers=2,
        output="parquet",
        shard_size=5,
        caption_column="caption",
        extra_columns=["caption", "n"],
    )
    assert get(rows, tmp_path, pipeline).counts == {"ok": 12}
    shards = sorted(tmp_path.glob("*.parquet"))
    assert [p.name for p in shards] == ["00000.parquet", "00001.parquet", "00002.parquet"]
    table = pq.read_table(shards)  # type: ignore[arg-type]
    assert table.num_rows == 12
    assert {"key", "url", "caption", "image", "width", "height", "sha256", "n"} <= set(
        table.column_names
    )
    for record in table.to_pylist():
        img = Image.open(io.BytesIO(record["image"]))
        assert (img.format, img.size) == ("WEBP", (48, 48))
        i = int(record["url"].rsplit("/", 1)[1].split(".")[0])
        assert (record["caption"], record["n"]) == (f"c{i}", str(i))


def test_bad_images_end_as_precise_rows_and_the_run_goes_on(tmp_path: Path) -> None:
    good = image_bytes(3, "jpg", size="medium")
    photo = Image.open(io.BytesIO(good)).convert("RGB")
    bodies = {
        "good.jpg": (good, "image/jpeg"),
        "truncated.jpg": (good[: len(good) // 2], "image/jpeg"),
        "corrupt.jpg": (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "image/jpeg"),
        "empty.jpg": (b"", "image/jpeg"),
        "vector.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "image/svg+xml"),
        "tiny.png": (encode(photo.resize((20, 20)), "PNG"), "image/png"),
        "cmyk.jpg": (encode(photo.convert("CMYK"), "JPEG"), "image/jpeg"),
        "palette.gif": (encode(photo.convert("P"), "GIF"), "image/gif"),
        "huge.png": (encode(photo.resize((1200, 1000)), "PNG"), "image/png"),
    }
    options = ImageOptions(verify=True, min_size=32, max_pixels=1_000_000)

    async def main() -> None:
        async with bodies_server(bodies) as url:
            await get_async([url(n) for n in bodies], tmp_path, ImagePipeline(options, workers=2))

    run(main())
    rows = {r["url"].rsplit("/", 1)[1]: r for r in manifest(tmp_path)}
    errors = {name: r["error"] for name, r in rows.items()}
    assert errors == {
        "good.jpg": None,
        "truncated.jpg": "corrupt_image",
        "corrupt.jpg": "corrupt_image",
        "empty.jpg": "empty_body",
        "vector.svg": "not_raster",
        "tiny.png": "too_small",
        "cmyk.jpg": None,
        "palette.gif": None,
        "huge.png": "too_many_pixels",
    }
    assert (rows["cmyk.jpg"]["mode"], rows["palette.gif"]["mode"]) == ("CMYK", "P")
    assert (rows["good.jpg"]["width"], rows["good.jpg"]["height"]) == photo.size
    # Verify-only keeps the downloaded bytes; failures leave no file or temporary behind.
    assert (tmp_path / rows["good.jpg"]["path"]).read_bytes() == good
    stored = {p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("??/*")}
    assert stored == {r["path"] for r in rows.values() if r["path"]}
    assert not list((tmp_path / ".aiograb-tmp").iterdir())


def test_big_bodies_go_to_the_pool_as_files(server: RunningServer, tmp_path: Path) -> None:
    # Bodies over 1 MiB are staged in a temp file; the worker reads that file.
    urls = [server.url(f"/img/{i}.jpg?size=large") for i in (1, 2)]
    get(urls, tmp_path / "resized", ImagePipeline(RESIZE, workers=2))
    for row in manifest(tmp_path / "resized"):
        with Image.open(tmp_path / "resized" / row["path"]) as img:
            assert (min(img.size), row["state"]) == (64, "ok")
        assert row["original_width"] > 1000
    # Verify only: the staged file itself is renamed into place, byte for byte.
    get(urls[:1], tmp_path / "kept", ImagePipeline(ImageOptions(verify=True), workers=1))
    row = manifest(tmp_path / "kept")[0]
    assert (tmp_path / "kept" / row["path"]).read_bytes() == image_bytes(1, "jpg", size="large")
    for out in ("resized", "kept"):
        assert not list((tmp_path / out / ".aiograb-tmp").iterdir())


def test_same_bytes_from_two_urls_are_stored_once(server: RunningServer, tmp_path: Path) -> None:
    # Indices n and n + 64 serve the very same bytes.
    urls = [server.url(f"/img/{i}.jpg") for i in (1, 65, 129, 2)]
    summary = get(urls, tmp_path / "files", ImagePipeline(RESIZE, workers=1))
    assert summary.counts == {"ok": 4}
    rows = by_url(tmp_path / "files")
    first = rows[urls[0]]
    assert "duplicate_of" not in first
    for dup in urls[1:3]:
        assert rows[dup]["duplicate_of"] == urls[0]
        assert rows[dup]["path"] == first["path"]
        assert rows[dup]["sha256"] == first["sha256"]
    assert len(list((tmp_path / "files").glob("??/*.jpg"))) == 2

    shards = tmp_path / "shards"
    pipeline = ImagePipeline(RESIZE, workers=1, output="webdataset", shard_size=100)
    get(urls, shards, pipeline)
    assert len(tar_members(shards)) == 2
    rows = by_url(shards)
    assert rows[urls[1]]["key"] == rows[urls[0]]["key"]
    # Resume: a new URL with known bytes points at the shard of an earlier run.
    more = server.url("/img/193.jpg")
    get([*urls, more], shards, pipeline)
    assert by_url(shards)[more]["duplicate_of"] == urls[0]
    assert by_url(shards)[more]["path"] == "00000.tar"
    assert len(tar_members(shards)) == 2


def test_dedup_none_stores_every_url(server: RunningServer, tmp_path: Path) -> None:
    urls = [server.url(f"/img/{i}.jpg") for i in (1, 65)]
    get(urls, tmp_path, ImagePipeline(RESIZE, workers=1, dedup="none"))
    rows = by_url(tmp_path)
    assert rows[urls[0]]["path"] != rows[urls[1]]["path"]
    assert "duplicate_of" not in rows[urls[1]]


def test_perceptual_dedup_marks_near_duplicates(tmp_path: Path) -> None:
    photo = Image.open(io.BytesIO(image_bytes(4, "png", size="medium"))).convert("RGB")
    other = Image.open(io.BytesIO(image_bytes(11, "png", size="medium"))).convert("RGB")
    bodies = {
        "a.jpg": (encode(photo, "JPEG", quality=95), "image/jpeg"),
        "a-small.jpg": (encode(photo.resize((300, 250)), "JPEG", quality=50), "image/jpeg"),
        "b.png": (encode(other, "PNG"), "image/png"),
    }

    async def main() -> None:
        async with bodies_server(bodies) as url:
            pipeline = ImagePipeline(ImageOptions(verify=True), workers=1, dedup="perceptual")
            await get_async([url(n) for n in bodies], tmp_path, pipeline, concurrency=1)

    run(main())
    rows = {r["url"].rsplit("/", 1)[1]: r for r in manifest(tmp_path)}
    assert all(len(r["phash"]) == 16 for r in rows.values())
    assert rows["a-small.jpg"]["duplicate_of"] == rows["a.jpg"]["url"]
    assert "duplicate_of" not in rows["a.jpg"]
    assert "duplicate_of" not in rows["b.png"]
    assert all(r["path"] for r in rows.values())  # near-duplicates are still stored


CRASHING_HANDLER = """
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("_iw", {path!r})
iw = importlib.util.module_from_spec(spec)
sys.modules["_iw"] = iw
spec.loader.exec_module(iw)

def handle(request):
    if (request.get("data") or b"").startswith(b"SEGV"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return iw.handle(request)
"""


def test_a_worker_crash_fails_one_item_and_the_pool_recovers(
    server: RunningServer, tmp_path: Path
) -> None:
    import aiograb._images.work

    handler = tmp_path / "crashing.py"
    handler.write_text(CRASHING_HANDLER.format(path=aiograb._images.work.__file__))
    bodies = {"segv.bin": (b"SEGV" + b"\x00" * 100, "application/octet-stream")}
    good = [server.url(f"/img/{i}.png") for i in range(6)]
    pipeline = ImagePipeline(RESIZE, workers=2, handler=handler)

    async def main() -> None:
        async with bodies_server(bodies) as url:
            urls = [*good[:3], url("segv.bin"), *good[3:]]
            policy = RequestPolicy(accept="any", retry=RetryPolicy(retries=0))
            await get_async(urls, tmp_path / "out", pipeline, policy=policy, concurrency=2)

    run(main())
    rows = {r["url"]: r for r in manifest(tmp_path / "out")}
    crashed = [r for r in rows.values() if r["state"] == "failed"]
    assert len(crashed) == 1
    assert crashed[0]["error"] == "worker_crashed"
    assert "SIGSEGV" in crashed[0]["message"]
    assert all(rows[u]["state"] == "ok" for u in good)
    assert pipeline.statistics is not None
    assert pipeline.statistics.crashed == 1
    assert pipeline.statistics.started == 3  # two, plus one replacement


SLOW_HANDLER = """
import time

def handle(request):
    time.sleep(0.2)
    return {"ok": True, "data": None, "ext": "png", "info": {}}
"""


def test_a_saturated_pool_slows_downloading_down(tmp_path: Path) -> None:
    handler = tmp_path / "slow.py"
    handler.write_text(SLOW_HANDLER)
    requests = 0
    body = image_bytes(0, "png")

    async def count(request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        return web.Response(body=body, headers={"Content-Type": "image/png"})

    async def main() -> int:
        app = web.Application()
        app.router.add_get("/{n}.png", count)
        pipeline = ImagePipeline(
            ImageOptions(verify=True), workers=1, backlog=2, dedup="none", handler=handler
        )
        stop = asyncio.Event()
        async with serve_app(app) as base, asyncio.TaskGroup() as tg:
            urls = [f"{base}/{i}.png" for i in range(100)]
            task = tg.create_task(get_async(urls, tmp_path, pipeline, concurrency=20, stop=stop))
            await asyncio.sleep(1.5)
            fetched = requests
            stop.set()
        assert task.result().interrupted
        return fetched

    fetched = run(main())
    processed = sum(r["state"] == "ok" for r in manifest(tmp_path))
    # The first 20 fetches start at once; after that, a new fetch waits until fewer than
    # 2 bodies wait for the pool. Without that gate, each processed item would let its
    # worker fetch another one at once (20 + processed).
    assert processed >= 3
    assert fetched <= 20 + 1
    assert {r["state"] for r in manifest(tmp_path)} == {"ok", "pending"}  # the rest resumes


def test_pipeline_options_are_validated() -> None:
    with pytest.raises(UsageError, match="output"):
        ImagePipeline(output="zip")
    with pytest.raises(UsageError, match="dedup"):
        ImagePipeline(dedup="fuzzy")
    with pytest.raises(UsageError, match="workers"):
        ImagePipeline(workers=0)


def test_start_removes_partial_shards_and_a_renamed_but_unrecorded_one(tmp_path: Path) -> None:
    from aiograb._images.outputs import TarShards

    for name in ("00000.tar", "00001.tar", "00002.tar", "00003.tar.part", "notes.tar"):
        (tmp_path / name).write_bytes(b"x")
    # A run killed between renaming 00002.tar and committing its rows to the journal.
    (tmp_path / COMMIT_MARKER).write_text("00002.tar")
    shards = TarShards(tmp_path, 10, lambda items: None, known={"00000.tar", "00001.tar"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.tar", "00001.tar", "notes.tar"]
    assert shards._next == 2
    # A marker for a shard the journal knows (the commit went through) removes nothing.
    (tmp_path / COMMIT_MARKER).write_text("00001.tar")
    TarShards(tmp_path, 10, lambda items: None, known={"00000.tar", "00001.tar"})
    assert (tmp_path / "00001.tar").exists()
    assert not (tmp_path / COMMIT_MARKER).exists()
