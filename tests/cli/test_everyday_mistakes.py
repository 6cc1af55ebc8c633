"""Issue 10, everyday mistakes (items 15, 16, 18): tried with the real CLI, as a new user would."""

from __future__ import annotations

from pathlib import Path

from aiograb._cli.display import bar_total
from aiograb._core.stats import Progress
from aiograb.testing import RunningServer
from tests.helpers import aiograb_cli, manifest

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
