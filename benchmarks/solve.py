"""Optimizer speed on the bundled real scenario: build, solve and total time per plan.

Usage::

    .venv/bin/python benchmarks/solve.py [--days 6] [--repeats 3] [--backends highs,pulp]

For each horizon (96 and 192 slots at 15 min, 48 at 30 min) x device set (battery; + EV;
+ EV + heat pump) x backend, it plans the typical home (scheduler.scenario.Home: 8 kWp,
10 kWh, 11 kW wallbox in smart mode, 3 kW heat pump) from midnight of ``--days`` days spread
over 2024 (real prices, weather, load), ``--repeats`` times each, and prints medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd

from optimizer import optimize
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6, help=f"1..{len(DAYS)} scenario days")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per day (HiGHS)")
    parser.add_argument("--backends", default="highs,pulp", help="comma-separated")
    args = parser.parse_args()
    table = run(min(args.days, len(DAYS)), args.repeats, args.backends.split(","))
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
