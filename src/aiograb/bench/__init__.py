"""``aiograb bench``: why one event loop beats a thread pool for IO, measured and drawn.

The three engines of ``aiograb get`` (``sync``, ``threads``, ``async``) fetch the
same images from the local test server, which runs in its own process; each run
is a child process measured from outside (CPU, peak RSS, OS threads) and from
inside (files/s, every request's timeline, the event loop's lag). The report is
``report.html`` (self-contained), ``report.md``, ``results.json`` and PNG plots.

>>> from aiograb.bench import quick_config, run_bench, write_report
>>> results = run_bench(quick_config())
>>> write_report(results, "bench-report/")
"""

from ._config import BenchConfig, CpuSpec, TimelineSpec, quick_config, standard_config
from ._fanout import FanoutSpec, fanout_table, quick_fanout, run_fanout
from ._plots import require_plotting
from ._report import write_report
from ._results import check_results
from ._suite import run_bench

__all__ = [
    "BenchConfig",
    "CpuSpec",
    "FanoutSpec",
    "TimelineSpec",
    "check_results",
    "fanout_table",
    "quick_config",
    "quick_fanout",
    "require_plotting",
    "run_bench",
    "run_fanout",
    "standard_config",
    "write_report",
]
