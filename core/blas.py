"""One BLAS thread in the processes that plan many sites side by side.

OpenBLAS, numpy's and scipy's BLAS, runs a dot product of more than ~10,000 entries on every
core, and its threads spin for a while after each call. A week's plan (672 slots, ~11,000
columns) takes such dot products in its solve loop: six of them took 404 ms of wall time and
804 ms of CPU with the default threads, 390 ms and 390 ms with one. The service's parallelism
is its own (the fleet's worker processes, the control loop's cycle threads); BLAS threads on
top of it only take cores from other sites.

The command line (every ``hbopt`` command) and the fleet's workers call :func:`one_blas_thread`.
A notebook keeps numpy's default; ``core.blas.one_blas_thread()`` makes it plan like the service.
"""

from __future__ import annotations

from functools import cache

# numpy and scipy each bring their own OpenBLAS; a limit reaches only the libraries loaded
# when it is set, so both are loaded with this module
import numpy  # noqa: F401
import scipy.linalg  # noqa: F401
from threadpoolctl import threadpool_info, threadpool_limits


@cache
def one_blas_thread() -> None:
    """Limit this process's BLAS libraries to one thread, for the rest of its life.

    Only the first call does anything (finding the loaded libraries takes ~1 ms), so a task
    function may call it every time.
    """
    threadpool_limits(limits=1, user_api="blas")


def blas_threads() -> list[int]:
    """The thread count of every BLAS library loaded in this process."""
    return [int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
