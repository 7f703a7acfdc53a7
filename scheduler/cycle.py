"""The compute step of one control cycle, as a picklable request and result.

A cycle's I/O (telemetry, prices, the box) happens in the event loop; the solve runs here, in a
worker process (a local process pool or a Dask worker), so it never blocks the loop. Both the
single-site controller and the fleet runner submit :func:`plan_cycle`; failures come back as a
result with ``ok=False`` and a reason, never as an exception that could take other sites down.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from optimizer import Plan, PlanSummary, Problem, Setpoints, optimize


@dataclass(frozen=True)
class CycleRequest:
    """Everything one site's solve needs; plain data, so it pickles to any worker.

    Parameters
    ----------
    site_id : str
        The site's id (for results and logs).
    problem : Problem
        Site configuration, live state, forecast inputs and tuning.
    solver : str
        Solver backend name (``highs`` default).
    schedule_slots : int
        How many slots of the plan become the box schedule (including the current one).
    """

    site_id: str
    problem: Problem
    solver: str = "highs"
    schedule_slots: int = 192


@dataclass(frozen=True)
class CycleResult:
    """The outcome of one solve.

    ``setpoints[0]`` is for the current slot (live setpoints); all of them form the schedule.
    ``slots`` is the plan's per-slot frame, ``summary`` its totals. On failure ``ok`` is false,
    ``error`` says why and the plan fields are empty.
    """

    site_id: str
    ok: bool
    setpoints: Sequence[Setpoints] = ()
    slots: pd.DataFrame | None = None
    summary: PlanSummary | None = None
    error: str = ""
    cycle_ms: float = 0.0
    detail: str = field(default="", repr=False)


def plan_cycle(request: CycleRequest) -> CycleResult:
    """Solve one site's problem and turn the plan into setpoints; never raises."""
    t0 = time.perf_counter()
    try:
        plan: Plan = optimize(request.problem, request.solver)
        setpoints = plan.schedule(request.schedule_slots)
        return CycleResult(
            request.site_id,
            True,
            setpoints,
            plan.slots,
            plan.summary,
            cycle_ms=(time.perf_counter() - t0) * 1e3,
        )
    except Exception as exc:  # one site's failure must not stop the fleet
        return CycleResult(
            request.site_id,
            False,
            error=f"{type(exc).__name__}: {exc}",
            cycle_ms=(time.perf_counter() - t0) * 1e3,
            detail=traceback.format_exc(),
        )
