"""The URL normal form's cost per URL: two source trees side by side, in one run.

Each round times, in a fresh interpreter per tree (``PYTHONPATH=<tree>/src``, the same
interpreter and dependencies), alternating which tree goes first:

- ``get``: an input list's URL to its journal key (``to_journal``'s call);
- ``crawl``: an absolute link to its key (seeds, sitemaps);
- ``crawl-rel``: a relative link resolved against its page (every ``<img src>``).

The URLs are 40,000 realistic ones (paths, queries, percent-escapes, some non-ASCII),
the same for both trees. Reported: the median µs per URL of each tree and after/before.

    git worktree add /tmp/before 5ff356e      # or: git archive 5ff356e src | tar -x -C /tmp/before
    python benchmarks/bench_urls.py --before /tmp/before --after . --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

# Runs in the child: works with either tree (before, ``normalize_url`` took a yarl base).
_CHILD = r"""
import json, sys, time
from yarl import URL
from aiograb._core import urls
from aiograb._crawl.scope import normalize_url

n = int(sys.argv[1])
def absolute_url(i):
    if i % 3:
        return f"https://cdn{i % 50}.example.org/p/{i}/IMG_{i:05d}.jpg?w={i % 7}&sig=ab%2Fc{i}"
    return f"http://127.0.0.1:8080/img/{i}.jpg" if i % 2 else f"https://bücher.de/a b/{i}.png"
absolute = [absolute_url(i) for i in range(n)]
relative = [f"../img/{i}-{'café' if i % 5 == 0 else 'x'}.jpg?v={i}" for i in range(n)]
base = "https://www.example.org/gallery/page-1.html"
get = getattr(urls, "normalize", None) or (lambda u: str(urls.parse_url(u)))
page = base if hasattr(urls, "normalize") else URL(base)  # the WHATWG tree takes a str
runs = {
    "get": lambda: [get(u) for u in absolute],
    "crawl": lambda: [normalize_url(u) for u in absolute],
    "crawl-rel": lambda: [normalize_url(u, page) for u in relative],
}
out = {}
for name, fn in runs.items():
    fn()  # warm caches (yarl's, the IDNA codec's)
    t0 = time.perf_counter()
    fn()
    out[name] = (time.perf_counter() - t0) / n * 1e6
print(json.dumps(out))
"""


def _time(tree: Path, n: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str((tree / "src").resolve()))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr.strip()}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--before", type=Path, required=True, help="the baseline source tree")
    parser.add_argument("--after", type=Path, default=Path("."), help="the tree to compare")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=40_000, help="URLs per workload")
    args = parser.parse_args()
    trees = {"before": args.before, "after": args.after}
    times: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for r in range(args.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for which in order:
            for name, us in _time(trees[which], args.n).items():
                times[which].setdefault(name, []).append(us)
    print("| workload | before µs/URL | after µs/URL | after/before |")
    print("| --- | --- | --- | --- |")
    for name in times["before"]:
        b, a = statistics.median(times["before"][name]), statistics.median(times["after"][name])
        print(f"| {name} | {b:.2f} | {a:.2f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
