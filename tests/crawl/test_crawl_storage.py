"""A crawl whose storage refuses it: a full disk, or the output folder made read-only
mid-run. The run stops with one line and exit 74, leaves no partial graph or manifest,
and the same command finishes the crawl once the storage is back: every page and image
fetched, the link graph written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aiograb.testing import ServerConfig, ServerProcess, plain_image_count
from tests.helpers import manifest, read_only_mid_run, under_file_modes, wait_for_files

PAGES = 300


def _crawl(out: Path, base: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "aiograb", "crawl", f"{base}/plain/p/0.html", "-o", str(out),
        "--per-host", "0", *extra,
    ]  # fmt: skip


def _check_the_rerun(out: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """The same command again: it finishes the crawl (or finds it finished); the run."""
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    rows = manifest(out)
    kinds = [r.get("kind", "file") for r in rows]
    assert kinds.count("page") == PAGES
    assert len(rows) - kinds.count("page") == plain_image_count(PAGES)
    assert all(r["state"] == "ok" for r in rows), {r["error"] for r in rows}
    pages = [json.loads(line) for line in (out / "pages.jsonl").read_text().splitlines()]
    assert len(pages) == PAGES
    assert not list(out.glob("*.tmp"))
    return again


def _first_run_said(done: subprocess.CompletedProcess[str], out: Path, what: str) -> None:
    assert done.returncode == 74, done.stderr
    (line,) = done.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"aiograb: error: {out}: {what}"), line
    assert "the same command" in line
    assert not list(out.glob("*.tmp"))  # no half-written graph or manifest


@pytest.mark.slow
def test_a_crawl_on_a_full_disk_stops_and_the_rerun_finishes(small_disk: Path) -> None:
    out = small_disk / "out"
    with ServerProcess(ServerConfig(site_pages=PAGES, latency_ms=0)) as srv:
        command = _crawl(out, str(srv.base_url), "-q")
        _first_run_said(
            subprocess.run(command, capture_output=True, text=True, timeout=120),
            out,
            "no space left",
        )
        subprocess.run(["mount", "-o", "remount,size=64m", "tmpfs", str(small_disk)], check=True)
        _check_the_rerun(out, command)


@pytest.mark.slow
def test_a_crawl_whose_folder_is_made_read_only_stops_and_the_rerun_finishes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    with ServerProcess(ServerConfig(site_pages=PAGES, latency_ms=50)) as srv:
        command = [*under_file_modes(), *_crawl(out, str(srv.base_url), "-q", "-c", "8")]
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = read_only_mid_run(run, out, (".jpg",))
        _first_run_said(
            subprocess.CompletedProcess(command, run.returncode, stdout, stderr),
            out,
            "the file system refused to store a file",
        )
        assert "The link graph" in stderr  # OUT itself was read-only: it is missing, said so
        assert "graph: not written (see the error below)" in stdout
        assert "manifest: not written" in stdout
        _check_the_rerun(out, [*command[:-2], "-c", "100"])


@pytest.mark.slow
def test_a_crawl_whose_folder_is_removed_stops_and_makes_nothing_again(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with ServerProcess(ServerConfig(site_pages=PAGES, latency_ms=50)) as srv:
        command = _crawl(out, str(srv.base_url), "-q", "-c", "8")
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_files(run, out, (".jpg",))
        out.rename(tmp_path / "gone")
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 74, stderr
    (line,) = stderr.strip().splitlines()  # one line, no traceback
    assert "the output folder was removed or replaced during the run" in line, line
    assert "manifest: none (its folder is gone)" in stdout
    assert "graph: not written" in stdout
    assert not out.exists()  # no graph, no manifest, no folder made again


@pytest.mark.slow
def test_a_crawl_whose_journal_is_deleted_mid_run_writes_it_back(tmp_path: Path) -> None:
    """The crawl's own tables (links, hosts) go on in the copy too: the graph is whole,
    and the rerun fetches nothing."""
    out = tmp_path / "out"
    with ServerProcess(ServerConfig(site_pages=PAGES, latency_ms=20)) as srv:
        command = _crawl(out, str(srv.base_url), "-c", "8", "--summary-json", "-")
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_files(run, out, (".jpg",), at_least=40)
        for p in out.glob("aiograb-journal.sqlite*"):
            p.unlink()
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        assert "journal: deleted during the run, and written back" in stdout + stderr
        assert json.loads(stdout)["journals_written_back"] >= 1
        again = _check_the_rerun(out, command)
    assert json.loads(again.stdout)["fetched"] == 0  # every row was in the copy
