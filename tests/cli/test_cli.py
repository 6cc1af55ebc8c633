"""The ``aiograb`` command as a user runs it: real subprocesses, real signals."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aiograb._core.config import DEFAULT_IO_THREADS
from aiograb.testing import RunningServer, ServerConfig, ServerProcess, image_bytes
from tests.helpers import aiograb_cli, manifest


def write_urls(path: Path, urls: list[str]) -> Path:
    path.write_text("".join(u + "\n" for u in urls))
    return path


def test_help_explains_every_command() -> None:
    top = aiograb_cli("--help")
    assert top.returncode == 0
    for command in ("get", "serve", "demo"):
        assert command in top.stdout
        sub = aiograb_cli(command, "--help")
        assert sub.returncode == 0
        assert "example" in sub.stdout
    get_help = aiograb_cli("get", "--help").stdout
    for flag in (
        "--per-host",
        "--rate",
        "--retries",
        "--timeout",
        "--max-bytes",
        "--accept",
        "--header",
        "--user-agent",
        "--retry-failed",
        "--url-column",
        "--quiet",
        "--procs",
        "--dask",
        "--io-threads",
    ):
        assert flag in get_help
    assert "--dask local:4" in get_help  # an example of the scale-out flags


@pytest.mark.parametrize("io_threads", [0, 2])
def test_exit_0_when_all_ok_and_summary_reports_the_threads(
    server: RunningServer, tmp_path: Path, io_threads: int
) -> None:
    urls = write_urls(tmp_path / "urls.txt", [server.url(f"/img/{i}.jpg") for i in range(200)])
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    done = aiograb_cli(
        "get", urls, "-o", out, "-c", "100", "--per-host", "0", "--summary-json", summary,
        "--io-threads", str(io_threads),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "200 ok" in done.stdout
    report = json.loads(summary.read_text())
    assert report["ok"] == 200
    assert report["io_threads"] == io_threads
    # IP-only URLs: DNS is never needed, so the loop and the fixed IO pool are all.
    # The pool's threads start only if the files were measured slow to store on the loop.
    pooled = report["files_by_io_pool"]
    if io_threads == 0:
        assert report["peak_threads"] == 1
        assert pooled == 0
        assert "of at most loop + resolver helper)" in done.stdout
    else:
        assert 1 <= report["peak_threads"] <= 1 + io_threads
        assert 0 <= pooled <= 200
        assert (
            f"of at most loop + resolver helper + {io_threads} IO; {pooled:,} files stored by"
            " the IO pool, the rest on the loop)" in done.stdout
        )
    assert report["peak_rss_mb"] > 0


def test_thread_count_with_dns_stays_at_most_two(server: RunningServer, tmp_path: Path) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    urls = [f"http://localhost:{port}/img/{i}.png" for i in range(100)]
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    done = aiograb_cli(
        "get", write_urls(tmp_path / "u.txt", urls), "-o", out, "--summary-json", summary, "-q"
    )
    assert done.returncode == 0, done.stderr
    # The loop, the resolver's helper, and the default IO pool: never more.
    assert json.loads(summary.read_text())["peak_threads"] <= 2 + DEFAULT_IO_THREADS


def test_exit_1_when_some_urls_failed(server: RunningServer, tmp_path: Path) -> None:
    urls = write_urls(tmp_path / "u.txt", [server.url("/img/1.png"), server.url("/status/404")])
    done = aiograb_cli("get", urls, "-o", tmp_path / "out", "-q")
    assert done.returncode == 1
    assert "http_404 1" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["get", "missing.txt", "-o", "out"], "no such file"),
        (["get", "urls.csv", "-o", "out", "--url-column", "nope"], "nope"),
        (["get", "urls.txt", "-o", "out", "-c", "0"], "concurrency"),
        (["get", "urls.txt", "-o", "out", "--max-bytes", "lots"], "not a size"),
        (["get", "urls.txt", "-o", "out", "--header", "no-colon"], "header"),
        (["get", "urls.txt"], "required"),
    ],
)
def test_exit_2_usage_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "urls.csv").write_text("url,caption\nhttp://127.0.0.1:1/a.jpg,x\n")
    (tmp_path / "urls.txt").write_text("http://127.0.0.1:1/a.jpg\n")
    done = aiograb_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_stdin_and_csv_inputs(server: RunningServer, tmp_path: Path) -> None:
    urls = "\n".join(server.url(f"/img/{i}.gif") for i in range(5))
    done = subprocess.run(
        [sys.executable, "-m", "aiograb", "get", "-", "-o", str(tmp_path / "a"), "-q"],
        input=urls,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(manifest(tmp_path / "a")) == 5

    csv = tmp_path / "u.csv"
    csv.write_text(
        "id,image_url,caption\n"
        + "".join(f'{i},{server.url(f"/img/{i}.png")},"cap, {i}"\n' for i in range(3))
    )
    done = aiograb_cli(
        "get",
        csv,
        "-o",
        tmp_path / "b",
        "--url-column",
        "image_url",
        "--save-columns",
        "caption",
        "-q",
    )
    assert done.returncode == 0, done.stderr
    assert [r["extra"] for r in manifest(tmp_path / "b")] == [
        {"caption": f"cap, {i}"} for i in range(3)
    ]


def journal_ok(out: Path) -> int:
    with sqlite3.connect(out / "aiograb-journal.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM items WHERE state='ok'").fetchone()[0])


def start_get(
    urls: Path, out: Path, *extra: str, preexec_fn: Callable[[], object] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiograb",
            "get",
            str(urls),
            "-o",
            str(out),
            "-c",
            "50",
            "--per-host",
            "0",
            "-q",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
    )


def wait_for_progress(out: Path, proc: subprocess.Popen[str], at_least: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if (out / "aiograb-journal.sqlite").exists():
            try:
                n = journal_ok(out)
            except sqlite3.OperationalError:
                n = 0
            if n >= at_least:
                return n
        time.sleep(0.05)
    raise AssertionError("no progress within 30 s")


def check_complete(out: Path, n: int) -> None:
    rows = manifest(out)
    assert len(rows) == n  # every URL exactly once
    assert len({r["url"] for r in rows}) == n
    assert all(r["state"] == "ok" for r in rows)
    paths = set()
    for row in rows:
        body = (out / row["path"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == row["sha256"]
        i, ext = row["url"].rsplit("/", 1)[1].split(".")
        assert body == image_bytes(int(i), ext)
        paths.add(row["path"])
    stored = {p.relative_to(out).as_posix() for p in out.glob("??/*")}
    assert stored == paths  # no orphans
    assert not list((out / ".aiograb-tmp").iterdir())  # no partial files


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(tmp_path: Path) -> None:
    n = 1500
    with ServerProcess(ServerConfig(latency_ms=30)) as srv:
        urls = write_urls(tmp_path / "u.txt", [f"{srv.base_url}/img/{i}.png" for i in range(n)])
        out = tmp_path / "out"
        for at_least in (200, 600):  # two crashes, at different points
            proc = start_get(urls, out)
            wait_for_progress(out, proc, at_least)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
            assert proc.returncode == -signal.SIGKILL
        done = start_get(urls, out)
        _, stderr = done.communicate(timeout=120)
        assert done.returncode == 0, stderr
    check_complete(out, n)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "engine"),
    [
        (signal.SIGINT, "async"),
        (signal.SIGTERM, "async"),
        (signal.SIGHUP, "async"),  # the terminal went away (an ssh session that dropped)
        (signal.SIGHUP, "threads"),
    ],
)
def test_ctrl_c_exits_130_with_a_valid_manifest_and_resumes(
    tmp_path: Path, sig: int, engine: str
) -> None:
    n = 1000
    with ServerProcess(ServerConfig(latency_ms=30)) as srv:
        urls = write_urls(tmp_path / "u.txt", [f"{srv.base_url}/img/{i}.jpg" for i in range(n)])
        out = tmp_path / "out"
        proc = start_get(urls, out, "--engine", engine)
        wait_for_progress(out, proc, 100)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert "interrupted" in stdout
        assert "Traceback" not in stderr
        rows = manifest(out)
        assert len(rows) >= 100
        assert {r["state"] for r in rows} <= {"ok", "pending"}
        for row in rows:
            if row["state"] == "ok":
                assert (out / row["path"]).stat().st_size == row["bytes"]
        again = start_get(urls, out)
        again.communicate(timeout=120)
        assert again.returncode == 0
    check_complete(out, n)


@pytest.mark.slow
def test_under_nohup_a_hangup_stops_nothing(tmp_path: Path) -> None:
    n = 2000
    with ServerProcess(ServerConfig(latency_ms=30)) as srv:
        urls = write_urls(tmp_path / "u.txt", [f"{srv.base_url}/img/{i}.jpg" for i in range(n)])
        out = tmp_path / "out"
        # What nohup does before it runs the command.
        proc = start_get(urls, out, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        wait_for_progress(out, proc, 100)
        proc.send_signal(signal.SIGHUP)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    check_complete(out, n)


def test_demo_runs_offline(tmp_path: Path) -> None:
    done = aiograb_cli(
        "demo",
        "-n",
        "300",
        "-c",
        "100",
        "--latency-ms",
        "20",
        "-o",
        tmp_path / "demo",
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "300 ok" in done.stdout
    assert len(manifest(tmp_path / "demo")) == 300
    assert os.path.exists(tmp_path / "demo" / "manifest.jsonl")


def test_progress_bar_on_a_terminal_and_not_when_quiet(
    server: RunningServer, tmp_path: Path
) -> None:
    urls = write_urls(
        tmp_path / "u.txt", [server.url(f"/img/{i}.png?latency_ms=5") for i in range(300)]
    )

    def run_on_pty(*extra: str) -> str:
        controller, terminal = os.openpty()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "aiograb", "get", str(urls), "-o", str(tmp_path / "o"),
                 "-c", "4", "--per-host", "0", *extra],
                stdout=subprocess.PIPE, stderr=terminal, timeout=60, check=True,
                env={**os.environ, "COLUMNS": "200"},
            )  # fmt: skip
            assert done.stdout
            os.set_blocking(controller, False)
            chunks = []
            while True:
                try:
                    chunk = os.read(controller, 65536)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
        finally:
            os.close(controller)
            os.close(terminal)

    shown = run_on_pty()
    for part in ("300/300", "ok", "failed", "files/s", "MB/s", "ETA"):
        assert part in shown, part
    shutil.rmtree(tmp_path / "o")
    assert run_on_pty("--quiet") == ""
