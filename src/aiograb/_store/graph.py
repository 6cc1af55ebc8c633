"""The crawl's link graph, exported from the journal: page -> links, page -> images.

``pages.jsonl`` has one line per page row (fetched, failed or skipped), in the
order the crawl found them::

    {"url": ..., "state": "ok", "status": 200, "depth": 1, "error": null,
     "found_on": 3, "links": [...], "images": [{"url": ..., "alt": ...}],
     "stylesheets": [...]}

``graph.csv`` (``--format csv``) has one edge a line: ``page,target,kind,alt``.
Both are written atomically at the end of every run (resumes included), so the
graph can be re-used without fetching anything again.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from aiograb._store.atomic import replacing
from aiograb._store.crawl import CrawlTables

__all__ = ["GRAPH_NAMES", "write_graph"]

GRAPH_NAMES = {"jsonl": "pages.jsonl", "csv": "graph.csv"}


def write_graph(tables: CrawlTables, path: Path, fmt: str = "jsonl") -> int:
    """Write the graph to ``path`` (via a temporary file); returns the pages written."""
    with replacing(path) as tmp:
        return _write(tables, tmp, fmt)


def _write(tables: CrawlTables, tmp: Path, fmt: str) -> int:
    n = 0
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            out = csv.writer(fh)
            out.writerow(["page", "target", "kind", "alt"])
            for page, edges in tables.pages_with_links():
                n += 1
                for target, kind, alt in edges:
                    out.writerow([page["url"], target, kind, alt or ""])
        else:
            for page, edges in tables.pages_with_links():
                n += 1
                page["links"] = [t for t, kind, _ in edges if kind == "page"]
                page["images"] = [
                    {"url": t, "alt": alt} for t, kind, alt in edges if kind in ("image", "data")
                ]
                page["stylesheets"] = [t for t, kind, _ in edges if kind == "css"]
                fh.write(json.dumps(page, ensure_ascii=False))
                fh.write("\n")
    return n
