"""One BLAS thread where the service plans sites side by side (core.blas): OpenBLAS would run
a week's dot products on every core and spin its threads after them."""

import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import pytest

from core.blas import blas_threads
from scheduler.fleet import FleetChunk, solve_chunk

pytestmark = pytest.mark.skipif(
    (os.cpu_count() or 1) < 2, reason="numpy's default is one BLAS thread here: nothing to limit"
)

#: What a process inherits that sets BLAS threads (Dask's nanny sets them in its parent's
#: environment for the workers it spawns, and an earlier test may have started one).
BLAS_ENVIRON = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture(autouse=True)
def numpy_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh processes start with numpy's default BLAS threads."""
    for name in BLAS_ENVIRON:
        monkeypatch.delenv(name, raising=False)


def _pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def test_a_fleet_worker_plans_on_one_blas_thread() -> None:
    with _pool() as fresh:  # the default, which the test must be able to tell apart
        assert max(fresh.submit(blas_threads).result()) > 1
    with _pool() as worker:
        # the fleet's task function, on an empty chunk: the same worker, then asked
        assert worker.submit(solve_chunk, FleetChunk(pd.DataFrame(), ())).result() == []
        threads = worker.submit(blas_threads).result()
    assert threads and set(threads) == {1}  # numpy's and scipy's OpenBLAS


def test_an_hbopt_command_plans_on_one_blas_thread() -> None:
    code = (
        "import contextlib, io\n"
        "from hbopt import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = cli.main(['plan'])\n"
        "from core.blas import blas_threads\n"
        "print(rc, sorted(set(blas_threads())))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split("\n")[-2] == "0 [1]"
