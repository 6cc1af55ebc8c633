"""Issue 10, item 23 (part): --verify-hash COLUMN[:sha256|md5] checks each body
against the input's hash column, as img2dataset does."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiograb.testing import RunningServer, image_bytes
from tests.helpers import aiograb_cli, by_url


def test_verify_hash_sha256_and_md5(tmp_path: Path, server: RunningServer) -> None:
    good = [server.url(f"/img/{i}.png") for i in range(3)]
    bodies = [image_bytes(i, "png") for i in range(3)]
    lines = ["url,sha256,md5"]
    for i, (url, body) in enumerate(zip(good, bodies, strict=True)):
        sha = hashlib.sha256(body).hexdigest()
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if i == 1:
            sha, md5 = "0" * 64, "0" * 32  # the input says another file
        lines.append(f"{url},{sha.upper() if i == 2 else sha},{md5}")
    lines.append(f"{server.url('/img/9.png')},,")  # no hash to check: kept
    src = tmp_path / "urls.csv"
    src.write_text("\n".join(lines) + "\n")
    for spec, out in (("sha256", tmp_path / "a"), ("md5:md5", tmp_path / "b")):
        result = aiograb_cli("get", src, "-o", out, "-q", "--verify-hash", spec)
        assert result.returncode == 1, result.stderr
        rows = by_url(out)
        assert [rows[u]["state"] for u in good] == ["ok", "failed", "ok"]
        bad = rows[good[1]]
        assert bad["error"] == "hash_mismatch"
        assert spec.split(":")[-1] in bad["message"]
        assert bad["path"] is None
        assert rows[server.url("/img/9.png")]["state"] == "ok"
        assert len(list(out.rglob("*.png"))) == 3  # the mismatching file is not kept


def test_verify_hash_with_a_bad_spec_is_one_line(tmp_path: Path) -> None:
    src = tmp_path / "urls.csv"
    src.write_text("url,h\nhttp://127.0.0.1:9/a.png,x\n")
    result = aiograb_cli("get", src, "-o", tmp_path / "o", "--verify-hash", "h:crc32")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "aiograb: error: verify_hash must be COLUMN or COLUMN:sha256|md5, not 'h:crc32'"
    ]
