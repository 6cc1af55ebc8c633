"""Issue 10: hostile input side by side, before and after, in one run.

1. ``url(`` repeated in a style attribute / stylesheet: the old CSS pattern (copied
   here) against ``extract_css`` now, at n and 2n: a quadratic pattern takes ~4x
   for 2x input, a linear one ~2x.
2. ``<picture>`` with n ``<source>``: the old per-source ``css_first("img")`` lookup
   (re-done here on the same tree) against ``extract_html`` now.
3. Reading a txt URL list: ``open_source`` now (bounded line reads, CR-only check,
   line accounting) against the reader before issue 10, loaded from a file:

    git show 5ff356e:src/aiograb/_get/sources.py > /tmp/old_sources.py
    .venv/bin/python benchmarks/bench_hostile.py --n 5000 --lines 1000000 \
        --baseline-sources /tmp/old_sources.py
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from aiograb._crawl.extract import extract_css, extract_html
from aiograb._get.sources import open_source

_OLD_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.IGNORECASE)


def _seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _old_css(text: str) -> int:
    return sum(1 for _ in _OLD_CSS_URL.finditer(text))


def _old_picture(html: str) -> int:
    tree = LexborHTMLParser(html)
    n = 0
    for node in tree.css("source"):
        parent = node.parent
        if parent is not None and parent.tag == "picture":
            parent.css_first("img")  # what the old code did for every <source>
            n += 1
    return n


def _picture(n: int) -> str:
    sources = "".join(f'<source srcset="/i{i}.jpg 1x">' for i in range(n))
    return f'<picture>{sources}<img src="/a.jpg" alt="A"></picture>'


def _row(name: str, before: tuple[float, float], after: tuple[float, float]) -> str:
    (b1, b2), (a1, a2) = before, after
    return (
        f"| {name} | {b1:.3f} / {b2:.3f} s (x{b2 / b1:.1f}) | {a1:.4f} / {a2:.4f} s "
        f"(x{a2 / a1:.1f}) | **{b2 / a2:,.0f}x** at 2n |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--baseline-sources", type=Path, help="sources.py before issue 10")
    args = ap.parse_args()
    n = args.n
    print("| input | before: n / 2n (growth) | after: n / 2n (growth) | speed-up |")
    print("| --- | --- | --- | --- |")
    css = [("url(" * k) for k in (n, 2 * n)]
    before = tuple(_seconds(lambda t=t: _old_css(t)) for t in css)
    after = tuple(_seconds(lambda t=t: extract_css(t)) for t in css)
    print(_row(f"`url(` x{n:,} in a stylesheet", before, after))  # type: ignore[arg-type]
    pages = [_picture(k) for k in (4 * n, 8 * n)]
    before = tuple(_seconds(lambda h=h: _old_picture(h)) for h in pages)
    after = tuple(_seconds(lambda h=h: extract_html(h.encode(), None)) for h in pages)
    print(_row(f"`<picture>` with {4 * n:,} `<source>`", before, after))  # type: ignore[arg-type]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "urls.txt"
        with path.open("w") as fh:
            for i in range(args.lines):
                fh.write(f"http://127.0.0.1:8080/img/{i}.jpg\n")
        old = _load(args.baseline_sources) if args.baseline_sources else None
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(5):  # alternating rounds: the machine's load hits both alike
            if old is not None:
                times["before"].append(_seconds(lambda: sum(1 for _ in old(path))))
            times["after"].append(_seconds(lambda: sum(1 for _ in open_source(path))))
    after_s = sorted(times["after"])[2]
    line = f"\ntxt reader, {args.lines:,} lines (median of 5): after {after_s:.2f} s"
    if times["before"]:
        before_s = sorted(times["before"])[2]
        line += f", before {before_s:.2f} s: ratio after/before **{after_s / before_s:.2f}**"
    print(line)


def _load(path: Path) -> Callable[[Path], object]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_sources", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_sources"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.open_source  # type: ignore[no-any-return]


if __name__ == "__main__":
    main()
