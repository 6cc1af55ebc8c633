"""What a process pays at start when aiograb's ``.pyc`` files are missing.

Python compiles a module from source when it finds no up-to-date ``.pyc``, and keeps
the result only if it may write it: under ``PYTHONDONTWRITEBYTECODE=1`` (this project's
sandbox sets it) or in a tree it cannot write, every process compiles every aiograb
module it imports, again. An installed wheel never does (pip compiles at install).
This copies ``src/`` twice — one copy byte-compiled, one without any ``.pyc`` — and
times, alternating, the same commands in each: ``aiograb --version``, importing what
``aiograb get`` imports, and importing the fan-out client. CPU from ``os.wait4``.

    python benchmarks/bench_bytecode.py --repeats 10
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

COMMANDS = {
    "aiograb --version": ["-m", "aiograb", "--version"],
    "get's imports": [
        "-c",
        "import aiograb._cli.main, aiograb._get.engine, aiograb._http.curl_transport",
    ],
    "open_client's imports": ["-c", "import aiograb; aiograb.open_client"],
}


def _run(args: list[str], src: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args} failed in {src}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiograb-bytecode-") as tmp:
        trees = {"compiled": Path(tmp) / "compiled", "from source": Path(tmp) / "source"}
        for tree in trees.values():
            shutil.copytree(SRC, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        compileall.compile_dir(trees["compiled"], quiet=1)
        print("| command | CPU s compiled | from source | ratio | wall s compiled | from source |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, cmd in COMMANDS.items():
            got: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
            for _ in range(args.repeats):
                for kind, tree in trees.items():  # alternating: the machine's swings hit both
                    got[kind].append(_run(cmd, tree))
            cpu = {k: statistics.median(c for _, c in v) for k, v in got.items()}
            wall = {k: statistics.median(w for w, _ in v) for k, v in got.items()}
            print(
                f"| {name} | {cpu['compiled']:.3f} | {cpu['from source']:.3f} | "
                f"{cpu['from source'] / cpu['compiled']:.2f} | {wall['compiled']:.3f} | "
                f"{wall['from source']:.3f} |"
            )


if __name__ == "__main__":
    main()
