"""Start-up: ``aiograb --version`` and ``--help`` load no HTTP, image or display library."""

from __future__ import annotations

import subprocess
import sys

import pytest

import aiograb

# Libraries a bare start must not load: each costs start-up time (aiohttp alone ~100 ms).
HEAVY = {"aiohttp", "PIL", "selectolax", "pyarrow", "rich", "uvloop", "urllib3", "yarl"}


def imported(*python_args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime ARGS``; the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *python_args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return done, names


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["crawl", "--help"]])
def test_version_and_help_load_no_heavy_library(args: list[str]) -> None:
    done, names = imported("-m", "aiograb", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "aiograb" in names  # the measurement sees our own imports
    assert not names & HEAVY, sorted(names & HEAVY)
    if args == ["--version"]:
        assert done.stdout == f"aiograb {aiograb.__version__}\n"
    else:
        assert done.stdout.startswith("usage: aiograb")


def test_the_check_sees_a_heavy_import() -> None:
    # The check above can fail: the aiohttp transport loads aiohttp, seen the same way
    # (download alone no longer does: a transport is imported only when made).
    done, names = imported("-c", "import aiograb; aiograb.AiohttpTransport")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "aiohttp" in names


def test_main_in_process_leaves_sys_modules_light() -> None:
    script = (
        "import sys\n"
        "from aiograb._cli.main import main\n"
        "for argv in (['--version'], ['--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "print('MODULES', *sorted(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    line = done.stdout.splitlines()[-1].split()
    assert line[0] == "MODULES"
    loaded = {name.split(".")[0] for name in line[1:]}
    assert "aiograb" in loaded
    assert not loaded & HEAVY, sorted(loaded & HEAVY)
