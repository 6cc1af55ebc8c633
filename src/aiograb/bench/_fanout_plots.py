"""The fan-out section's pictures: a latency CDF per client at each W, and CPU per
call and OS threads per client. Drawn with matplotlib's Agg backend (``bench`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._plots import DPI, Plot

__all__ = ["FANOUT_COLORS", "plot_fanout_cdf", "plot_fanout_resources"]

FANOUT_COLORS = {
    "aiograb": "#1f77b4",
    "aiograb-hedged": "#17becf",
    "aiograb-aiohttp": "#aec7e8",
    "aiograb-aiohttp-hedged": "#9edae5",
    "aiohttp": "#2ca02c",
    "pycurl": "#8c564b",
    "httpx": "#9467bd",
    "threads": "#ff7f0e",
}


def _rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in results.get("rows", []) if "failed" not in r]


def plot_fanout_cdf(fanout: dict[str, Any], out: Path) -> Plot | None:
    """One panel per W: the share of endpoint requests answered within x ms, per client."""
    from matplotlib.figure import Figure

    rows = _rows(fanout)
    widths = sorted({r["width"] for r in rows})
    if not widths:
        return None
    fig = Figure(figsize=(4.2 * len(widths), 3.8), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(widths), squeeze=False)[0]
    for ax, width in zip(axes, widths, strict=True):
        for row in (r for r in rows if r["width"] == width):
            xs = sorted(row["latencies_ms"])
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            style = "--" if row["client"] == "aiograb-hedged" else "-"
            color = FANOUT_COLORS.get(row["client"], "#333")
            ax.step(xs, ys, where="post", ls=style, color=color, label=row["client"])
        ax.axvline(400, color="#999", lw=0.8, ls=":")  # the backend's tail latency
        ax.set_xscale("log")
        ax.set_xlabel("endpoint latency (ms, log); dotted: the 400 ms tail")
        ax.set_ylabel("share of endpoint requests")
        ax.set_title(f"W = {width} calls per request")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Fan-out endpoint latency CDF: the slowest call sets the endpoint's latency")
    path = out / "fanout-cdf.png"
    fig.savefig(path, format="png", dpi=DPI)
    caption = (
        "Share of endpoint requests (each one W backend calls, median 20 ms, a 0.1 % tail of "
        "400 ms, dotted) finished within x ms, per client; dashed: aiograb hedged at the p95 "
        "latency. Without a hedge, an endpoint request with a 400 ms call in it waits for it "
        "(63 % of them at W = 1000); a client that is CPU-bound is slower than that anyway."
    )
    return Plot(path, "Fan-out latency CDF", caption)


def plot_fanout_resources(fanout: dict[str, Any], out: Path) -> Plot | None:
    """CPU µs per call and peak OS threads per client, at the largest W measured."""
    from matplotlib.figure import Figure

    rows = _rows(fanout)
    if not rows:
        return None
    width = max(r["width"] for r in rows)
    at = [r for r in rows if r["width"] == width]
    names = [r["client"] for r in at]
    colors = [FANOUT_COLORS.get(n, "#333") for n in names]
    fig = Figure(figsize=(10.0, 3.6), dpi=DPI, layout="constrained")
    ax_cpu, ax_threads = fig.subplots(1, 2)
    bars = ax_cpu.bar(names, [r["cpu_us_per_call"] for r in at], color=colors)
    ax_cpu.bar_label(bars, fmt="%.0f", fontsize=8)
    ax_cpu.set_ylabel("client CPU µs per backend call")
    ax_cpu.set_title("CPU per call")
    bars = ax_threads.bar(names, [r["peak_threads"] for r in at], color=colors)
    ax_threads.bar_label(bars, fmt="%d", fontsize=8)
    ax_threads.set_yscale("log")
    ax_threads.set_ylabel("peak OS threads (log)")
    ax_threads.set_title("OS threads")
    for ax in (ax_cpu, ax_threads):
        ax.tick_params(axis="x", labelsize=8, rotation=15)
    fig.suptitle(f"Fan-out clients at W = {width}: CPU per call and OS threads")
    path = out / "fanout-resources.png"
    fig.savefig(path, format="png", dpi=DPI)
    caption = (
        f"Client CPU per backend call and peak OS threads at W = {width}, per client (the "
        "process's own CPU during the measured rounds; threads polled from /proc)."
    )
    return Plot(path, "Fan-out CPU and threads", caption)
