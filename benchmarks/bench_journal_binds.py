"""What a ``None`` costs sqlite3 to bind, on the journal's own statements.

sqlite3 binds an exact ``int``, ``float``, ``str`` or ``bytearray`` directly; anything
else, ``None`` included, goes through its adapter lookup (``__adapt__``,
``__conform__``: two attribute lookups that fail, each raising and clearing an
``AttributeError``). The journal's general statements name every column, so a plain
input row bound nine ``None`` values and a stored outcome three. This times, on a real
journal on tmpfs, each general statement against the one that names no NULL
(``_INSERT_PLAIN``, ``_UPDATE_STORED``), best of 5, µs a row:

    python benchmarks/bench_journal_binds.py --rows 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiograb._store import journal as j


def _best(setup: Callable[[], object], run: Callable[[], object], repeat: int = 5) -> float:
    """The best of ``repeat`` timings of ``run``, each after an untimed ``setup``."""
    best = float("inf")
    for _ in range(repeat):
        setup()
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    n = p.parse_args().rows
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        journal = j.Journal(Path(folder) / j.JOURNAL_NAME)
        db = journal.connection

        def batch(sql: str, values: list[tuple[Any, ...]]) -> Callable[[], None]:
            def run() -> None:
                db.execute("BEGIN")
                db.executemany(sql, values)
                db.execute("COMMIT")

            return run

        def empty() -> None:
            db.execute("DELETE FROM items")

        rows = [
            j.NewRow(f"http://127.0.0.1/{i}.jpg", f"http://127.0.0.1/{i}.jpg", i) for i in range(n)
        ]
        general = [r.values() for r in rows]
        plain = [(r.key, r.url, r.line, "pending", r.kind) for r in rows]
        for name, sql, values in [("insert, every column", j._INSERT, general),
                                  ("insert, no NULL", j._INSERT_PLAIN, plain)]:  # fmt: skip
            print(f"{name:22s} {_best(empty, batch(sql, values)) / n * 1e6:6.2f} us a row")
        sha = "ab" * 32
        full = [
            ("ok", f"{i % 256:02x}/{i}.jpg", 14000, sha, "image/jpeg", 200, None, None, 1,
             1.7e9, 0.05, f"http://127.0.0.1/{i}.jpg", None, i + 1)
            for i in range(n)
        ]  # fmt: skip
        stored = [(*u[1:6], *u[8:12], u[13]) for u in full]
        refill = batch(j._INSERT_PLAIN, plain)

        def pending_rows() -> None:
            empty()
            refill()

        updates: list[tuple[str, str, list[tuple[Any, ...]]]] = [
            ("update, every column", j._UPDATE, full),
            ("update, no NULL", j._UPDATE_STORED, stored),
        ]
        for name, sql, values in updates:
            took = _best(pending_rows, batch(sql, values))
            print(f"{name:22s} {took / n * 1e6:6.2f} us a row")
        journal.close()


if __name__ == "__main__":
    main()
