"""``aiograb get`` with the image pipeline, and ``aiograb manifest``, as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest

from aiograb.testing import RunningServer, ServerConfig, ServerProcess
from tests.helpers import aiograb_cli, manifest


def write_urls(path: Path, urls: list[str]) -> Path:
    path.write_text("".join(u + "\n" for u in urls))
    return path


def shard_urls(out: Path) -> Counter[str]:
    """How often each URL has a sample, over every complete shard (read with tarfile)."""
    seen: Counter[str] = Counter()
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    data = tar.extractfile(member)
                    assert data is not None
                    seen[json.loads(data.read())["url"]] += 1
    return seen


def parquet_urls(out: Path) -> Counter[str]:
    """How often each URL has a row, over every complete Parquet shard (read with pyarrow)."""
    import pyarrow.parquet as pq

    seen: Counter[str] = Counter()
    for shard in sorted(out.glob("*.parquet")):
        table = pq.read_table(shard, columns=["url", "image"])
        assert all(len(image) > 0 for image in table.column("image").to_pylist())
        seen.update(table.column("url").to_pylist())
    return seen


def start_get(urls: Path, out: Path, *extra: str, fmt: str = "webdataset") -> subprocess.Popen[str]:
    args = ["get", str(urls), "-o", str(out), "-c", "4", "--per-host", "0", "-q"]
    args += ["--resize", "keep-ratio", "--image-size", "32", "--format", fmt]
    args += ["--shard-size", "10", "--workers", "1", "--dedup", "none", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "aiograb", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_shards(
    out: Path, proc: subprocess.Popen[str], at_least: int, pattern: str = "*.tar"
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if len(list(out.glob(pattern))) >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError("no shard within 30 s")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupt_mid_shard_then_resume_gives_one_sample_per_url(tmp_path: Path, sig: int) -> None:
    n = 120
    with ServerProcess(ServerConfig(latency_ms=40)) as srv:
        exts = ("png", "jpg")  # 128 distinct pictures: every URL has its own bytes
        urls = [f"{srv.base_url}/img/{i // 2}.{exts[i % 2]}" for i in range(n)]
        url_file = write_urls(tmp_path / "u.txt", urls)
        out = tmp_path / "ds"
        proc = start_get(url_file, out)
        wait_for_shards(out, proc, 3)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), stderr
        assert "Traceback" not in stderr
        before = shard_urls(out)
        assert max(before.values()) == 1
        if sig == signal.SIGINT:  # a clean stop closes the open shard as a complete one
            assert not list(out.glob("*.part"))
        done = start_get(url_file, out)
        _, stderr = done.communicate(timeout=120)
        assert done.returncode == 0, stderr
    assert shard_urls(out) == Counter({u: 1 for u in urls})
    assert not list(out.glob("*.part"))
    rows = manifest(out)
    assert len(rows) == n
    assert all(r["state"] == "ok" and r["path"].endswith(".tar") for r in rows)


@pytest.mark.slow
def test_kill_9_mid_parquet_shard_then_resume_gives_one_row_per_url(tmp_path: Path) -> None:
    n = 120
    with ServerProcess(ServerConfig(latency_ms=40)) as srv:
        exts = ("png", "jpg")
        urls = [f"{srv.base_url}/img/{i // 2}.{exts[i % 2]}" for i in range(n)]
        url_file = write_urls(tmp_path / "u.txt", urls)
        out = tmp_path / "ds"
        proc = start_get(url_file, out, fmt="parquet")
        wait_for_shards(out, proc, 3, "*.parquet")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert max(parquet_urls(out).values()) == 1
        done = start_get(url_file, out, fmt="parquet")
        _, stderr = done.communicate(timeout=120)
        assert done.returncode == 0, stderr
    assert parquet_urls(out) == Counter({u: 1 for u in urls})
    assert not list(out.glob("*.part"))
    rows = manifest(out)
    assert len(rows) == n
    assert all(r["state"] == "ok" and r["path"].endswith(".parquet") for r in rows)


def test_cli_verify_and_manifest_export_to_parquet(server: RunningServer, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    urls = [server.url(f"/img/{i}.png") for i in range(5)] + [server.url("/status/404")]
    url_file = write_urls(tmp_path / "u.txt", urls)
    out = tmp_path / "out"
    got = aiograb_cli("get", url_file, "-o", out, "--per-host", "0", "-q", "--verify")
    assert got.returncode == 1, got.stderr  # one URL failed
    assert "peak: 1 OS thread" in got.stdout  # the worker processes add no thread here
    done = aiograb_cli("manifest", out, "--to", tmp_path / "m.parquet")
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "m.parquet")
    assert table.num_rows == 6
    rows = {r["url"]: r for r in table.to_pylist()}
    assert rows[urls[0]]["width"] > 0
    assert rows[urls[0]]["format"] == "png"
    assert rows[urls[-1]]["error"] == "http_404"
    assert rows[urls[-1]]["width"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "u.txt", "-o", "o", "--verify", "--engine", "threads"], "needs --engine async"),
        (["get", "u.txt", "-o", "o", "--resize", "stretch"], "invalid choice"),
        (["get", "u.txt", "-o", "o", "--quality", "0"], "quality"),
        (["get", "u.txt", "-o", "o", "--workers", "0"], "workers"),
        (["manifest", "nowhere", "--to", "m.parquet"], "not an output folder"),
    ],
)
def test_image_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "u.txt").write_text("http://127.0.0.1:9/a.jpg\n")
    done = aiograb_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
