"""What a parted run does before its parts: the canary only where it is needed, the
pool's processes warmed up while the plan is written, a LocalCluster started meanwhile."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aiograb import Limits, RequestPolicy
from aiograb._core.config import DEFAULT_TRANSPORT
from aiograb._core.models import InputRow
from aiograb._scale.part import check_canary
from aiograb._scale.procs import process_pool, run_parted
from tests.helpers import manifest
from tests.scale.servers import image_app, serve_hosts


class Recording(cf.Executor):
    """A real process pool that records the name of every function submitted to it."""

    def __init__(self, width: int) -> None:
        self.pool = cf.ProcessPoolExecutor(width, mp_context=multiprocessing.get_context("spawn"))
        self.submitted: list[str] = []
        self.threads: dict[str, set[int]] = {}  # function name -> threads that submitted it

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        self.submitted.append(fn.__name__)
        self.threads.setdefault(fn.__name__, set()).add(threading.get_ident())
        return self.pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait, cancel_futures=cancel_futures)


def _rows(urls: list[str], seen: Callable[[], None]) -> Callable[[], Iterator[InputRow]]:
    def rows() -> Iterator[InputRow]:
        seen()  # the moment planning starts reading the input
        for i, url in enumerate(urls, 1):
            yield InputRow(line=i, url=url)

    return rows


@pytest.fixture(scope="module")
def urls() -> Iterator[list[str]]:
    with serve_hosts(image_app()) as bases:
        yield [f"{b}/img/{i}.png" for i in range(2) for b in bases]


def test_our_own_pool_needs_no_canary_and_warms_up_while_planning(
    urls: list[str], tmp_path: Path
) -> None:
    executor = Recording(2)
    planning: list[int] = []
    out = tmp_path / "out"
    with executor:
        summary = run_parted(
            _rows(urls, lambda: planning.append(threading.get_ident())),
            out,
            executor,
            width=2,
            limits=Limits(concurrency=16, per_host=0),
            probe=False,
        )
    # No canary; the processes started (warm_up) before the parts were submitted...
    assert executor.submitted == ["warm_up", "warm_up", "run_part", "run_part"]
    # ... from another thread than the planning one: a pool starts its processes in
    # submit(), and planning never waits for that.
    (warming,) = executor.threads["warm_up"]
    assert planning == [threading.get_ident()]
    assert warming != planning[0]
    assert summary.counts == {"ok": len(urls)}
    assert [r["url"] for r in manifest(out)] == urls


def test_an_executor_of_unknown_workers_sees_the_canary_before_the_plan(
    urls: list[str], tmp_path: Path
) -> None:
    executor = Recording(2)
    at_planning: list[list[str]] = []
    with executor:
        run_parted(
            _rows(urls, lambda: at_planning.append(list(executor.submitted))),
            tmp_path / "out",
            executor,
            limits=Limits(concurrency=16, per_host=0),
        )
    # Both canaries went out (and were waited for) before planning read a row. The warm-ups overlap
    # planning (from their own thread), so planning may see none, some or all of them.
    ((first, second, *warming),) = at_planning
    assert (first, second) == ("check_canary", "check_canary")
    assert set(warming) <= {"warm_up"}
    assert executor.submitted == ["check_canary"] * 2 + ["warm_up"] * 2 + ["run_part"] * 2


def test_a_starting_executor_is_asked_for_only_once_the_plan_is_written(
    urls: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    events: list[str] = []
    with Recording(2) as executor:

        def starting() -> cf.Executor:
            events.append("asked" if (out / "plan.json").is_file() else "asked before the plan")
            return executor

        summary = run_parted(
            _rows(urls, lambda: events.append("planning")),
            out,
            starting,
            width=2,
            limits=Limits(concurrency=16, per_host=0),
            probe=False,
        )
        assert executor.submitted == ["run_part", "run_part"]  # nothing before it was up
    assert events == ["planning", "asked"]
    assert summary.counts == {"ok": len(urls)}


def test_dask_local_starts_in_the_background_forked_without_the_profiler(
    tmp_path: Path,
) -> None:
    pytest.importorskip("distributed")
    from aiograb._scale.dask import DaskTarget, open_dask

    canary = tmp_path / "canary"
    canary.write_text("t0ken")
    with open_dask(DaskTarget(local_workers=2)) as run:
        assert not run.up()  # entered at once: the cluster is still starting
        assert (run.local, run.width) == (True, 2)
        client = run.executor()._client
        assert run.up()
        profiled = client.run(_profiler_enabled)
        assert list(profiled.values()) == [False, False]
        # Dask's own timers quieted on our workers (QUIET_LOCAL_CLUSTER).
        assert list(client.run(_quiet_settings).values()) == [("1s", False, False)] * 2
        # Forked from a server that imported the engine: no part has run, it is there.
        assert list(client.run(_engine_imported).values()) == [True, True]
        assert run.probe(str(canary), "t0ken") == [None, None]
        assert run.executor().submit(check_canary, str(canary), "other").result() is not None


def _in_a_fresh_interpreter(code: str) -> str:
    """What ``code`` prints, run by a new Python (it must succeed)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_dask_local_starts_its_fork_server_before_this_process_imports_dask() -> None:
    """In a fresh interpreter: the server is up, and its children have Dask, before the
    coordinator has imported Dask itself (so both imports run at once)."""
    pytest.importorskip("distributed")
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server on this platform")
    code = (
        "import multiprocessing, sys\n"
        "from aiograb._scale.dask import _start_the_fork_server\n"
        "_start_the_fork_server('curl')\n"
        "assert 'distributed' not in sys.modules, 'Dask imported by the coordinator first'\n"
        "with multiprocessing.get_context('forkserver').Pool(1) as pool:\n"
        "    print(pool.apply(eval, (\"'distributed' in __import__('sys').modules\",)))\n"
    )
    assert _in_a_fresh_interpreter(code) == "True"


@pytest.mark.parametrize(
    ("argv", "started"),
    [
        (["get", "u.txt", "-o", "out", "--dask", "local:2"], True),
        (["get", "u.txt", "--procs", "2"], True),
        (["get", "u.txt", "--procs=auto", "--transport", "aiohttp"], True),
        (["get", "u.txt", "--dask", "tcp://127.0.0.1:1"], False),  # a cluster's own workers
        (["get", "u.txt", "--procs", "1"], False),
        (["get", "u.txt"], False),
        (["get", "--", "--procs", "2"], False),  # a URL list named --procs, after --
        (["crawl", "http://127.0.0.1:1/", "--procs", "2"], False),
    ],
)
def test_the_cli_starts_the_parts_fork_server_before_it_imports_itself(
    argv: list[str], started: bool
) -> None:
    """``start_workers``, the first thing ``aiograb`` does: for parts in processes of this
    machine the fork server is a child of this process at once, with the CLI and the
    engine not imported here yet; otherwise there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server on this platform")
    code = (
        "import os, sys\n"
        "from aiograb._cli.early import start_workers\n"
        f"start_workers({argv!r})\n"
        "assert 'aiograb._cli.main' not in sys.modules\n"
        "assert 'aiograb._get.download' not in sys.modules\n"
        "me = str(os.getpid())\n"
        "def read(path):\n"  # a process may end between the listing and the read
        "    try:\n"
        "        with open(path) as f:\n"
        "            return f.read()\n"
        "    except OSError:\n"
        "        return ''\n"
        "def kids():\n"
        "    return [p for p in os.listdir('/proc') if p.isdigit()\n"
        "            and read(f'/proc/{p}/stat').rsplit(')', 1)[-1].split()[1:2] == [me]]\n"
        "if not kids():\n"
        "    print('none')\n"
        "    sys.exit()\n"
        # Forked at once, the server may not have run exec yet (its cmdline still this
        # one's); it is the server once its cmdline says so, within a bounded wait.
        "import time\n"
        "deadline = time.monotonic() + 20\n"
        "while time.monotonic() < deadline:\n"
        "    lines = [read(f'/proc/{p}/cmdline') for p in kids()]\n"
        "    if any('multiprocessing.forkserver' in c for c in lines):\n"
        "        print('server')\n"
        "        break\n"
        "    time.sleep(0.01)\n"
        "else:\n"
        "    print('children, and none of them the server:', lines)\n"
    )
    assert _in_a_fresh_interpreter(code) == ("server" if started else "none")


def test_importing_the_console_script_starts_nothing_and_imports_no_cli() -> None:
    code = (
        "import sys, aiograb.cli\n"
        "print('aiograb._cli.main' in sys.modules, 'multiprocessing.forkserver' in sys.modules)\n"
    )
    assert _in_a_fresh_interpreter(code) == "False False"


def test_our_pool_forks_its_processes_from_a_server_that_imported_the_engine() -> None:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork server on this platform: the pool spawns its processes")
    with process_pool(2, DEFAULT_TRANSPORT) as pool:
        # The first tasks of fresh processes: no part has run there, and it is there.
        assert [pool.submit(_engine_imported).result() for _ in range(2)] == [True, True]


def _engine_imported() -> bool:
    import sys

    from aiograb._core.config import DEFAULT_TRANSPORT

    modules = ("aiograb._get.download", f"aiograb._http.{DEFAULT_TRANSPORT}_transport")
    return all(name in sys.modules for name in modules)


def _quiet_settings() -> tuple[object, ...]:
    import dask

    get = dask.config.get
    return (
        get("distributed.admin.tick.interval"),
        get("distributed.admin.system-monitor.disk"),
        get("distributed.scheduler.work-stealing"),
    )


def _profiler_enabled() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_the_cli_tunes_the_collector_of_a_local_clusters_workers(
    urls: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    import argparse

    from aiograb._cli.scale import run_scaled
    from aiograb._scale import dask as scale_dask

    args = argparse.Namespace(
        engine="async", procs=1, dask="local:1", parts=None, io_threads=1,
        no_uvloop=False, out=tmp_path / "out",
    )  # fmt: skip
    thresholds: list[object] = []
    opened = scale_dask.open_dask

    @contextlib.contextmanager
    def watching(target: Any, **kwargs: Any) -> Iterator[Any]:
        with opened(target, **kwargs) as run:
            yield run
            client = run.executor()._client
            thresholds.extend(client.run(gc.get_threshold).values())

    monkeypatch.setattr(scale_dask, "open_dask", watching)
    limits = Limits(concurrency=8, per_host=0)
    rows = _rows(urls, lambda: None)
    summary = run_scaled(args, rows, limits, RequestPolicy(), False, lambda _p: None, None)
    assert summary.counts == {"ok": len(urls)}
    assert thresholds == [(50_000, 20, 100)]  # as --procs' own processes: -8 % CPU


def test_the_coordinator_does_not_import_the_engine() -> None:
    # The parts import it (their fork server, once); the coordinator only plans and
    # merges: ~0.13 s less before planning starts (BENCHMARKS.md, "#11 third pass").
    code = (
        "import sys, aiograb._scale.procs, aiograb._scale.merge, aiograb._scale.plan;"
        "print(sorted(m for m in ('aiograb._get.engine', 'aiograb._fetch.fetcher',"
        " 'aiograb._images.pipeline', 'aiohttp', 'pycurl') if m in sys.modules))"
    )
    assert _in_a_fresh_interpreter(code) == "[]"
