"""``--dask local:N`` and ``--dask tcp://host:port``: the parts as Dask tasks.

Dask schedules; aiograb does not. ``Client.get_executor()`` is the executor
``run_parted`` submits one task per part to; when a worker process dies its
tasks are rescheduled by Dask's scheduler (up to its ``allowed-failures``), and
``retries`` re-runs a part that raised. Since a part resumes from its journal,
a retried part refetches at most what was in flight. ``client.run`` puts the
canary check on every worker of a scheduler given by address; a ``local:N``
cluster's workers are this machine's processes and need none. ``local:N``
starts in a thread while the coordinator writes the plan, its workers forked
from a fork server that has imported Dask and the engine. ``distributed`` is
imported only here, only when ``--dask`` is used.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiograb._core.config import DEFAULT_TRANSPORT
from aiograb._core.errors import UsageError
from aiograb._scale import forkserver
from aiograb._scale.part import check_canary

__all__ = ["DaskTarget", "open_dask", "parse_dask"]

PART_RETRIES = 3  # a part that raised (not one whose worker died: the scheduler retries those)
CONNECT_TIMEOUT = 30.0
_LOCAL = re.compile(r"^local:(\d+)$")


@dataclass(frozen=True, slots=True)
class DaskTarget:
    local_workers: int = 0  # local:N
    address: str = ""  # tcp://host:port


def parse_dask(spec: str) -> DaskTarget:
    """``local:N`` or a scheduler address ``tcp://host:port``."""
    if m := _LOCAL.match(spec):
        n = int(m.group(1))
        if not 1 <= n <= 1024:
            raise UsageError("--dask local:N needs 1 <= N <= 1024")
        return DaskTarget(local_workers=n)
    if re.match(r"^(tcp|tls|ucx)://[^/\s]+:\d+$", spec):
        return DaskTarget(address=spec)
    raise UsageError(f"--dask takes local:N or tcp://host:port, not {spec!r}")


@dataclass(slots=True)
class DaskRun:
    """A cluster, maybe still starting (``local:N``): ``executor()`` waits for it."""

    width: int
    local: bool  # a LocalCluster of ours: its workers are processes of this machine
    _started: cf.Future[tuple[Any, Any, Any]]  # (cluster or None, client, executor)

    def up(self) -> bool:
        """Whether the cluster has started (or failed to)."""
        return self._started.done()

    def executor(self) -> Any:
        """The client's ``concurrent.futures.Executor`` (``Client.get_executor``), once
        the cluster is up."""
        return self._started.result()[2]

    def probe(self, path: str, token: str) -> list[str | None]:
        """The canary check on every worker of the cluster (``Client.run``)."""
        client = self._started.result()[1]
        return list(client.run(check_canary, path, token).values())


def _import() -> Any:
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise UsageError("--dask needs dask.distributed: pip install 'aiograb[dask]'") from exc
    return dask, distributed


def _start_local(distributed: Any, n: int) -> tuple[Any, Any, Any]:
    cluster = distributed.LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return cluster, client, client.get_executor(retries=PART_RETRIES, pure=False)


@contextlib.contextmanager
def _local(distributed: Any, n: int) -> Iterator[DaskRun]:
    """Start a LocalCluster in a thread of its own: its scheduler and worker processes
    come up while the coordinator writes the plan (``run_parted`` calls ``executor()``
    after it). On exit: wait for the start to end, whatever happened meanwhile, and close."""
    with cf.ThreadPoolExecutor(1, thread_name_prefix="aiograb-dask-start") as starter:
        started = starter.submit(_start_local, distributed, n)
        try:
            yield DaskRun(n, True, started)
        finally:
            if started.exception() is None:
                cluster, client, _ = started.result()
                client.close()
                cluster.close()


@contextlib.contextmanager
def _remote(distributed: Any, address: str) -> Iterator[DaskRun]:
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise UsageError(f"cannot reach the Dask scheduler {address}: {exc}") from exc
    with client:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        width = sum(client.nthreads().values())
        started: cf.Future[tuple[Any, Any, Any]] = cf.Future()
        started.set_result((None, client, client.get_executor(retries=PART_RETRIES, pure=False)))
        yield DaskRun(width, False, started)


@contextlib.contextmanager
def open_dask(target: DaskTarget, *, transport: str = DEFAULT_TRANSPORT) -> Iterator[DaskRun]:
    """A client (and, for ``local:N``, its ``LocalCluster``, started in the background,
    its workers with ``transport``'s module imported), closed on exit."""
    if target.local_workers:
        _start_the_fork_server(transport)
    dask, distributed = _import()
    if not target.local_workers:
        with _remote(distributed, target.address) as run:
            yield run
        return
    # Not daemonic: a part's image pipeline starts worker processes of its own. The
    # workers are ours, so Dask's statistical profiler is off: it samples the part's
    # stack 100 times a second, taking the GIL from its event loop each time.
    local: dict[str, Any] = {
        "distributed.worker.daemon": False,
        "distributed.worker.profile.enabled": False,
        **QUIET_LOCAL_CLUSTER,
    }
    if forkserver.available():
        local["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(local), _local(distributed, target.local_workers) as run:
        yield run


# A LocalCluster of ours runs a few parts, each a CPU-bound event loop in a worker's
# thread: what Dask's own loops do beside them on a timer takes the GIL from the part
# (and a core from the machine) for a dashboard nobody reads. Documented settings
# (distributed.yaml), only for local:N; a cluster given by address is configured by
# its owner.
QUIET_LOCAL_CLUSTER: dict[str, Any] = {
    "distributed.admin.system-monitor.interval": "5s",  # psutil's CPU, memory, fds: 500ms
    "distributed.admin.system-monitor.disk": False,  # host-wide disk counters
    "distributed.admin.system-monitor.gil.enabled": False,  # gilknocker, when installed: 1 ms
    "distributed.admin.tick.interval": "1s",  # the event-loop health check: 20ms
    "distributed.worker.memory.monitor-interval": "1s",  # 100ms
    "distributed.scheduler.work-stealing": False,  # a part is one long task: nothing to steal
}


def _start_the_fork_server(transport: str) -> None:
    """The LocalCluster's workers start with ``forkserver`` (Dask's documented
    ``multiprocessing-method``), not ``spawn``: a fresh single-threaded server process
    imports Dask and aiograb's engine once and forks each worker from it, so a worker
    starts with them imported (no import in its first part) and ends without an
    interpreter's teardown (measured: the first part's imports, ~0.5 s, and the
    cluster's close, ~0.4 s, are gone). The server starts before this process imports
    Dask, so its imports (~0.8 s) run beside ours on another core rather than after
    them; the CLI starts it sooner still (``_cli/early.py``). Once it runs, the preload
    Dask's ``get_mp_context`` sets is moot. Nothing happens where there is no fork
    server, or when one already runs (an earlier pool's: its workers import Dask
    themselves)."""
    forkserver.start("dask", transport)
