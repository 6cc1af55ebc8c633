"""The output folder made read-only during a run (a chmod, a remount, a quota tool):
every file from then on would fail to store, through no fault of its URL. The run
stops at once with one line and exit 74, as on a full disk; the rows it could not
store stay pending (none is lost, none is failed), and the same command finishes
them once the folder is writable again."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aiograb.testing import ServerConfig, ServerProcess

from ..helpers import manifest, read_only_mid_run, under_file_modes


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [
        ["--engine", "async"],
        ["--engine", "async", "--io-threads", "2"],  # the stores in the IO pool
        ["--engine", "threads"],
        ["--procs", "2"],
        ["--dask", "local:2"],
        ["--resize", "keep-ratio", "--image-size", "32", "--workers", "1", "--dedup", "none"],
        ["--resize", "no", "--format", "webdataset", "--shard-size", "10", "--dedup", "none"],
        ["--resize", "no", "--format", "webdataset", "--shard-size", "10", "--dedup", "content"],
        ["--resize", "no", "--format", "parquet", "--shard-size", "10", "--dedup", "none"],
    ],
    ids=" ".join,
)
def test_a_folder_made_read_only_stops_the_run_and_the_rerun_finishes(
    tmp_path: Path, how: list[str]
) -> None:
    n = 3000
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    prefix = under_file_modes()
    with ServerProcess(ServerConfig(latency_ms=50)) as srv:
        (tmp_path / "u.txt").write_text("".join(f"{srv.base_url}/img/{i}.jpg\n" for i in range(n)))
        flags = ["-o", str(out), "-c", "8", *how, "--summary-json", str(summary)]
        command = [*prefix, sys.executable, "-m", "aiograb", "get", "u.txt", *flags]
        run = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # The server's images repeat: with --dedup content, a few shards hold them all.
        at_least = 3 if "content" in how else 20
        stdout, stderr = read_only_mid_run(run, out, (".jpg", ".tar", ".parquet"), at_least)
        assert run.returncode == 74, stderr
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if line.startswith("aiograb: error:")]
        assert len(errors) == 1, stderr
        assert "the file system refused to store a file (cannot " in errors[0], errors[0]
        assert "Permission denied); stopped. Rows not recorded stay pending" in errors[0]
        # OUT itself is read-only too: the one line says how to rebuild the manifest.
        assert "The manifest could not be written" in errors[0]
        assert f"'aiograb manifest {out} --to {out / 'manifest.jsonl'}'" in errors[0]
        assert "stopped: the output folder is not writable" in stdout, stdout
        assert "manifest: not written (the error below says how to rebuild it)" in stdout
        data = json.loads(summary.read_text())
        assert data["exit_code"] == 74
        assert data["storage_stop"] == "not_writable"
        assert data["manifest_written"] is False
        assert data["fetched"] < n // 2  # stopped at the first file it could not store
        # Nothing failed for the folder's sake: the rerun fetches what is left.
        quicker = ["-c", "200", "--per-host", "0"]  # the last value of -c counts
        again = subprocess.run(
            [*prefix, sys.executable, "-m", "aiograb", "get", "u.txt", *flags, *quicker],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert again.returncode == 0, again.stderr
    rows = manifest(out)
    assert sorted(r["url"] for r in rows) == sorted(f"{srv.base_url}/img/{i}.jpg" for i in range(n))
    assert all(r["state"] == "ok" for r in rows), {r["error"] for r in rows}
    shards = {row["path"] for row in rows if row["path"].endswith((".tar", ".parquet"))}
    for row in rows:
        if row["path"] not in shards:
            assert (out / row["path"]).stat().st_size == row["bytes"]
    keys: dict[str, list[str]] = {}  # every shard whole: the keys of the images in it
    for shard in shards:
        if shard.endswith(".parquet"):
            keys[shard] = pq.read_table(out / shard, columns=["key"]).column("key").to_pylist()
            continue
        with tarfile.open(out / shard) as tar:
            keys[shard] = [m.name[:-4] for m in tar.getmembers() if m.name.endswith(".jpg")]
    # Each image stored once; each row's (a duplicate's: its first copy's) in the shard
    # its row names, never in a shard given up, or one whose number a later shard took.
    firsts = [row for row in rows if row.get("duplicate_of") is None]
    assert sum(len(k) for k in keys.values()) == (len(firsts) if shards else 0)
    for row in rows:
        if row["path"] in shards:
            assert row["key"] in keys[row["path"]], row
    assert not list(out.glob("*.part"))
