"""How long one link-dense page's discoveries hold the loop: the frontier's batched write
against the row-by-row write it replaced (the same statements one row at a time, the
algorithm of the commit before "Crawl: a document's discoveries are written with one
query..."), side by side, alternating, on a real journal in a temporary folder.

    python benchmarks/bench_frontier.py --links 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from aiograb._crawl.frontier import Discovery, Frontier
from aiograb._store.crawl import CrawlTables
from aiograb._store.journal import JOURNAL_NAME, Journal, NewRow


def discovery(n: int) -> Discovery:
    """Half pages, half images, one edge each: what a 5 MB link-dense page yields."""
    d = Discovery()
    for i in range(n):
        if i % 2:
            url = f"http://a.test/p/{i}"
            d.add_page(NewRow(url, url, kind="page", depth=1, extra={"via": "a"}), "a.test")
        else:
            url = f"http://a.test/i/{i}.jpg"
            d.rows.append(NewRow(url, url, kind="image", depth=1, extra={"alt": f"image {i}"}))
        d.edges.append((url, "a" if i % 2 else "img", None))
    return d


def row_by_row(frontier: Frontier, tables: CrawlTables, page_id: int, d: Discovery) -> int:
    journal, added = tables.journal, 0
    for r in d.rows:
        host = d.page_hosts.get(r.key)
        pending = r.final_state == "pending"
        if pending and r.kind == "page":
            tables.readmit_many([(r.key, r.depth or 0)])
        r = replace(r, found_on=page_id)
        if journal.insert(r) and pending:
            added += 1
            if host is not None:
                tables.count_page(host)
    tables.add_edges(page_id, d.edges)
    return added


def batched(frontier: Frontier, tables: CrawlTables, page_id: int, d: Discovery) -> int:
    writer = frontier.writer(page_id, d)
    writer()
    return writer.added


def measure(name: str, write: Callable[..., int], d: Discovery) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / JOURNAL_NAME)
        tables = CrawlTables(journal)
        frontier = Frontier(tables)
        frontier.add_seeds([(NewRow("http://a.test/", "http://a.test/", kind="page"), "a.test")])
        t0 = time.perf_counter()
        with journal.transaction():
            added = write(frontier, tables, 1, d)
        elapsed = time.perf_counter() - t0
        journal.close()
    assert added == len(d.rows), (name, added)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    d = discovery(args.links)
    times: dict[str, list[float]] = {"row by row": [], "batched": []}
    for r in range(args.rounds):
        order = [("row by row", row_by_row), ("batched", batched)]
        for name, write in order if r % 2 == 0 else order[::-1]:
            times[name].append(measure(name, write, d))
    for name, values in times.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:11} {statistics.median(values):.2f} s  ({each})")
    ratio = statistics.median(times["row by row"]) / statistics.median(times["batched"])
    print(f"batched is {ratio:.2f}x faster for {args.links:,} links")


if __name__ == "__main__":
    main()
