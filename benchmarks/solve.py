"""Optimizer speed on the bundled real scenario: build, solve and total time per plan.

Usage::

    .venv/bin/python benchmarks/solve.py [--days 6] [--repeats 3] [--backends highs,pulp]
    .venv/bin/python benchmarks/solve.py --suite hard [--days 30] [--cases "hp min"] [--slots 192]
        [--repeats 3]

For each horizon (96 and 192 slots at 15 min, 48 at 30 min) x device set (battery; + EV;
+ EV + heat pump) x backend, it plans the typical home (scheduler.scenario.Home: 8 kWp,
10 kWh, 11 kW wallbox in smart mode, 3 kW heat pump) from midnight of ``--days`` days spread
over 2024 (real prices, weather, load), ``--repeats`` times each, and prints medians.

``--suite hard`` runs the structures that make the MILP hard (:mod:`hard_cases`: EV with
1p/3p switching and 6 A minimum needing 30-60 kWh, 4-hour runs of equal prices, days with
negative prices, a heat pump with a 1-hour minimum run, two wallboxes) on ``--days`` real days
spread over the bundled prices (2024-01..2025-09), ``--repeats`` times each plan, and prints
median, p90 and max of the total time per plan, each plan's the median of its repeats (wall
clock, and the process's CPU time, which a shared machine disturbs less: HiGHS runs on one
thread), the largest reported gap and which step of the solve sequence
ended each plan. ``--explain`` adds, for every plan that needed branch and bound, where its
objective and the exact optimum (HiGHS at zero gap) lie above the LP bound, in units of the
plan's gap tolerance: an optimum at most 1 above means a better heuristic alone would end the
plan without branch and bound; above 1, only a tighter bound can.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import numpy as np
import pandas as pd
from hard_cases import CASES

from core.blas import one_blas_thread
from optimizer import Problem, optimize
from optimizer.formulate import formulate
from optimizer.lazy import gap_tolerance
from optimizer.solvers import SolveOptions
from optimizer.solvers.highs import HighsSession
from scheduler.scenario import DEVICE_SETS, Home, scenario_problem

HORIZONS = ((96, 15), (192, 15), (48, 30))
#: Berlin midnights across the seasons of 2024 (measured DWD weather in the June and January
#: weeks, the test reference year elsewhere).
DAYS = (
    "2024-01-09T23:00Z",
    "2024-03-14T23:00Z",
    "2024-05-01T22:00Z",
    "2024-06-11T22:00Z",
    "2024-06-13T22:00Z",
    "2024-08-20T22:00Z",
    "2024-10-15T22:00Z",
    "2024-12-02T23:00Z",
)


def run(days: int, repeats: int, backends: list[str]) -> pd.DataFrame:
    rows = []
    for periods, step in HORIZONS:
        for name, devices in DEVICE_SETS.items():
            home = Home().with_devices(devices)
            problems = [scenario_problem(home, day, periods, step)[0] for day in DAYS[:days]]
            for backend in backends:
                reps = repeats if backend == "highs" else 1
                build, solve, total, objective = [], [], [], []
                for problem in problems:
                    for _ in range(reps):
                        t0 = time.perf_counter()
                        plan = optimize(problem, backend)
                        total.append((time.perf_counter() - t0) * 1e3)
                        build.append(plan.summary.build_ms)
                        solve.append(plan.summary.solve_ms)
                        objective.append(plan.summary.objective_eur)
                s = plan.summary
                rows.append(
                    {
                        "slots": f"{periods} x {step} min",
                        "devices": name,
                        "backend": backend,
                        "build_ms": statistics.median(build),
                        "solve_ms": statistics.median(solve),
                        "total_ms": statistics.median(total),
                        "p90_total_ms": sorted(total)[int(0.9 * (len(total) - 1))],
                        "vars/ints": f"{s.num_vars}/{s.num_integers}",
                        "objective_eur": statistics.median(objective),
                    }
                )
    return pd.DataFrame(rows)


def explain(problem: Problem, objective_eur: float) -> dict[str, float]:
    """The LP bound, ``objective_eur`` and the exact optimum of ``problem``, the last two as
    multiples of the gap tolerance above the LP bound."""
    canonical = formulate(problem).problem
    tuning = problem.tuning
    lp = HighsSession(canonical).solve(
        canonical.col_lower,
        canonical.col_upper,
        np.zeros(canonical.num_cols, dtype=bool),
        SolveOptions(time_limit_s=60.0),
    )
    tol = gap_tolerance(canonical, lp.x, SolveOptions(tuning.mip_gap, tuning.mip_abs_gap_eur))
    exact = HighsSession(canonical).solve(
        canonical.col_lower,
        canonical.col_upper,
        canonical.integrality,
        SolveOptions(mip_gap=0.0, mip_abs_gap=1e-4, time_limit_s=120.0),
    )
    return {
        "lp_bound_eur": lp.objective,
        "tolerance_eur": tol,
        "plan_above_lp": (objective_eur - lp.objective) / tol,
        "optimum_above_lp": (exact.objective - lp.objective) / tol,
    }


def run_hard(
    days: int,
    names: str = "",
    slots: int = 0,
    explained: list[dict] | None = None,
    repeats: int = 1,
) -> pd.DataFrame:
    """The hard suite; only the cases whose name contains ``names`` and, unless 0, with
    ``slots`` slots. Each plan is made ``repeats`` times and its median time counts (one
    plan timed once on a shared machine moves the p90, the 4th slowest of 30, by 10 %). With
    ``explained`` a list, :func:`explain` each plan that needed branch and bound into it."""
    rows = []
    for case in CASES:
        if names not in case.name or slots not in (0, case.periods):
            continue
        problems = case.problems(days)
        optimize(problems[0])  # warm-up: imports and HiGHS's first call
        total, cpu, gaps, stages = [], [], [], Counter()
        for problem in problems:
            walls, cpus = [], []
            for _ in range(max(repeats, 1)):
                t0, c0 = time.perf_counter(), time.process_time()
                plan = optimize(problem)
                walls.append((time.perf_counter() - t0) * 1e3)
                cpus.append((time.process_time() - c0) * 1e3)
            total.append(statistics.median(walls))
            cpu.append(statistics.median(cpus))
            gaps.append(plan.summary.mip_gap)
            stages[plan.summary.stage if plan.summary.status == "optimal" else "NOT optimal"] += 1
            if explained is not None and plan.summary.stage in ("partial", "mip"):
                row = {"case": case.name, "slots": case.periods, "day": len(cpu) - 1}
                row |= {"stage": plan.summary.stage, "cpu_ms": cpu[-1]}
                explained.append(row | explain(problem, plan.summary.objective_eur))
        total.sort()
        cpu.sort()
        rows.append(
            {
                "case": case.name,
                "slots": case.periods,
                "days": len(problems),
                "median_ms": statistics.median(total),
                "p90_ms": total[int(0.9 * (len(total) - 1))],
                "max_ms": total[-1],
                "cpu_median_ms": statistics.median(cpu),
                "cpu_p90_ms": cpu[int(0.9 * (len(cpu) - 1))],
                "cpu_max_ms": cpu[-1],
                "max_gap_%": 100 * max(gaps),
                "ended by": " ".join(f"{k}:{v}" for k, v in sorted(stages.items())),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6, help=f"1..{len(DAYS)} scenario days")
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats per day (HiGHS) or hard plan; medians"
    )
    parser.add_argument("--backends", default="highs,pulp", help="comma-separated")
    parser.add_argument("--suite", choices=("scenario", "hard"), default="scenario")
    parser.add_argument("--cases", default="", help="hard suite: only cases whose name has this")
    parser.add_argument("--slots", type=int, default=0, help="hard suite: only this horizon")
    parser.add_argument(
        "--explain", action="store_true", help="hard suite: plans that branched vs the optimum"
    )
    args = parser.parse_args()
    one_blas_thread()  # as the service plans (core.blas)
    if args.suite == "hard":
        explained: list[dict] | None = [] if args.explain else None
        table = run_hard(args.days, args.cases, args.slots, explained, args.repeats)
        if explained:
            with pd.option_context("display.width", 160, "display.max_columns", 20):
                print(pd.DataFrame(explained).to_string(index=False, float_format="{:.2f}".format))
    else:
        table = run(min(args.days, len(DAYS)), args.repeats, args.backends.split(","))
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
