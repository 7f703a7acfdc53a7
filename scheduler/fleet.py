"""Run one control cycle for many sites: a local process pool, or Dask distributed.

Both backends go through the same code: a :class:`concurrent.futures.Executor` (a
``ProcessPoolExecutor``, or ``dask.distributed.Client.get_executor()``), chunks of sites
submitted with a bounded number in flight, results collected with
:func:`concurrent.futures.wait`. There is no cluster code here; Dask does the distribution.

Payload
    A chunk carries the fleet's shared per-slot frame (prices, CO2, outdoor temperature and
    reference PV/load profiles) once, and per site a compact :class:`SiteJob` (configuration,
    live state, profile scales or own profiles). The worker builds each site's
    :class:`~optimizer.Problem`, so a site's bad data fails in the worker, as that
    site's result.

Failure model
    * A site's bad data, configuration error, solver error or exception -> that site's
      report has status ``error`` and the reason; its chunk-mates are solved as usual.
    * A solver time limit (``Tuning.time_limit_s``) bounds each solve; the best plan found is
      used (``solver_status == "time_limit"``).
    * A worker process that dies: a local pool breaks as a whole (``BrokenProcessPool`` for
      every chunk in flight); Dask retries a task on another worker and gives up after
      ``distributed.scheduler.allowed-failures`` deaths (``KilledWorker``, which may also hit
      chunks that merely sat on the dying worker). Either way the failed chunks are re-run
      with fewer in flight (all -> ``workers`` -> 1) until the culprit runs alone. Its sites
      get status ``worker_lost``; every other chunk completes.
    * ``FleetConfig.cycle_timeout_s``: chunks not finished by then are reported as ``timeout``.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from core.blas import one_blas_thread
from optimizer import Inputs, Problem, Setpoints, Site, State, Tuning
from scheduler.cycle import CycleRequest, plan_cycle

Backend = Literal["process", "dask"]
T = TypeVar("T")

#: prctl option: the signal this process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
#: Columns of the shared frame that become optimizer inputs directly (when present).
SHARED_INPUTS = (
    "import_eur_per_kwh",
    "export_eur_per_kwh",
    "t_out_c",
    "co2_g_per_kwh",
    "spot_eur_per_kwh",
    "import_cap_kw",
)


@dataclass(frozen=True)
class FleetConfig:
    """How the fleet runner distributes a cycle.

    Parameters
    ----------
    backend : {"process", "dask"}
        A local process pool, or a Dask distributed cluster.
    workers : int
        Worker processes (process pool; Dask ``LocalCluster`` when no address is given).
    chunk_size : int
        Sites per task; large enough that per-task overhead does not dominate.
    scheduler_address : str or None
        Dask scheduler to connect to (``tcp://host:8786``); ``None`` starts a ``LocalCluster``.
    solver : str
        Solver backend name for every site.
    schedule_slots : int
        Slots of each plan returned as setpoints (the live slot plus the box schedule).
    cycle_timeout_s : float or None
        Wall-clock budget of one cycle [s]; unfinished sites are reported as ``timeout``.
    """

    backend: Backend = "process"
    workers: int = 2
    chunk_size: int = 25
    scheduler_address: str | None = None
    solver: str = "highs"
    schedule_slots: int = 192
    cycle_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("process", "dask"):
            raise ValueError(f"FleetConfig.backend: {self.backend!r} is not 'process' or 'dask'")
        if self.workers < 1:
            raise ValueError("FleetConfig.workers: must be >= 1")
        if self.chunk_size < 1:
            raise ValueError("FleetConfig.chunk_size: must be >= 1")
        if self.schedule_slots < 1:
            raise ValueError("FleetConfig.schedule_slots: must be >= 1")
        if self.cycle_timeout_s is not None and not self.cycle_timeout_s > 0:
            raise ValueError("FleetConfig.cycle_timeout_s: must be > 0")


@dataclass(frozen=True)
class SiteForecast:
    """A site's PV and household-load forecast relative to the fleet's shared frame.

    A profile that is ``None`` is the shared frame's column (``pv_kw`` per kWp, ``load_kw``
    per unit of ``load_scale``); either way it is multiplied by its scale.

    Parameters
    ----------
    pv_kw, load_kw : array or None
        The site's own forecast [kW], one value per slot.
    pv_scale, load_scale : float
        Factors on the profile [-] (e.g. the site's kWp on a 1 kWp reference profile).
    """

    pv_kw: np.ndarray | None = None
    load_kw: np.ndarray | None = None
    pv_scale: float = 1.0
    load_scale: float = 1.0

    def profiles(self, shared: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """PV and load [kW] on the shared frame's index."""
        pv = shared["pv_kw"].to_numpy() if self.pv_kw is None else np.asarray(self.pv_kw)
        load = shared["load_kw"].to_numpy() if self.load_kw is None else np.asarray(self.load_kw)
        return pv * self.pv_scale, load * self.load_scale


@dataclass(frozen=True)
class SiteJob:
    """One site's part of a fleet cycle: configuration, live state, forecast, tuning."""

    site_id: str
    site: Site
    state: State
    forecast: SiteForecast = field(default_factory=SiteForecast)
    tuning: Tuning = field(default_factory=Tuning)

    def problem(self, shared: pd.DataFrame) -> Problem:
        """The site's optimization problem on the shared frame; raises on bad data."""
        pv, load = self.forecast.profiles(shared)
        columns = {c: shared[c].to_numpy() for c in SHARED_INPUTS if c in shared}
        inputs = Inputs(index=shared.index, pv_kw=pv, load_kw=load, **columns)  # type: ignore[arg-type]
        return Problem(self.site, inputs, self.state, self.tuning)


class SiteStatus(StrEnum):
    """Outcome of one site's cycle."""

    OK = "ok"
    ERROR = "error"  # bad data, configuration, solver failure or exception in the site's code
    WORKER_LOST = "worker_lost"  # the process solving it died
    TIMEOUT = "timeout"  # not finished within the cycle budget
    UNREACHABLE = "box_unreachable"  # its state could not be read, so it was not planned


@dataclass(frozen=True)
class SiteReport:
    """What one site's cycle produced.

    ``cycle_ms`` [ms] is the time in the worker (problem build, solve, setpoints);
    ``setpoints[0]`` is the live slot, all of them form the box schedule; ``cost_eur`` is
    the plan's energy cost [EUR]; ``solver_status`` is ``optimal`` or ``time_limit``.
    """

    site_id: str
    status: SiteStatus
    error: str = ""
    cycle_ms: float = 0.0
    setpoints: Sequence[Setpoints] = ()
    cost_eur: float | None = None
    solver_status: str = ""


@dataclass(frozen=True)
class FleetChunk:
    """A task: sites sharing one frame. Plain data, pickles to any worker."""

    shared: pd.DataFrame
    jobs: tuple[SiteJob, ...]
    solver: str = "highs"
    schedule_slots: int = 192


def solve_site(job: SiteJob, chunk: FleetChunk) -> SiteReport:
    """Build and solve one site; every failure becomes an ``error`` report."""
    t0 = time.perf_counter()
    try:
        problem = job.problem(chunk.shared)
    except Exception as exc:  # bad data of one site must not stop its chunk
        ms = (time.perf_counter() - t0) * 1e3
        return SiteReport(job.site_id, SiteStatus.ERROR, f"{type(exc).__name__}: {exc}", ms)
    result = plan_cycle(CycleRequest(job.site_id, problem, chunk.solver, chunk.schedule_slots))
    ms = (time.perf_counter() - t0) * 1e3
    if not result.ok or result.summary is None:
        return SiteReport(job.site_id, SiteStatus.ERROR, result.error, ms)
    s = result.summary
    return SiteReport(job.site_id, SiteStatus.OK, "", ms, result.setpoints, s.cost_eur, s.status)


def solve_chunk(chunk: FleetChunk) -> list[SiteReport]:
    """Solve every site of ``chunk`` in order (the task function workers run), on one BLAS
    thread (:mod:`core.blas`: a process pool's and a Dask cluster's workers alike)."""
    one_blas_thread()
    return [solve_site(job, chunk) for job in chunk.jobs]


@dataclass(frozen=True)
class FleetReport:
    """One fleet cycle: a report for every site, in the order the jobs were given."""

    sites: tuple[SiteReport, ...]
    wall_s: float

    def counts(self) -> dict[str, int]:
        """Number of sites per status."""
        return dict(Counter(r.status.value for r in self.sites))

    @property
    def cycles_per_s(self) -> float:
        """Site cycles completed per second of wall-clock time [1/s]."""
        ok = sum(r.status == SiteStatus.OK for r in self.sites)
        return ok / self.wall_s if self.wall_s > 0 else math.nan

    def cycle_ms_quantiles(self, q: Sequence[float] = (0.5, 0.99)) -> tuple[float, ...]:
        """Quantiles of the per-site worker time of the sites that were solved [ms]."""
        ms = [r.cycle_ms for r in self.sites if r.status == SiteStatus.OK]
        if not ms:
            return tuple(math.nan for _ in q)
        return tuple(float(v) for v in np.quantile(ms, q))


def shared_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of the shared frame that workers read (only those travel with a chunk)."""
    return frame[[c for c in (*SHARED_INPUTS, "pv_kw", "load_kw") if c in frame]]


def chunked(jobs: Sequence[SiteJob], size: int) -> Iterator[tuple[SiteJob, ...]]:
    """Consecutive groups of ``size`` jobs (the last one may be shorter)."""
    for i in range(0, len(jobs), size):
        yield tuple(jobs[i : i + size])


@dataclass
class _Cycle:
    """Book-keeping of one run: chunks, their results and failures by chunk number."""

    chunks: list[FleetChunk]
    deadline: float | None
    on_sites_done: Callable[[int], object] | None = None
    done: dict[int, list[SiteReport]] = field(default_factory=dict)
    failed: dict[int, tuple[SiteStatus, str]] = field(default_factory=dict)

    def time_left(self) -> float | None:
        """Seconds until the cycle budget is spent (``None`` = no budget)."""
        if self.deadline is None:
            return None
        return max(self.deadline - time.perf_counter(), 0.0)


def die_with(parent_pid: int, poll_s: float = 1.0) -> None:
    """Pool initializer: end this worker when the process that made the pool is gone.

    A killed scheduler runs no clean-up, so its workers would solve on for nobody. On Linux
    the kernel sends SIGKILL when the worker's parent (the forkserver, which exits with the
    scheduler) dies; a daemon thread checking ``parent_pid`` covers other systems.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # alive, owned by someone else
                pass

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _start_workers(pool: ProcessPoolExecutor, n: int) -> None:
    """Start the pool's ``n`` workers now (and the forkserver, which imports the solver stack
    first: seconds on a busy host). A pool starts its workers at the first submits, and an
    event loop submitting them would wait that long, its heartbeats with it."""
    wait([pool.submit(_ready) for _ in range(n)])


def _ready() -> None:
    """A worker's first task: it is up."""


def _shutdown(executor: Executor, wait: bool) -> None:
    """Shut down; queued chunks of a local pool are dropped (Dask's executor has no option)."""
    if isinstance(executor, ProcessPoolExecutor):
        executor.shutdown(wait=wait, cancel_futures=True)
    else:
        executor.shutdown(wait=wait)


def _task_failure_status(exc: BaseException) -> SiteStatus:
    """A task failed outside the sites' own code: a lost worker, or an error (e.g. pickling)."""
    if isinstance(exc, BrokenExecutor) or type(exc).__name__ == "KilledWorker":
        return SiteStatus.WORKER_LOST
    return SiteStatus.ERROR


class RenewingExecutor(Executor):
    """The runner's executor for single solves, renewed when its pool broke.

    A local pool breaks as a whole when one worker dies; every later submit would fail. The
    solves in flight fail (their sites report the error and are planned again next window);
    the next submit gets a fresh pool.
    """

    def __init__(self, runner: FleetRunner) -> None:
        self.runner = runner

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        try:
            return self.runner.executor.submit(fn, *args, **kwargs)
        except BrokenExecutor:
            self.runner.renew()
            return self.runner.executor.submit(fn, *args, **kwargs)


class FleetRunner:
    """Runs fleet cycles on a process pool or a Dask cluster; reuse it across cycles.

    Use as a context manager; :meth:`run` solves one cycle and never raises for a site's
    failure (see the module docstring for the failure model).
    """

    def __init__(self, config: FleetConfig | None = None) -> None:
        self.config = config or FleetConfig()
        self._executor: Executor | None = None
        self._client: Any = None
        self._cluster: Any = None
        self._generation = 0

    def __enter__(self) -> FleetRunner:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        """Start the pool, or connect to (or start) the Dask cluster."""
        if self.config.backend == "dask" and self._client is None:
            # imported on demand: distributed takes a second to import and the pool needs none
            from dask.distributed import Client, LocalCluster  # noqa: PLC0415

            if self.config.scheduler_address:
                self._client = Client(self.config.scheduler_address)
            else:
                self._cluster = LocalCluster(
                    n_workers=self.config.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                self._client = Client(self._cluster)
        if self._executor is None:
            self._executor = self._new_executor()
            if isinstance(self._executor, ProcessPoolExecutor):
                _start_workers(self._executor, self.config.workers)

    @property
    def executor(self) -> Executor:
        """The open pool (or Dask executor); single solves may be submitted to it directly."""
        self.open()
        assert self._executor is not None
        return self._executor

    def _new_executor(self) -> Executor:
        if self.config.backend == "dask":
            # pure=False: a re-run of a failed chunk is a new task, not the cached failure
            return self._client.get_executor(pure=False)
        # forkserver: no fork of a threaded parent; the preloaded server forks cheap workers
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["scheduler.fleet"])
        return ProcessPoolExecutor(
            self.config.workers, mp_context=ctx, initializer=die_with, initargs=(os.getpid(),)
        )

    def renew(self) -> None:
        """Replace a broken pool (a worker process died) with a fresh one."""
        self._replace_executor()

    def _replace_executor(self) -> None:
        if self._executor is not None:
            _shutdown(self._executor, wait=False)
        self._executor = self._new_executor()
        self._generation += 1

    def close(self) -> None:
        """Stop the pool, or disconnect from (and stop) the Dask cluster."""
        if self._executor is not None:
            _shutdown(self._executor, wait=True)
            self._executor = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def run(
        self,
        jobs: Sequence[SiteJob],
        shared: pd.DataFrame,
        on_sites_done: Callable[[int], object] | None = None,
    ) -> FleetReport:
        """Solve one cycle for ``jobs`` on the shared frame; a report for every site.

        Parameters
        ----------
        jobs : sequence of SiteJob
            The sites; ids should be unique.
        shared : pandas.DataFrame
            Per-slot frame on a tz-aware UTC index: the columns of :data:`SHARED_INPUTS`
            that apply, ``pv_kw`` and ``load_kw`` reference profiles [kW].
        on_sites_done : callable, optional
            Called with the number of sites of each chunk that finished (a progress bar).
        """
        self.open()
        t0 = time.perf_counter()
        cfg = self.config
        shared = shared_columns(shared)
        chunks = [
            FleetChunk(shared, group, cfg.solver, cfg.schedule_slots)
            for group in chunked(jobs, cfg.chunk_size)
        ]
        deadline = None if cfg.cycle_timeout_s is None else t0 + cfg.cycle_timeout_s
        cycle = _Cycle(chunks, deadline, on_sites_done)
        todo = list(range(len(chunks)))
        for in_flight in (len(chunks), cfg.workers, 1):
            todo = self._round(cycle, todo, in_flight)
            if not todo:
                break
        # what is left broke its pool even when it ran alone: the culprit (already WORKER_LOST)
        reports: list[SiteReport] = []
        for i, chunk in enumerate(chunks):
            if i in cycle.done:
                reports.extend(cycle.done[i])
            else:
                status, reason = cycle.failed[i]
                reports.extend(SiteReport(j.site_id, status, reason) for j in chunk.jobs)
        return FleetReport(tuple(reports), time.perf_counter() - t0)

    def _round(self, cycle: _Cycle, todo: list[int], in_flight: int) -> list[int]:
        """Run ``todo`` with at most ``in_flight`` chunks at once; returns chunks to re-run.

        A chunk whose worker died is re-run: a local pool's break fails every chunk in flight,
        and Dask fails the chunks that were on the dying worker, not only the culprit.
        """
        queue = list(reversed(todo))
        running: dict[Future[list[SiteReport]], tuple[int, int]] = {}
        again: list[int] = []
        while queue or running:
            while queue and len(running) < in_flight:
                i = queue.pop()
                fut = self._submit(cycle.chunks[i])
                running[fut] = (i, self._generation)
            timeout = cycle.time_left()
            finished, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            if not finished:  # the cycle budget is spent
                for i in [*(i for i, _ in running.values()), *queue]:
                    cycle.failed[i] = (SiteStatus.TIMEOUT, "not finished within the cycle budget")
                self._replace_executor()
                return []
            broken = False
            for fut in finished:
                i, generation = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    cycle.done[i] = fut.result()
                    if cycle.on_sites_done is not None:
                        cycle.on_sites_done(len(cycle.done[i]))
                    continue
                status = _task_failure_status(exc)
                cycle.failed[i] = (status, f"{type(exc).__name__}: {exc}")
                if status == SiteStatus.WORKER_LOST:
                    # chunks in flight on a dying worker (or pool) fail with the culprit's
                    again.append(i)
                if isinstance(exc, BrokenExecutor):
                    # the other chunks of that pool fail the same way: replace it once
                    broken = broken or generation == self._generation
            if broken:
                self._replace_executor()
        return again

    def _submit(self, chunk: FleetChunk) -> Future[list[SiteReport]]:
        assert self._executor is not None
        try:
            return self._executor.submit(solve_chunk, chunk)
        except BrokenExecutor:
            self._replace_executor()
            return self._executor.submit(solve_chunk, chunk)
