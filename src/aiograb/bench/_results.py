"""``results.json``: the machine, the configuration, every raw number, and what is
derived from them (memory per request in flight, the acceptance figures).
``check_results`` is the schema, as code: it lists what is missing or mistyped.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import sys
from importlib import metadata
from typing import Any

from aiograb import __about__
from aiograb._core.loop import loop_name

from ._config import BenchConfig

__all__ = ["SCHEMA_VERSION", "check_results", "derive", "machine_info", "new_results"]

SCHEMA_VERSION = 1
ACCEPT_LATENCY_MS = 200.0
ACCEPT_C = 1000
ACCEPT_THREADS_C = 100


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Where the numbers come from: cores, CPU, OS, Python, library versions, load."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "loop": loop_name(),
        "versions": {
            d: _version(d) for d in ("aiohttp", "uvloop", "urllib3", "pillow", "matplotlib")
        },
        "aiograb": __about__.__version__,
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _config_json(config: BenchConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    data["out"] = str(config.out)
    data["workdir"] = str(config.workdir) if config.workdir is not None else None
    return data


def new_results(config: BenchConfig) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": _config_json(config),
        "sweep": [],
        "timelines": {},
        "cpu": None,
        "peers": [],
    }


def _find(rows: list[dict[str, Any]], engine: str, latency: float, c: int) -> dict[str, Any] | None:
    for row in rows:
        if row["engine"] == engine and row["latency_ms"] == latency and row["concurrency"] == c:
            return row
    return None


def memory_per_inflight(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(peak RSS at C − peak RSS at the smallest C) / (C − smallest C), per engine and latency;
    the same for virtual memory (address space reserved, such as thread stacks)."""
    out = []
    keys = sorted({(r["engine"], r["latency_ms"]) for r in rows if r["engine"] != "sync"})
    for engine, latency in keys:
        runs = sorted(
            (r for r in rows if r["engine"] == engine and r["latency_ms"] == latency),
            key=lambda r: r["concurrency"],
        )
        base = runs[0]
        for r in runs[1:]:
            more = r["concurrency"] - base["concurrency"]
            per = (r["peak_rss_mb"] - base["peak_rss_mb"]) * 1024 / more
            vm = (r.get("peak_vm_mb", 0.0) - base.get("peak_vm_mb", 0.0)) * 1024 / more
            out.append(
                {
                    "engine": engine,
                    "latency_ms": latency,
                    "concurrency": r["concurrency"],
                    "base_concurrency": base["concurrency"],
                    "kb_per_request": round(per, 2),
                    "vm_kb_per_request": round(vm, 2),
                }
            )
    return out


def _figure(
    name: str, expected: str, measured: str | None, met: bool | None, note: str = ""
) -> dict[str, Any]:
    return {"name": name, "expected": expected, "measured": measured, "met": met, "note": note}


def acceptance(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's expectations, checked against this run (``met`` is None when not measured)."""
    rows, lat = results["sweep"], ACCEPT_LATENCY_MS
    missing = f"not in this run's grid (needs {lat:g} ms and C={ACCEPT_THREADS_C},{ACCEPT_C})"
    figures = []
    a = _find(rows, "async", lat, ACCEPT_C)
    t100 = _find(rows, "threads", lat, ACCEPT_THREADS_C)
    if a and t100 and t100["files_per_s"]:
        ratio = a["files_per_s"] / t100["files_per_s"]
        note = ""
        if ratio < 5 and a["cpu_ms_per_file"]:
            ceiling = 1000 / a["cpu_ms_per_file"]
            note = (
                f"CPU-bound: async spent {a['cpu_ms_per_file']:.2f} ms of CPU per file, so one "
                f"loop on one core tops out near {ceiling:,.0f} files/s; 5x needs "
                f"{5 * t100['files_per_s']:,.0f} "
                f"(the latency bound is {a['concurrency'] * 1000 / lat:,.0f})"
            )
        figures.append(_figure(
            "async(1000) / threads(100) files/s at 200 ms", ">= 5",
            f"{ratio:.2f} ({a['files_per_s']:.0f} / {t100['files_per_s']:.0f})", ratio >= 5, note,
        ))  # fmt: skip
    else:
        figures.append(
            _figure("async(1000) / threads(100) files/s at 200 ms", ">= 5", None, None, missing)
        )
    mem = {
        (m["engine"], m["latency_ms"], m["concurrency"]): m for m in results["memory_per_inflight"]
    }
    ma, mt = mem.get(("async", lat, ACCEPT_C)), mem.get(("threads", lat, ACCEPT_C))
    if ma and mt and mt["kb_per_request"] > 0:
        ratio = ma["kb_per_request"] / mt["kb_per_request"]
        note = ""
        if ratio > 0.10:
            note = (
                "RSS counts touched pages only: both engines hold each body in memory while it "
                "streams; a thread's 8 MB stack is reserved, not resident (virtual memory per "
                f"request: threads {mt.get('vm_kb_per_request', 0) / 1024:.1f} MB, async "
                f"{ma.get('vm_kb_per_request', 0) / 1024:.2f} MB)"
            )
        figures.append(_figure(
            "async / threads memory per request in flight at 200 ms, C=1000", "<= 0.10",
            f"{ratio:.3f} ({ma['kb_per_request']:.1f} KB / {mt['kb_per_request']:.1f} KB)",
            ratio <= 0.10, note,
        ))  # fmt: skip
    else:
        figures.append(
            _figure(
                "async / threads memory per request in flight at 200 ms, C=1000",
                "<= 0.10",
                None,
                None,
                missing,
            )
        )
    if a:
        figures.append(_figure(
            "async peak OS threads at 200 ms, C=1000", "<= 2", str(a["peak_threads"]),
            a["peak_threads"] <= 2,
        ))  # fmt: skip
    else:
        figures.append(
            _figure("async peak OS threads at 200 ms, C=1000", "<= 2", None, None, missing)
        )
    s = _find(rows, "sync", lat, 1)
    if s:
        ideal = 1000 / lat
        share = s["files_per_s"] / ideal
        figures.append(_figure(
            "sync files/s at 200 ms vs 1/latency", f"≈ {ideal:g} files/s",
            f"{s['files_per_s']:.2f} files/s ({share:.0%} of 1/latency)", 0.8 <= share <= 1.05,
        ))  # fmt: skip
    else:
        figures.append(
            _figure("sync files/s at 200 ms vs 1/latency", "≈ 5 files/s", None, None, missing)
        )
    return figures


def derive(results: dict[str, Any]) -> None:
    """Add what follows from the raw numbers: memory per in-flight request, acceptance."""
    results["memory_per_inflight"] = memory_per_inflight(results["sweep"])
    results["acceptance"] = acceptance(results)
    results["machine"]["load_average_end"] = (
        list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    )
    results["errors"] = sum(r["failed"] for r in results["sweep"]) + sum(
        1 for r in results["sweep"] if r["error"]
    )


# -- the schema ------------------------------------------------------------------------------

_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_TOP = {
    "schema": int, "created": str, "machine": dict, "config": dict, "sweep": list,
    "timelines": dict, "peers": list, "memory_per_inflight": list, "acceptance": list,
    "errors": int, "duration_s": _NUM,
}  # fmt: skip
_MACHINE = {"cores": int, "cpu": str, "python": str, "loop": str, "versions": dict}
_SWEEP = {
    "engine": str, "latency_ms": _NUM, "concurrency": int, "n_requested": int, "n": int,
    "capped": bool, "ok": int, "failed": int, "errors": dict, "elapsed_s": _NUM,
    "files_per_s": _NUM, "latency_bound_files_per_s": _OPT_NUM, "cpu_s": _NUM,
    "cpu_ms_per_file": _OPT_NUM, "peak_threads": int, "peak_rss_mb": _NUM, "peak_vm_mb": _NUM,
    "server_cpu_s": _NUM, "loop_lag_ms": (dict, type(None)), "exit_code": int,
    "error": (str, type(None)),
}  # fmt: skip
_TIMELINE = {
    "latency_ms": _NUM, "concurrency": int, "n": int, "capped": bool, "ok": int,
    "threads": list, "max_in_flight": int, "max_in_flight_one_thread": int, "requests": list,
}  # fmt: skip
_CPU_MODE = {
    "mode": str, "ok": int, "processed": int, "files_per_s": _NUM, "total_s": _NUM,
    "loop_lag_ms": (dict, type(None)), "lag_series": list, "processed_on": str,
}  # fmt: skip
_FANOUT_ROW = {
    "client": str, "width": int, "rounds": int, "p50_ms": _NUM, "p99_ms": _NUM,
    "overhead_ms": _NUM, "cpu_us_per_call": _NUM, "extra_pct": _NUM, "peak_threads": int,
    "peak_rss_mb": _NUM, "errors": int, "latencies_ms": list,
}  # fmt: skip
_ACCEPT = {"name": str, "expected": str, "measured": (str, type(None)), "met": (bool, type(None))}


def _check_keys(where: str, obj: Any, spec: dict[str, Any], problems: list[str]) -> None:
    if not isinstance(obj, dict):
        problems.append(f"{where}: expected an object, got {type(obj).__name__}")
        return
    for key, kind in spec.items():
        if key not in obj:
            problems.append(f"{where}.{key}: missing")
        elif not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            problems.append(f"{where}.{key}: {type(obj[key]).__name__} is not {kind}")


def check_results(data: Any) -> list[str]:
    """Problems with a ``results.json`` document (empty when it is valid)."""
    problems: list[str] = []
    _check_keys("results", data, _TOP, problems)
    if problems:
        return problems
    if data["schema"] != SCHEMA_VERSION:
        problems.append(f"results.schema: {data['schema']} is not {SCHEMA_VERSION}")
    _check_keys("machine", data["machine"], _MACHINE, problems)
    for i, row in enumerate(data["sweep"]):
        _check_keys(f"sweep[{i}]", row, _SWEEP, problems)
    for i, row in enumerate(data["peers"]):
        _check_keys(f"peers[{i}]", row, _SWEEP, problems)
    for engine, tl in data["timelines"].items():
        _check_keys(f"timelines.{engine}", tl, _TIMELINE, problems)
        for j, req in enumerate(tl.get("requests", [])[:10_000]):
            if not (isinstance(req, list) and len(req) == 5 and req[0] <= req[1] <= req[2]):
                problems.append(f"timelines.{engine}.requests[{j}]: not [start<=first<=end,t,ok]")
                break
    if data.get("cpu") is not None:
        for mode, row in data["cpu"].get("modes", {}).items():
            _check_keys(f"cpu.modes.{mode}", row, _CPU_MODE, problems)
    for i, fig in enumerate(data["acceptance"]):
        _check_keys(f"acceptance[{i}]", fig, _ACCEPT, problems)
    for i, row in enumerate((data.get("fanout") or {}).get("rows", [])):
        if "failed" not in row:  # a failed run is counted in errors and says why
            _check_keys(f"fanout.rows[{i}]", row, _FANOUT_ROW, problems)
    return problems
