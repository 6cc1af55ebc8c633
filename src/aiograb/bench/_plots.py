"""The report's pictures, drawn with matplotlib's Agg backend (no display needed).

Each ``plot_*`` function takes the results and a folder and returns a ``Plot``:
the PNG's path, its title and a one-sentence caption that says what it shows.
matplotlib is imported only when a plot is drawn (the ``bench`` extra).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Plot", "draw_all", "require_plotting"]

INSTALL_HINT = "pip install 'aiograb[bench]'"


def require_plotting() -> None:
    """Raise ``UsageError`` (with how to install it) when matplotlib is missing."""
    from aiograb._core.errors import UsageError

    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"aiograb bench draws its plots with matplotlib, which is not installed: {INSTALL_HINT}"
        ) from exc


COLORS = {"sync": "#d62728", "threads": "#ff7f0e", "async": "#1f77b4"}
PEER_COLORS = ["#2ca02c", "#9467bd", "#8c564b"]
MODE_COLORS = {"none": "#7f7f7f", "inline": "#d62728", "pool": "#1f77b4"}
DPI = 100
MAX_TIMELINE_LABELS = 36


@dataclass(frozen=True, slots=True)
class Plot:
    path: Path
    title: str
    caption: str


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _color(engine: str, peers: list[str]) -> str:
    if engine in COLORS:
        return COLORS[engine]
    return PEER_COLORS[peers.index(engine) % len(PEER_COLORS)] if engine in peers else "#333333"


def _series(rows: list[dict[str, Any]], engine: str, latency: float) -> list[dict[str, Any]]:
    got = [r for r in rows if r["engine"] == engine and r["latency_ms"] == latency]
    return sorted(got, key=lambda r: r["concurrency"])


def _throughput_axes(ax: Axes, rows: list[dict[str, Any]], latency: float, cs: list[int]) -> None:
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    peers = [e for e in engines if e not in COLORS]
    for engine in engines:
        series = _series(rows, engine, latency)
        if not series:
            continue
        color = _color(engine, peers)
        if engine == "sync":
            ax.axhline(series[0]["files_per_s"], color=color, ls="--", lw=1.5, label="sync (any C)")
            continue
        xs = [r["concurrency"] for r in series]
        ys = [max(r["files_per_s"], 1e-3) for r in series]
        ax.plot(xs, ys, "-", color=color, lw=1.8, label=engine)
        for r, y in zip(series, ys, strict=True):
            face = "white" if r["capped"] else color
            ax.plot(r["concurrency"], y, "o", color=color, mfc=face, ms=6)
    if latency > 0:
        bound = [c * 1000 / latency for c in cs]
        ax.plot(cs, bound, ":", color="black", lw=1.2, label="latency bound C/L")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrency C (requests in flight)")
    ax.set_ylabel("throughput (files/s)")
    ax.set_title(f"server latency {latency:g} ms")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def plot_throughput(results: dict[str, Any], out: Path) -> Plot:
    rows = results["sweep"] + results.get("peers", [])
    latencies = list(results["config"]["latencies_ms"])
    cs = sorted({r["concurrency"] for r in rows} | set(results["config"]["concurrencies"]))
    fig = _figure(4.2 * len(latencies) + 0.4, 4.0)
    axes = fig.subplots(1, len(latencies), squeeze=False)[0]
    for ax, latency in zip(axes, latencies, strict=True):
        _throughput_axes(ax, rows, latency, cs)
    fig.suptitle("Throughput vs concurrency per engine")
    caption = (
        "Files per second against requests in flight (log–log), one panel per server latency: "
        "the dotted line is the most any client can do at that latency (C/L), the event loop "
        "follows it on one thread while the sync engine stays at 1/latency (a hollow marker "
        "is a run capped in N)."
    )
    return Plot(_save(fig, out / "throughput.png"), "Throughput vs concurrency", caption)


def plot_resources(results: dict[str, Any], out: Path) -> Plot:
    rows = [r for r in results["sweep"] if r["engine"] != "sync"]
    latency = max(results["config"]["latencies_ms"])
    fig = _figure(11.0, 7.0)
    (ax_rss, ax_vm), (ax_thr, ax_cpu) = fig.subplots(2, 2)
    panels = (
        (ax_rss, "peak_rss_mb", "peak resident memory, RSS (MB)", "Resident memory"),
        (ax_vm, "peak_vm_mb", "peak virtual memory (MB, log)", "Address space (thread stacks)"),
        (ax_thr, "peak_threads", "peak OS threads (log)", "OS threads"),
        (ax_cpu, "cpu_ms_per_file", "client CPU time per file (ms)", "CPU per file"),
    )
    for engine in ("threads", "async"):
        series = _series(rows, engine, latency)
        xs = [r["concurrency"] for r in series]
        for ax, key, _label, _title in panels:
            ys = [r.get(key) or math.nan for r in series]
            ax.plot(xs, ys, "o-", color=COLORS[engine], label=engine)
    for ax, _key, ylabel, title in panels:
        ax.set_xscale("log")
        ax.set_xlabel("concurrency C (requests in flight)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} at {latency:g} ms latency", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    ax_vm.set_yscale("log")
    ax_thr.set_yscale("log")
    fig.suptitle("What concurrency costs the client process")
    caption = (
        f"Peak resident and virtual memory, peak OS threads and CPU per file of the client at "
        f"{latency:g} ms latency: the thread pool pays an OS thread (and its reserved stack) per "
        "request in flight, the event loop stays on one thread; resident memory grows for both, "
        "since both hold each body while it streams."
    )
    return Plot(
        _save(fig, out / "resources.png"), "Memory, threads and CPU vs concurrency", caption
    )


def _timeline_axes(ax: Axes, engine: str, tl: dict[str, Any]) -> None:
    from matplotlib import colormaps

    reqs = tl["requests"]
    names = tl["threads"]
    palette = colormaps["tab20"]
    colors = [
        COLORS["async"] if name == "main" else palette(i % 20) for i, name in enumerate(names)
    ]
    every = max(1, math.ceil(len(reqs) / MAX_TIMELINE_LABELS))
    for y, (start, first, end, t, ok) in enumerate(reqs):
        color = colors[t] if ok else "#000000"
        ax.barh(y, first - start, left=start, height=0.8, color=color, alpha=0.45, lw=0)
        ax.barh(y, max(end - first, 0.3), left=first, height=0.8, color=color, lw=0)
        if y % every == 0:
            ax.text(end, y, f" {names[t]}", va="center", fontsize=6, color="#333333")
    ax.set_ylim(len(reqs), -1)
    ax.set_ylabel("request (by start)")
    threads = len(names)
    label = "thread" if threads == 1 else "threads"
    done = max((r[2] for r in reqs), default=0.0)
    ax.set_title(
        f"{engine}: {len(reqs)} requests in {done:,.0f} ms, C={tl['concurrency']}, "
        f"{threads} {label} "
        f"({', '.join(names[:3])}{', …' if threads > 3 else ''}); "
        f"max in flight {tl['max_in_flight']}, on one thread {tl['max_in_flight_one_thread']}",
        fontsize=9,
    )
    ax.grid(True, axis="x", alpha=0.3)


def plot_timelines(results: dict[str, Any], out: Path) -> Plot | None:
    timelines = results.get("timelines") or {}
    if not timelines:
        return None
    engines = [e for e in ("sync", "threads", "async") if e in timelines]
    fig = _figure(10.0, 2.9 * len(engines))
    axes = fig.subplots(len(engines), 1, squeeze=False)[:, 0]
    for ax, engine in zip(axes, engines, strict=True):
        _timeline_axes(ax, engine, timelines[engine])
        ax.set_xlabel("time since the first request started (ms)", fontsize=8)
    any_tl = timelines[engines[0]]
    fig.suptitle(
        f"Every request's wait (light) and body (dark) at {any_tl['latency_ms']:g} ms latency, "
        "labelled with its thread"
    )
    caption = (
        "Each bar is one request from start to end (light: waiting for the first byte, dark: "
        "the body), labelled with the OS thread it ran on: the sync engine is a staircase, the "
        "thread pool runs blocks of C on C threads, the event loop overlaps them all on the "
        "main thread."
    )
    return Plot(_save(fig, out / "timeline.png"), "Request timelines", caption)


def plot_cpu(results: dict[str, Any], out: Path) -> Plot | None:
    cpu = results.get("cpu")
    if not cpu:
        return None
    modes = cpu["modes"]
    fig = _figure(11.0, 3.8)
    ax_rate, ax_lag = fig.subplots(1, 2, width_ratios=[1, 2])
    names = list(modes)
    labels = {
        "none": "download\nonly",
        "inline": "inline on\nthe loop",
        "pool": "in a process\npool",
    }
    rates = [modes[m]["files_per_s"] for m in names]
    bars = ax_rate.bar(
        [labels.get(m, m) for m in names], rates, color=[MODE_COLORS.get(m, "#333") for m in names]
    )
    ax_rate.bar_label(bars, fmt="%.0f", fontsize=8)
    ax_rate.set_ylabel("files/s (downloaded and processed)")
    ax_rate.set_title("Throughput")
    for mode in names:
        series = modes[mode]["lag_series"]
        if series:
            xs = [t for t, _ in series]
            ys = [max(v, 0.01) for _, v in series]
            label = labels.get(mode, mode).replace("\n", " ")
            color = MODE_COLORS.get(mode, "#333")
            ax_lag.plot(xs, ys, lw=0.8, color=color, label=label)
            # The lag is sampled while the loop downloads; the pool may finish later.
            ax_lag.axvline(modes[mode]["total_s"], color=color, ls="--", lw=0.8)
    ax_lag.set_yscale("log")
    ax_lag.set_xlabel("time since the run started (s); dashed: every file done")
    ax_lag.set_ylabel("loop lag (ms, log scale)")
    ax_lag.set_title("Event-loop lag: how late a 10 ms timer fires")
    ax_lag.grid(True, alpha=0.3)
    ax_lag.legend(fontsize=8)
    fig.suptitle(
        "Decode+resize per file on the loop vs in a process pool: "
        f"{cpu['n']} {cpu['size']} images, "
        f"C={cpu['concurrency']}, {cpu['latency_ms']:g} ms latency, {cpu['workers']} workers"
    )
    caption = (
        "Files per second and event-loop lag when each downloaded image is decoded and resized "
        "on the event loop versus in a process pool (lag is sampled while the loop downloads; "
        "a dashed line marks when every file was processed): inline CPU work stalls every "
        "download for as long as it runs, so it must leave the loop."
    )
    return Plot(_save(fig, out / "cpu.png"), "CPU on the loop vs in a pool", caption)


def draw_all(results: dict[str, Any], out: Path) -> list[Plot]:
    """Draw every plot the results allow into ``out``; return them in report order."""
    plots = [
        plot_throughput(results, out),
        plot_resources(results, out),
        plot_timelines(results, out),
        plot_cpu(results, out),
    ]
    if results.get("fanout"):  # aiograb bench --fanout (#12)
        from ._fanout_plots import plot_fanout_cdf, plot_fanout_resources

        plots += [
            plot_fanout_cdf(results["fanout"], out),
            plot_fanout_resources(results["fanout"], out),
        ]
    return [p for p in plots if p is not None]
