"""The report: ``results.json``, the PNG plots, ``report.md`` and a self-contained
``report.html`` (images embedded, no network, opens offline).

Both documents are rendered from one list of blocks (headings, paragraphs,
tables, figures). The HTML page checks itself when it loads: it writes into
``<body data-images-total data-images-rendered data-errors>`` how many images it
has, how many decoded, and any script error, so a headless browser can verify it.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._plots import Plot, draw_all

__all__ = ["write_report"]

Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class _H:
    text: str
    level: int = 2


@dataclass(frozen=True, slots=True)
class _P:
    text: str


@dataclass(frozen=True, slots=True)
class _Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]


Block = _H | _P | _Table | Plot


def _fmt(value: Cell) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    return str(value)


# -- content ---------------------------------------------------------------------------------


def _machine(results: dict[str, Any]) -> list[Block]:
    m = results["machine"]
    v = m["versions"]
    load0 = m.get("load_average_start") or []
    load1 = m.get("load_average_end") or []
    load = f"{load0[0]:.2f} at start, {load1[0]:.2f} at end" if load0 and load1 else "unknown"
    return [
        _H("Machine"),
        _Table(
            ["", ""],
            [
                ["cores", m["cores"]],
                ["CPU", m["cpu"]],
                ["OS", m.get("os", "")],
                ["Python", f"{m.get('implementation', '')} {m['python']}"],
                ["event loop", m["loop"]],
                ["aiohttp / uvloop / urllib3", f"{v['aiohttp']} / {v['uvloop']} / {v['urllib3']}"],
                ["Pillow / matplotlib", f"{v['pillow']} / {v['matplotlib']}"],
                ["aiograb", m["aiograb"]],
                ["1-minute load average", load],
                ["bench duration", f"{results['duration_s']:.0f} s"],
            ],
        ),
    ]


def _acceptance(results: dict[str, Any]) -> list[Block]:
    marks = {True: "met", False: "NOT met", None: "not measured"}
    rows: list[list[Cell]] = [
        [
            f["name"],
            f["expected"],
            f["measured"],
            marks[f["met"]] + (f" ({f['note']})" if f.get("note") else ""),
        ]
        for f in results["acceptance"]
    ]
    return [
        _H("The argument, in four numbers"),
        _P(
            "The expectations of the argument (at 200 ms latency), as measured in this run. "
            "A figure that is not met is reported, not tuned away: see the tables for why."
        ),
        _Table(["figure", "expected", "measured", "verdict"], rows),
    ]


def _sweep(results: dict[str, Any]) -> list[Block]:
    rows: list[list[Cell]] = []
    for r in results["sweep"] + results.get("peers", []):
        n = (
            f"{r['n']} (capped from {r['n_requested']}; rate extrapolated)"
            if r["capped"]
            else r["n"]
        )
        errors = r["failed"] + (1 if r.get("error") else 0)
        note = r.get("error") or r.get("note") or ""
        rows.append([
            r["engine"], r["latency_ms"], r["concurrency"], r["files_per_s"],
            r["latency_bound_files_per_s"], r["cpu_ms_per_file"], r["peak_threads"],
            r["peak_rss_mb"], (r.get("loop_lag_ms") or {}).get("p99"), n, errors, note,
        ])  # fmt: skip
    mem = [
        [
            m["engine"],
            m["latency_ms"],
            m["concurrency"],
            m["kb_per_request"],
            m["vm_kb_per_request"] / 1024,
        ]
        for m in results["memory_per_inflight"]
    ]
    return [
        _H("Sweep: every engine at every latency and concurrency"),
        _P(
            "files/s is files stored divided by the run's time inside the client (journal "
            "and manifest included, interpreter start-up not). The latency bound C/L is the "
            "most any client can do with C requests in flight. CPU is the client process "
            "tree's user+system time during the run; peak RSS and OS threads are the client "
            "process's. Loop lag is how late a 10 ms timer on the async engine's loop fired. "
            "The sync engine runs once per latency (concurrency does not apply)."
        ),
        _Table(
            [
                "engine",
                "latency ms",
                "C",
                "files/s",
                "bound C/L",
                "CPU ms/file",
                "peak threads",
                "peak RSS MB",
                "loop lag p99 ms",
                "N",
                "errors",
                "note",
            ],
            rows,
        ),
        _H("Memory per request in flight", 3),
        _P(
            "(peak RSS at C − peak RSS at the smallest C) / (C − smallest C), in KB: what one "
            "more request in flight costs the client in resident memory; and the same for "
            "virtual memory (address space reserved, e.g. a thread's stack), in MB. RSS counts "
            "only touched pages, so a thread's mostly unused 8 MB stack shows in the second."
        ),
        _Table(["engine", "latency ms", "C", "RSS KB per request", "virtual MB per request"], mem),
    ]


def _timelines(results: dict[str, Any]) -> list[Block]:
    tls = results.get("timelines") or {}
    if not tls:
        return []
    rows: list[list[Cell]] = [
        [e, t["n"], t["concurrency"], len(t["threads"]), t["max_in_flight"],
         t["max_in_flight_one_thread"]]
        for e, t in tls.items()
    ]  # fmt: skip
    return [
        _H("Overlap per engine", 3),
        _Table(
            [
                "engine",
                "requests",
                "C",
                "OS threads used",
                "max in flight",
                "max in flight on one thread",
            ],
            rows,
        ),
    ]


def _cpu(results: dict[str, Any]) -> list[Block]:
    cpu = results.get("cpu")
    if not cpu:
        return []
    rows: list[list[Cell]] = []
    for mode, m in cpu["modes"].items():
        lag = m["loop_lag_ms"] or {}
        rows.append([
            mode, m["files_per_s"], lag.get("p50"), lag.get("p99"), lag.get("max"),
            f"{m['processed']}/{m['ok']}", m["processed_on"], m["run_cpu_s"],
        ])  # fmt: skip
    return [
        _H("CPU on the loop vs in a process pool", 3),
        _P(
            f"{cpu['n']} {cpu['size']} images at {cpu['latency_ms']:g} ms latency, "
            f"C={cpu['concurrency']}; each file is decoded and resized to {cpu['thumb']} px "
            f"with Pillow, inline in the download's completion hook (on the event loop) or in "
            f"a pool of {cpu['workers']} worker processes (started before the run, nice 10)."
        ),
        _Table(
            [
                "mode",
                "files/s",
                "lag p50 ms",
                "lag p99 ms",
                "lag max ms",
                "processed",
                "processed on",
                "CPU s",
            ],
            rows,
        ),
    ]


def _fanout(results: dict[str, Any], plots: dict[str, Plot]) -> list[Block]:
    """aiograb bench --fanout (#12): a service's fan-out of W calls per endpoint request."""
    fanout = results.get("fanout")
    if not fanout:
        return []
    blocks: list[Block] = [
        _H("Service fan-out: W backend calls per endpoint request"),
        _P(
            "A backend in its own process answers each call after a reproducible latency "
            "(log-normal, 20 ms median, a 0.1 % tail of 400 ms; a repeated request for a key "
            "takes the median, like another replica). Each client makes rounds of W calls "
            "(one endpoint request each) in a fresh process; CPU is the client's own."
        ),
    ]
    blocks += [plots[n] for n in ("fanout-cdf.png", "fanout-resources.png") if n in plots]
    headers = ["client", "W", "p50 ms", "p99 ms", "over slowest ms", "CPU µs/call", "extra %"]
    headers += ["OS threads", "RSS MB"]
    keys = ["client", "width", "p50_ms", "p99_ms", "overhead_ms", "cpu_us_per_call"]
    keys += ["extra_pct", "peak_threads", "peak_rss_mb"]
    rows: list[list[Cell]] = [[r[k] for k in keys] for r in fanout["rows"] if "failed" not in r]
    blocks.append(_Table(headers, rows))
    if fanout.get("skipped"):
        blocks.append(_P("Skipped: " + "; ".join(fanout["skipped"]) + "."))
    return blocks


def _method(results: dict[str, Any]) -> list[Block]:
    peers = results.get("peers_found") or []
    wanted = results["config"].get("peers")
    peer_text = (
        f"Peers run on the same workload: {', '.join(peers)}."
        if peers
        else (
            "No peer (curl, aria2c) was found on PATH."
            if wanted
            else "Peers were not run (--peers)."
        )
    )
    return [
        _H("How it was measured"),
        _P(
            "The local test server (aiograb.testing) runs in its own process and answers every "
            "image after the requested latency; each run of each engine is a fresh child process "
            "(python -m aiograb.bench._child) that fetches the images into a temporary folder "
            f"under {results['config'].get('workdir') or 'the system temp dir'} "
            "with the real journal, sinks and manifest. CPU time comes from the child's rusage "
            "(its process tree, not the server); peak RSS (VmHWM), virtual memory (VmPeak) and "
            "OS threads from /proc; the server's CPU is recorded per run. Runs whose predicted "
            "time exceeds the per-run budget are capped in N and their rate extrapolated. Within a "
            "sweep point the engines take turns going first. " + peer_text
        ),
    ]


def _blocks(results: dict[str, Any], plots: list[Plot], command: str) -> list[Block]:
    by_name = {p.path.name: p for p in plots}
    blocks: list[Block] = [
        _H("aiograb bench", 1),
        _P(
            "Why one event loop beats a thread pool for IO-bound work, and why CPU work belongs "
            f"in a process pool beside it. Made by `{command}` on {results['created']}; every "
            "raw number is in results.json."
        ),
        *_acceptance(results),
    ]
    for name in ("throughput.png", "resources.png"):
        if name in by_name:
            blocks.append(by_name[name])
    blocks += _sweep(results)
    if "timeline.png" in by_name:
        blocks += [_H("Timelines: who waits where"), by_name["timeline.png"]]
    blocks += _timelines(results)
    if "cpu.png" in by_name:
        blocks += [_H("CPU work: on the loop or beside it"), by_name["cpu.png"]]
    blocks += _cpu(results)
    blocks += _fanout(results, by_name)
    blocks += _machine(results) + _method(results)
    return blocks


# -- rendering -------------------------------------------------------------------------------


def _markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, _H):
            out.append(f"{'#' * b.level} {b.text}\n")
        elif isinstance(b, _P):
            out.append(b.text + "\n")
        elif isinstance(b, _Table):
            out.append("| " + " | ".join(b.headers) + " |")
            out.append("|" + "---|" * len(b.headers))
            for row in b.rows:
                cells = (_fmt(c).replace("|", "\\|") for c in row)
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        else:
            out.append(f"![{b.title}]({b.path.name})\n")
            out.append(f"*{b.title}.* {b.caption}\n")
    return "\n".join(out)


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.6em 0 1.2em;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}
th{background:#f3f3f3}
figure{margin:1.2em 0}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:14px;color:#444}
code{background:#f3f3f3;padding:0 3px}
"""

# Checks the page itself once loaded; the result lands in <body data-*> for a
# headless browser's --dump-dom. It logs nothing: any console line is a problem.
_SELF_CHECK = """
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var what = (e.target && e.target.src) || "?";
    errors.push(e.message || ("failed to load " + what.slice(0, 80)));
  }, true);
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
    document.body.setAttribute("data-images-total", String(imgs.length));
    document.body.setAttribute("data-images-rendered", String(ok.length));
    document.body.setAttribute("data-errors", errors.join(" | "));
  });
})();
"""


def _inline_code(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, _H):
            body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, _P):
            body.append(f"<p>{_inline_code(b.text)}</p>")
        elif isinstance(b, _Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            data = base64.b64encode(b.path.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(b.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption><b>{html.escape(b.title)}.</b> {html.escape(b.caption)}"
                "</figcaption></figure>"
            )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{_SELF_CHECK}</script></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(
    results: dict[str, Any], out: str | Path, *, command: str = "aiograb bench"
) -> dict[str, Path]:
    """Write results.json, the PNGs, report.md and report.html into ``out``; return their paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    results_path = folder / "results.json"
    results_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plots = draw_all(results, folder)
    blocks = _blocks(results, plots, command)
    md_path, html_path = folder / "report.md", folder / "report.html"
    md_path.write_text(_markdown(blocks), encoding="utf-8")
    html_path.write_text(_html(blocks, "aiograb bench report"), encoding="utf-8")
    paths = {"results": results_path, "markdown": md_path, "html": html_path}
    paths.update({p.path.stem: p.path for p in plots})
    return paths
