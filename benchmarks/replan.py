"""Closed-loop replanning: one day of 96 replans, each 15 min after the last, cold or warm.

Usage::

    .venv/bin/python benchmarks/replan.py [--days 3]

Each replan plans 24 h ahead from the next quarter-hour (the typical home of
:mod:`scheduler.scenario` with battery, an EV with 1p/3p switching that needs 30-60 kWh and a
heat pump), its state taken from the previous plan's first slot (perfect forecast). Every
problem is solved twice: cold, and warm from the previous plan (``optimize(..., previous=)``:
its LP basis shifted by one slot starts the relaxation, its on/off pattern shifted likewise is
tried after the repair rules). Prints the first replan and the
median and p90 of the others, wall clock and CPU time [ms].
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from hard_cases import ev_1p3p, spread_days

from optimizer import Plan, Problem, optimize
from scheduler.scenario import Home


def next_problem(problem: Problem, plan: Plan, home: Home, day: pd.Timestamp, i: int) -> Problem:
    """The problem 15 minutes later, starting from where ``plan``'s first slot ends."""
    start = problem.inputs.index[1]
    new = ev_1p3p(home, start, i, problem.inputs.n)
    first = plan.slots.iloc[0]
    soc = float(first["battery_soc"]) if "battery_soc" in first else problem.state.battery_soc
    temps = {hp.name: float(first[f"{hp.name}_temp_c"]) for hp in problem.site.heat_pumps}
    (session,) = problem.state.ev_sessions
    session = replace(session, energy_kwh=float(first["ev_energy_kwh"]))
    return replace(
        new, state=replace(new.state, battery_soc=soc, hp_temp_c=temps, ev_sessions=(session,))
    )


def timed(problem: Problem, previous: Plan | None) -> tuple[Plan, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    plan = optimize(problem, previous=previous)
    return plan, (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def run(days: int) -> pd.DataFrame:
    home = Home()
    rows = []
    for i, day in enumerate(spread_days(days)):
        problem = ev_1p3p(home, day, i, 96)
        problems, plans = [problem], []
        for _ in range(96):
            plans.append(optimize(problems[-1]))
            problems.append(next_problem(problems[-1], plans[-1], home, day, i))
        for mode in ("cold", "warm"):
            wall, cpu, previous = [], [], None
            for problem in problems[:96]:
                plan, w, c = timed(problem, previous if mode == "warm" else None)
                wall.append(w)
                cpu.append(c)
                previous = plan
            rest_w, rest_c = sorted(wall[1:]), sorted(cpu[1:])
            rows.append(
                {
                    "day": day.strftime("%Y-%m-%d"),
                    "start": mode,
                    "first_ms": wall[0],
                    "median_ms": statistics.median(rest_w),
                    "p90_ms": rest_w[int(0.9 * (len(rest_w) - 1))],
                    "cpu_first_ms": cpu[0],
                    "cpu_median_ms": statistics.median(rest_c),
                    "cpu_p90_ms": rest_c[int(0.9 * (len(rest_c) - 1))],
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    table = run(args.days)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(np.round(table.groupby("start")[["median_ms", "cpu_median_ms"]].median(), 1))


if __name__ == "__main__":
    main()
