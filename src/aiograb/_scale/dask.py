"""``--dask local:N`` and ``--dask tcp://host:port``: the parts as Dask tasks.

Dask schedules; aiograb does not. ``Client.get_executor()`` is the executor
``run_parted`` submits one task per part to; when a worker process dies its
tasks are rescheduled by Dask's scheduler (up to its ``allowed-failures``), and
``retries`` re-runs a part that raised. Since a part resumes from its journal,
a retried part refetches at most what was in flight. ``client.run`` puts the
canary check on every worker. ``distributed`` is imported only here, only
when ``--dask`` is used.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiograb._core.errors import UsageError
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
    client: Any
    executor: Any  # distributed's ClientExecutor: a concurrent.futures.Executor
    width: int

    def probe(self, path: str, token: str) -> list[str | None]:
        """The canary check on every worker of the cluster."""
        return list(self.client.run(check_canary, path, token).values())


def _import() -> Any:
    try:
        import dask
        import distributed
    except ImportError as exc:
        raise UsageError("--dask needs dask.distributed: pip install 'aiograb[dask]'") from exc
    return dask, distributed


@contextlib.contextmanager
def open_dask(target: DaskTarget) -> Iterator[DaskRun]:
    """A client (and, for ``local:N``, its ``LocalCluster``), closed on exit."""
    dask, distributed = _import()
    with contextlib.ExitStack() as stack:
        if target.local_workers:
            # Not daemonic: a part's image pipeline starts worker processes of its own.
            stack.enter_context(dask.config.set({"distributed.worker.daemon": False}))
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=target.local_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        else:
            try:
                client = stack.enter_context(
                    distributed.Client(target.address, timeout=CONNECT_TIMEOUT)
                )
            except OSError as exc:
                raise UsageError(
                    f"cannot reach the Dask scheduler {target.address}: {exc}"
                ) from exc
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        width = sum(client.nthreads().values())
        executor = client.get_executor(retries=PART_RETRIES, pure=False)
        yield DaskRun(client, executor, width)
