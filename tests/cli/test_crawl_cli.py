"""``aiograb crawl`` as a user runs it: real subprocesses, kill -9 and resume."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from aiograb.testing import ServerConfig, serve_in_thread, site_image_urls, site_page_urls
from tests.helpers import aiograb_cli, manifest

PAGES = 300


def test_help_lists_the_crawl_flags() -> None:
    assert "crawl" in aiograb_cli("--help").stdout
    done = aiograb_cli("crawl", "--help")
    assert done.returncode == 0
    for flag in (
        "--depth",
        "--max-pages",
        "--scope",
        "--include",
        "--exclude",
        "--ignore-robots",
        "--allow-private",
        "--sitemaps",
        "--css",
        "--data-uris",
        "--all-sizes",
        "--pages-only",
        "--format",
        "--max-page-bytes",
        "--per-host",
        "--resize",
        "--output-format",
    ):
        assert flag in done.stdout, flag


def test_crawl_with_image_options_writes_shards(tmp_path: Path) -> None:
    with serve_in_thread(ServerConfig(site_pages=PAGES)) as server:
        out = tmp_path / "ds"
        done = aiograb_cli(
            "crawl", server.url("/site/p/0.html"), "-o", out, "--max-pages", "10",
            "--per-host", "0", "--resize", "center-crop", "--image-size", "16",
            "--output-format", "webdataset", "--workers", "1", "-q",
        )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 1: the site's deliberate bad links
    assert list(out.glob("*.tar"))
    assert not list(out.glob("*.part"))
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--include", "("], "bad regular expression"),
        (["--scope", "site"], "invalid choice"),
        (["--depth", "-1"], "depth must be >= 0"),
        (["--max-page-bytes", "lots"], "not a size"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = aiograb_cli("crawl", "http://127.0.0.1:9/", "-o", tmp_path / "out", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_missing_seed_file_is_a_usage_error(tmp_path: Path) -> None:
    done = aiograb_cli("crawl", tmp_path / "nope.txt", "-o", tmp_path / "out")
    assert done.returncode == 2
    assert "no such file, and not a URL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_seed_file_and_summary(tmp_path: Path) -> None:
    with serve_in_thread() as server:
        seeds = tmp_path / "seeds.txt"
        seeds.write_text(f"# seeds\n{server.url('/site/p/0.html')}\nnot a url\n")
        out = tmp_path / "out"
        done = aiograb_cli(
            "crawl", seeds, "-o", out, "--depth", "1", "--per-host", "0", "--ignore-robots"
        )
    assert done.returncode == 1, done.stderr  # the bad seed, a 404 image, a redirect loop
    assert "robots.txt: ignored (--ignore-robots)" in done.stdout
    assert "pages:" in done.stdout
    assert "images:" in done.stdout
    bad = [r for r in manifest(out) if r["url"] == "not a url"]
    assert bad[0]["state"] == "failed"
    assert bad[0]["error"] == "invalid_url"


def start_crawl(seed: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiograb",
            "crawl",
            seed,
            "-o",
            str(out),
            "-c",
            "8",
            "--per-host",
            "0",
            "--retries",
            "0",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pages_done(out: Path) -> int:
    path = out / "aiograb-journal.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path) as db:
            (n,) = db.execute(
                "SELECT count(*) FROM items WHERE kind='page' AND state='ok'"
            ).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(n)


@pytest.mark.slow
def test_kill_9_mid_crawl_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with serve_in_thread(ServerConfig(latency_ms=15)) as server:
        seed = server.url("/site/p/0.html")
        kills = 0
        for at_least in (60, 180):  # two crashes at different points
            proc = start_crawl(seed, out)
            deadline = time.monotonic() + 60
            while pages_done(out) < at_least:
                assert proc.poll() is None, "the crawl ended before it could be killed"
                assert time.monotonic() < deadline, "no progress within 60 s"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            kills += 1
        done = start_crawl(seed, out)
        _, stderr = done.communicate(timeout=120)
        assert done.returncode == 1, stderr  # the site has broken links on purpose
        paths = [r.path_qs for r in server.requests]
        base = server.base_url
    rows = manifest(out)
    saved = {r["url"] for r in rows if r.get("kind") == "image" and r["state"] == "ok"}
    assert saved == site_image_urls(base, PAGES)
    tree = {r["url"] for r in rows if r.get("kind") == "page" and r["state"] == "ok"}
    tree = {u for u in tree if "/site/p/" in u}
    assert tree == site_page_urls(base, PAGES)
    assert len({r["url"] for r in rows}) == len(rows)  # every URL once in the manifest
    # A page's outcome and the links found on it are committed together: only the pages
    # in flight at a kill (at most -c 8 each time) can be fetched twice.
    pages = Counter(p for p in paths if p.startswith("/site/p/"))
    assert len(pages) == PAGES
    assert sum(n - 1 for n in pages.values()) <= 8 * kills
    assert paths.count("/robots.txt") == 1
    assert not list((out / ".aiograb-tmp").iterdir())
    for row in rows:
        if row["state"] == "ok" and row.get("kind") == "image":
            assert (out / row["path"]).stat().st_size == row["bytes"]


@pytest.mark.slow
def test_ctrl_c_exits_130_writes_manifest_and_graph_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with serve_in_thread(ServerConfig(latency_ms=15)) as server:
        seed = server.url("/site/p/0.html")
        proc = start_crawl(seed, out)
        deadline = time.monotonic() + 60
        while pages_done(out) < 40:
            assert proc.poll() is None, "the crawl ended before it could be interrupted"
            assert time.monotonic() < deadline, "no progress within 60 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert "interrupted" in stdout
        rows = manifest(out)
        assert any(r["state"] == "pending" for r in rows)
        assert (out / "pages.jsonl").stat().st_size > 0
        done = start_crawl(seed, out)
        _, stderr = done.communicate(timeout=120)
        assert done.returncode == 1, stderr
        base = server.base_url
    saved = {r["url"] for r in manifest(out) if r.get("kind") == "image" and r["state"] == "ok"}
    assert saved == site_image_urls(base, PAGES)
