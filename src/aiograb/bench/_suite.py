"""Running the whole bench: one server process, then every measured run as a child
process, one at a time — the sweep, the timelines, CPU inline vs pool, the peers.

Each run is a fresh process (``_child``) so its CPU time, peak RSS and threads are
its own; its output folder is deleted after it. Within a sweep point the engines
take turns going first, so slow drift of a shared machine does not favour one.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..testing import ServerConfig, ServerProcess
from ._config import BenchConfig, capped_n
from ._cpu import CPU_MODES
from ._measure import ProcessStats, cpu_seconds, measure_process
from ._peers import Peer, find_peers
from ._results import derive, new_results
from ._timeline import timeline_from_raw
from ._workloads import RunSpec, Workload

__all__ = ["run_bench"]

Log = Callable[[str], None]
LAG_SERIES_POINTS = 1500


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Importable from a plain checkout too: our src/ first on the child's path.
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def _lag_stats(lags: list[list[float]] | None) -> dict[str, float] | None:
    if not lags:
        return None
    values = sorted(v for _t, v in lags)
    return {
        "p50": round(statistics.median(values), 3),
        "p99": round(values[min(len(values) - 1, int(0.99 * len(values)))], 3),
        "max": round(values[-1], 3),
        "samples": len(values),
    }


class _Runner:
    def __init__(self, config: BenchConfig, server: ServerProcess, tmp: Path, log: Log) -> None:
        self.config = config
        self.server = server
        self.tmp = tmp
        self.log = log
        self.env = _child_env()
        self._k = 0

    def workload(self, n: int, latency_ms: float, size: str = "small") -> Workload:
        return Workload(base_url=self.server.base_url, n=n, latency_ms=latency_ms, size=size)

    def child(self, spec: RunSpec) -> tuple[ProcessStats, dict[str, Any], float]:
        """Run one spec in a child process: (outside view, inside view, server CPU)."""
        spec_path, result_path = self.tmp / "spec.json", self.tmp / "result.json"
        result_path.unlink(missing_ok=True)
        spec_path.write_text(spec.to_json(), encoding="utf-8")
        cmd = [sys.executable, "-m", "aiograb.bench._child", str(spec_path), str(result_path)]
        server0 = cpu_seconds(self.server.pid)
        stats = measure_process(cmd, timeout=self.config.child_timeout_s, env=self.env)
        server_cpu = cpu_seconds(self.server.pid) - server0
        shutil.rmtree(spec.out, ignore_errors=True)
        inside: dict[str, Any] = {}
        if stats.exit_code == 0 and result_path.exists():
            inside = json.loads(result_path.read_text(encoding="utf-8"))
        return stats, inside, server_cpu

    def spec(self, engine: str, workload: Workload, concurrency: int, **kw: Any) -> RunSpec:
        self._k += 1
        out = str(self.tmp / f"out-{self._k}")
        return RunSpec(engine=engine, workload=workload, concurrency=concurrency, out=out, **kw)

    # -- the sweep ---------------------------------------------------------------------------

    def sweep(self) -> list[dict[str, Any]]:
        cfg, rows = self.config, []
        turn = 0
        for latency in cfg.latencies_ms:
            for c in cfg.concurrencies:
                engines = [e for e in cfg.engines if e != "sync" or c == min(cfg.concurrencies)]
                if turn % 2:
                    engines.reverse()
                turn += 1
                for engine in engines:
                    rows.append(self.sweep_run(engine, latency, 1 if engine == "sync" else c))
        return rows

    def sweep_run(self, engine: str, latency: float, c: int) -> dict[str, Any]:
        n = capped_n(self.config.n, latency, c, self.config.run_seconds)
        spec = self.spec(engine, self.workload(n, latency), c)
        stats, inside, server_cpu = self.child(spec)
        row = _row(engine, latency, c, self.config.n, n, stats, inside, server_cpu)
        self.log(_describe(row))
        return row

    # -- timelines, CPU inline vs pool, peers -------------------------------------------------

    def timelines(self) -> dict[str, Any]:
        spec_cfg = self.config.timeline
        assert spec_cfg is not None
        out: dict[str, Any] = {}
        for engine in self.config.engines:
            c = 1 if engine == "sync" else spec_cfg.concurrency
            n = capped_n(spec_cfg.n, spec_cfg.latency_ms, c, self.config.run_seconds)
            wl = self.workload(n, spec_cfg.latency_ms)
            stats, inside, _ = self.child(self.spec(engine, wl, c, timeline=True, lag_probe=False))
            raw = inside.get("timeline") or []
            timeline = timeline_from_raw(raw, inside.get("main_thread", 0))
            out[engine] = {
                "latency_ms": spec_cfg.latency_ms,
                "concurrency": c,
                "n_requested": spec_cfg.n,
                "n": n,
                "capped": n < spec_cfg.n,
                "ok": inside.get("ok", 0),
                "failed": inside.get("failed", n),
                "exit_code": stats.exit_code,
                **timeline.to_json(),
            }
            self.log(
                f"timeline {engine:<7} {n:>4} requests, C={c:<4} threads used "
                f"{len(timeline.thread_names):>3}, max in flight {timeline.max_in_flight():>4}"
            )
        return out

    def cpu(self) -> dict[str, Any]:
        spec_cfg = self.config.cpu
        assert spec_cfg is not None
        wl = self.workload(spec_cfg.n, spec_cfg.latency_ms, spec_cfg.size)
        self._warm_server(wl)
        modes: dict[str, Any] = {}
        for mode in CPU_MODES:
            spec = self.spec(
                "async", wl, spec_cfg.concurrency, cpu=mode, thumb=spec_cfg.thumb,
                workers=spec_cfg.workers,
            )  # fmt: skip
            stats, inside, server_cpu = self.child(spec)
            modes[mode] = _cpu_row(mode, stats, inside, server_cpu)
            m = modes[mode]
            self.log(
                f"cpu {mode:<6} {m['files_per_s']:>8.1f} files/s  loop lag p99 "
                f"{(m['loop_lag_ms'] or {}).get('p99', float('nan')):>7.1f} ms  "
                f"processed {m['processed']}/{m['ok']}"
            )
        return {
            "latency_ms": spec_cfg.latency_ms,
            "concurrency": spec_cfg.concurrency,
            "n": spec_cfg.n,
            "size": spec_cfg.size,
            "thumb": spec_cfg.thumb,
            "workers": spec_cfg.workers,
            "modes": modes,
        }

    def _warm_server(self, wl: Workload) -> None:
        """Have the server draw the pictures of ``wl`` once, so no run pays for it."""
        warm = replace(wl, n=min(wl.n, 64), latency_ms=0)
        spec = self.spec("async", warm, 64, lag_probe=False)
        self.child(spec)

    def peers(self, peers: list[Peer]) -> list[dict[str, Any]]:
        cfg, rows = self.config, []
        for peer in peers:
            for latency in cfg.latencies_ms:
                for c in cfg.concurrencies:
                    n = capped_n(cfg.n, latency, c, cfg.run_seconds)
                    rows.append(self.peer_run(peer, latency, c, n))
        return rows

    def peer_run(self, peer: Peer, latency: float, c: int, n: int) -> dict[str, Any]:
        out = self.tmp / f"peer-{peer.name}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        cmd = peer.command(list(self.workload(n, latency).urls()), out, c)
        server0 = cpu_seconds(self.server.pid)
        env = {**self.env, **peer.env()}
        stats = measure_process(cmd, timeout=self.config.child_timeout_s, env=env)
        server_cpu = cpu_seconds(self.server.pid) - server0
        ok = peer.count_ok(out)
        shutil.rmtree(out, ignore_errors=True)
        inside = {"ok": ok, "failed": n - ok, "errors": {}, "elapsed_s": stats.wall_s}
        row = _row(peer.name, latency, c, self.config.n, n, stats, inside, server_cpu)
        row["note"] = peer.note(c)
        self.log(_describe(row))
        return row


def _row(
    engine: str,
    latency: float,
    c: int,
    n_requested: int,
    n: int,
    stats: ProcessStats,
    inside: dict[str, Any],
    server_cpu: float,
) -> dict[str, Any]:
    ok = int(inside.get("ok", 0))
    elapsed = float(inside.get("elapsed_s", stats.wall_s)) or stats.wall_s
    run_cpu = float(inside.get("run_cpu_s", stats.cpu_s))
    error = None
    if stats.exit_code != 0 or not inside:
        error = f"exit code {stats.exit_code}: {stats.stderr.strip().splitlines()[-1:]}"
    return {
        "engine": engine,
        "latency_ms": latency,
        "concurrency": c,
        "n_requested": n_requested,
        "n": n,
        "capped": n < n_requested,
        "ok": ok,
        "failed": int(inside.get("failed", n - ok)),
        "errors": dict(inside.get("errors", {})),
        "retries": int(inside.get("retries", 0)),
        "elapsed_s": round(elapsed, 4),
        "files_per_s": round(ok / elapsed, 2) if elapsed > 0 else 0.0,
        "latency_bound_files_per_s": round(c / (latency / 1000), 2) if latency > 0 else None,
        "wall_s": round(stats.wall_s, 4),
        "cpu_s": round(stats.cpu_s, 4),
        "run_cpu_s": round(run_cpu, 4),
        "cpu_ms_per_file": round(run_cpu * 1000 / ok, 4) if ok else None,
        "peak_threads": max(stats.peak_threads, int(inside.get("peak_threads", 0))),
        "peak_rss_mb": round(max(stats.peak_rss_mb, float(inside.get("peak_rss_mb", 0))), 2),
        "peak_vm_mb": round(max(stats.peak_vm_mb, float(inside.get("peak_vm_mb", 0))), 2),
        "server_cpu_s": round(server_cpu, 4),
        "loop_lag_ms": _lag_stats(inside.get("lag_ms")),
        "exit_code": stats.exit_code,
        "error": error,
    }


def _cpu_row(
    mode: str, stats: ProcessStats, inside: dict[str, Any], server_cpu: float
) -> dict[str, Any]:
    ok = int(inside.get("ok", 0))
    total = float(inside.get("total_s", stats.wall_s)) or stats.wall_s
    files = int(inside.get("processed", 0)) if mode != "none" else ok
    lags = inside.get("lag_ms") or []
    step = max(1, len(lags) // LAG_SERIES_POINTS)
    pids = inside.get("process_pids", [])
    if mode == "inline":
        where = (
            "the event-loop thread"
            if inside.get("process_threads") == [inside.get("main_thread")]
            and pids == [inside.get("pid")]
            else "elsewhere (unexpected)"
        )
    elif mode == "pool":
        where = f"{len(pids)} worker process(es)" if inside.get("pid") not in pids else "the loop"
    else:
        where = "nowhere (download only)"
    return {
        "mode": mode,
        "ok": ok,
        "failed": int(inside.get("failed", 0)),
        "processed": int(inside.get("processed", 0)),
        "process_failed": int(inside.get("process_failed", 0)),
        "processed_on": where,
        "total_s": round(total, 4),
        "files_per_s": round(files / total, 2) if total > 0 else 0.0,
        "run_cpu_s": round(float(inside.get("run_cpu_s", stats.cpu_s)), 4),
        "peak_threads": max(stats.peak_threads, int(inside.get("peak_threads", 0))),
        "peak_rss_mb": round(stats.peak_rss_mb, 2),
        "server_cpu_s": round(server_cpu, 4),
        "loop_lag_ms": _lag_stats(lags),
        "lag_series": [[round(t, 4), round(v, 3)] for t, v in lags[::step]],
        "exit_code": stats.exit_code,
    }


def _describe(row: dict[str, Any]) -> str:
    capped = f" (N capped at {row['n']})" if row["capped"] else ""
    err = f"  ERROR {row['error']}" if row.get("error") else ""
    fails = f"  {row['failed']} failed" if row["failed"] else ""
    return (
        f"{row['engine']:<7} latency {row['latency_ms']:>5g} ms  C={row['concurrency']:<5} "
        f"{row['files_per_s']:>9.1f} files/s  threads {row['peak_threads']:>4}  "
        f"RSS {row['peak_rss_mb']:>6.1f} MB{capped}{fails}{err}"
    )


def run_bench(config: BenchConfig, *, log: Log = print) -> dict[str, Any]:
    """Run every measurement of ``config``; return the results (see ``check_results``)."""
    import tempfile

    results = new_results(config)
    peers = find_peers() if config.peers else []
    t0 = time.perf_counter()
    server_config = ServerConfig(record=False)
    with (
        tempfile.TemporaryDirectory(prefix="aiograb-bench-", dir=config.workdir) as tmp,
        ServerProcess(server_config, warm=True) as server,
    ):
        log(f"local server {server.base_url} (pid {server.pid}); clients write under {tmp}")
        runner = _Runner(config, server, Path(tmp), log)
        results["sweep"] = runner.sweep()
        if config.timeline is not None:
            results["timelines"] = runner.timelines()
        if config.cpu is not None:
            results["cpu"] = runner.cpu()
        if peers:
            results["peers"] = runner.peers(peers)
    if config.fanout is not None:  # the service fan-out (#12), with its own backend
        from ._fanout import run_fanout

        results["fanout"] = run_fanout(config.fanout, log=log)
    results["peers_found"] = [p.name for p in peers]
    results["duration_s"] = round(time.perf_counter() - t0, 2)
    derive(results)
    if config.fanout is not None:
        results["acceptance"] += results["fanout"]["acceptance"]
        rows = results["fanout"]["rows"]
        results["errors"] += sum(int("failed" in r) + r.get("errors", 0) for r in rows)
    return results
