"""Issue 10, item 23 (part): the sidecar JSON of a shard sample describes the stored
image (format, mode, sha256, bytes), with the downloaded one's under original_*."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from aiograb.testing import RunningServer, image_bytes
from tests.helpers import aiograb_cli


def test_sidecar_describes_the_stored_image(tmp_path: Path, server: RunningServer) -> None:
    src = tmp_path / "urls.txt"
    src.write_text(server.url("/img/3.png") + "\n")
    out = tmp_path / "ds"
    result = aiograb_cli(
        "get", src, "-o", out, "-q", "--format", "webdataset", "--workers", "1",
        "--resize", "center-crop", "--image-size", "32", "--encode", "webp",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (shard,) = sorted(out.glob("*.tar"))
    with tarfile.open(shard) as tar:
        members = {m.name.rsplit(".", 1)[1]: m for m in tar.getmembers()}
        meta = json.loads(tar.extractfile(members["json"]).read())  # type: ignore[union-attr]
        stored = tar.extractfile(members["webp"]).read()  # type: ignore[union-attr]
    original = image_bytes(3, "png")
    assert (meta["format"], meta["mode"]) == ("webp", "RGB")
    assert meta["original_format"] == "png"
    assert meta["sha256"] == hashlib.sha256(stored).hexdigest()
    assert meta["bytes"] == len(stored)
    assert meta["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert meta["original_bytes"] == len(original)
    assert (meta["width"], meta["height"]) == (32, 32)
