"""Exit codes come from one table, and exceptions become one line each (main.py)."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import pytest

from aiograb._cli import main as cli_main
from aiograb._cli import manifest as manifest_command
from aiograb._core.stats import ExitCode
from tests.helpers import aiograb_cli


def test_the_codes_are_the_documented_ones() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0, "FAILED": 1, "USAGE": 2, "INTERNAL": 70, "OS_ERROR": 74, "INTERRUPTED": 130,
    }  # fmt: skip
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for code in ExitCode:
        assert f"`{int(code)}`" in readme, code


def test_a_file_system_error_is_one_line_and_not_a_bug(tmp_path: Path) -> None:
    (tmp_path / "urls.txt").write_text("http://127.0.0.1:1/a.jpg\n")
    (tmp_path / "a-file").write_text("")
    done = aiograb_cli("get", "urls.txt", "-o", "a-file/out", "-q", cwd=tmp_path)
    assert done.returncode == ExitCode.OS_ERROR
    assert done.stderr == "aiograb: error: a-file/out: not a directory\n"
    assert done.stdout == ""


def test_a_port_in_use_is_one_line_and_not_a_bug() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = aiograb_cli("serve", "--port", str(taken.getsockname()[1]))
    assert done.returncode == ExitCode.OS_ERROR
    assert "address already in use" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_aiograb_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "urls.txt").write_text("http://127.0.0.1:1/a.jpg\n")
    (tmp_path / "a-file").write_text("")
    env = {**os.environ, "AIOGRAB_DEBUG": "1"}
    done = aiograb_cli("get", "urls.txt", "-o", "a-file/out", "-q", cwd=tmp_path, env=env)
    assert done.returncode == 1  # Python's own code for an uncaught exception
    assert "Traceback" in done.stderr
    assert "NotADirectoryError" in done.stderr


def _bug(args: argparse.Namespace) -> int:
    raise KeyError("a bug")


def _interrupt(args: argparse.Namespace) -> int:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("func", "code", "message"),
    [
        (_bug, ExitCode.INTERNAL, "aiograb: internal error: KeyError: 'a bug' (set AIOGRAB_DEBUG"),
        (_interrupt, ExitCode.INTERRUPTED, "aiograb: interrupted"),
    ],
)
def test_a_bug_is_70_and_an_interrupt_130(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    func: object,
    code: ExitCode,
    message: str,
) -> None:
    # A command that fails in a way aiograb never does on purpose: the parser binds
    # the module's function when it is built, so patch it before main() builds it.
    monkeypatch.delenv("AIOGRAB_DEBUG", raising=False)
    monkeypatch.setattr(manifest_command, "cmd_manifest", func)
    assert cli_main.main(["manifest", str(tmp_path), "--to", str(tmp_path / "m.parquet")]) == code
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert len(err.splitlines()) == 1
