"""Issue 10, everyday mistakes (items 15, 16, 18): tried with the real CLI, as a new user would."""

from __future__ import annotations

from pathlib import Path

from aiograb._cli.display import bar_total
from aiograb._core.stats import Progress
from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli, closed_port, manifest

# -- item 16: URLs as arguments -------------------------------------------------------


def test_urls_as_arguments(tmp_path: Path, server: RunningServer) -> None:
    out = tmp_path / "out"
    urls = [server.url("/img/1.png"), server.url("/img/2.jpg")]
    result = aiograb_cli("get", *urls, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    rows = manifest(out)
    assert [(r["url"], r["line"], r["state"]) for r in rows] == [
        (urls[0], 1, "ok"),
        (urls[1], 2, "ok"),
    ]
    assert "input: 2 lines/records read: 2 new" in result.stdout


def test_a_missing_file_named_like_a_path_says_no_such_file(tmp_path: Path) -> None:
    for name in ("urls.txt", "example.org/a.jpg", str(tmp_path / "nope.csv")):
        result = aiograb_cli("get", name, "-o", tmp_path / "out", cwd=tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip() == f"aiograb: error: {name}: no such file"


def test_files_and_urls_mixed_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("http://127.0.0.1:9/a\n")
    result = aiograb_cli("get", tmp_path / "a.txt", "http://127.0.0.1:9/b", "-o", tmp_path / "o")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not both" in result.stderr


# -- item 18: progress totals of streamed input ---------------------------------------


def test_streamed_input_has_no_false_total() -> None:
    p = Progress(total=2000, ok=150, failed=5)
    assert bar_total(p, None) == (None, "155 of ≥2,000")
    p.input_done = True
    assert bar_total(p, None) == (2000, "155/2,000")


def test_an_estimate_is_used_until_exceeded() -> None:
    p = Progress(total=2000, ok=10)
    assert bar_total(p, 5000) == (5000, "10/~5,000")
    p.total = 6000  # the estimate was wrong: never a total below what is known
    assert bar_total(p, 5000) == (None, "10 of ≥6,000")


# -- items 20, 21: reusing a folder; every error class --------------------------------


def test_reusing_a_folder_says_so_and_hints_retry_failed(
    tmp_path: Path, server: RunningServer
) -> None:
    out = tmp_path / "out"
    bad = [server.url(f"/status/{code}") for code in (400, 401, 403, 404, 410, 418, 451)]
    bad += [server.url(f"/status/{code}") for code in (501, 505)]
    bad.append(f"http://127.0.0.1:{closed_port()}/x.png")
    src = tmp_path / "urls.txt"
    src.write_text("\n".join(bad) + "\n")
    first = aiograb_cli("get", src, "-o", out, "-q", "--retries", "0")
    assert first.returncode == 1, first.stderr
    # Every class is listed, none hidden behind "+N more".
    (classes,) = [line for line in first.stdout.splitlines() if "failed by class" in line]
    assert "more" not in classes
    for code in (400, 401, 403, 404, 410, 418, 451, 501, 505):
        assert f"http_{code} 1" in classes
    assert classes.count(" 1") == 10  # ten classes, one row each
    assert "resumed" not in first.stdout

    again = aiograb_cli("get", src, "-o", out, "-q", "--retries", "0")
    assert again.returncode == 1
    assert "resumed a run of 20" in again.stdout  # the date of the first run
    assert "10 rows (0 ok, 10 failed), 0 new this run" in again.stdout
    assert "add --retry-failed" in again.stdout


# -- item 19: logs for unattended runs ---------------------------------------------------


def _slow_list(tmp_path: Path, base: str) -> Path:
    src = tmp_path / "urls.txt"
    urls = [f"{base}/img/{i}.png" for i in range(60)] + [
        f"{base}/status/404?n={i}" for i in range(3)
    ]
    src.write_text("\n".join(urls) + "\n")
    return src


def test_without_a_terminal_progress_is_plain_lines(tmp_path: Path) -> None:
    from aiograb.testing import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig(latency_ms=150)) as slow:
        src = _slow_list(tmp_path, slow.base_url)
        args = ("get", src, "-o", tmp_path / "out", "-c", "4", "--per-host", "0")
        result = aiograb_cli(*args, "--log-interval", "0.3", "-v")  # stderr is a pipe
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    progress = [line for line in lines if " done (" in line]
    assert len(progress) >= 3  # ~2.4 s of fetching at one line per 0.3 s, and the last
    assert progress[-1].startswith("aiograb: 63/63 done (60 ok, 3 failed)")
    assert "files/s" in progress[0]
    assert "ETA" in progress[0]
    failed = [line for line in lines if line.startswith("aiograb: failed ")]
    assert len(failed) == 3
    assert all(": http_404: " in line for line in failed)


def test_log_file_and_quiet(tmp_path: Path, server: RunningServer) -> None:
    src = _slow_list(tmp_path, server.base_url)
    log = tmp_path / "run.log"
    result = aiograb_cli("get", src, "-o", tmp_path / "a", "--log-file", log, "-v")
    assert result.returncode == 1
    assert " done (" not in result.stderr  # the lines went to the file
    text = log.read_text()
    assert "aiograb: 63/63 done (60 ok, 3 failed)" in text
    assert text.count("aiograb: failed ") == 3
    quiet = aiograb_cli("get", src, "-o", tmp_path / "b", "-q")
    assert quiet.stderr == ""


def test_summary_says_when_the_per_host_limit_held_the_run_back(tmp_path: Path) -> None:
    from aiograb.testing import ServerConfig, serve_in_thread

    with serve_in_thread(ServerConfig(latency_ms=100)) as slow:  # one host, slow answers
        src = tmp_path / "urls.txt"
        src.write_text("".join(f"{slow.base_url}/img/{i}.png\n" for i in range(80)))
        held = aiograb_cli("get", src, "-o", tmp_path / "a", "-q", "-c", "64", "--per-host", "4")
        free = aiograb_cli("get", src, "-o", tmp_path / "b", "-q", "-c", "64", "--per-host", "0")
    assert held.returncode == 0, held.stderr
    (line,) = [x for x in held.stdout.splitlines() if "per-host limit" in x]
    assert line.startswith("  per-host limit 4 held requests back ")
    assert "raise --per-host" in line
    assert "per-host limit" not in free.stdout


# -- item 23 (part): crawl to a dataset with the alt text as caption --------------------


def test_crawl_caption_from_alt(tmp_path: Path, server: RunningServer) -> None:
    import tarfile

    out = tmp_path / "ds"
    result = aiograb_cli(
        "crawl", server.url("/html/1"), "-o", out, "-q", "--depth", "0",
        "--output-format", "webdataset", "--caption-from", "alt", "--workers", "1",
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    captions: dict[str, str] = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".txt"):
                    data = tar.extractfile(member)
                    assert data is not None
                    captions[member.name] = data.read().decode()
    assert captions, result.stdout
    assert all(text.startswith("image ") for text in captions.values()), captions
