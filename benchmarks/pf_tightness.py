"""How far the decision-quality benchmark's perfect-foresight plan is from its exact optimum.

Perfect foresight is one week-long plan, solved at the controller's tuning (within 0.5 % of
its gross value or 1 cent). A capture above 100 % could mean that gap, or that the plan's own
objective (terminal value at the week's end) is not the fair score's (the end state valued by
the next day's plan). This solves each week's perfect foresight again at 0.01 % and prints the
fair net of both.

Usage::

    nice .venv/bin/python benchmarks/pf_tightness.py 2024-09-02:3500 2024-06-10:3500
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd
from decision_quality import measured_inputs

from scheduler.controller import SiteConfig
from scheduler.fair_score import Scorer, plan_trace
from scheduler.simulate import perfect_foresight
from simulation.twin import Twin


def week(start: pd.Timestamp, annual_kwh: float) -> list[dict[str, object]]:
    """Fair net of perfect foresight at the shipped and a 0.01 % gap, one row each."""
    end = start + pd.Timedelta(days=7)
    inputs = measured_inputs(start, 7, annual_kwh, "perfect").for_period(start, end)
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    prices = inputs.tariff_prices(index)
    twin0 = Twin(inputs.twin_params(), inputs.profiles(start, end))
    config = SiteConfig("pf", watchdog_timeout_s=180, home=inputs.physical_home(),
                        hp_temp_init_c=twin0.t_store_c)  # fmt: skip
    scorer = Scorer(inputs, start, end, config.tuning)
    tight = replace(config.tuning, mip_gap=1e-4, mip_abs_gap_eur=0.002, time_limit_s=300)
    rows: list[dict[str, object]] = []
    for name, tuning in (("shipped", config.tuning), ("0.01 %", tight)):
        t0 = time.perf_counter()
        twin = Twin(inputs.twin_params(), inputs.profiles(start, end))
        plan = perfect_foresight(replace(config, tuning=tuning), twin, start, end, twin0.soc,
                                 prices=prices)  # fmt: skip
        rows.append({
            "week": f"{start:%Y-%m-%d}", "kWh/a": f"{annual_kwh:.0f}", "gap": name,
            "fair net EUR": round(scorer.score(plan_trace(plan, twin0.t_store_c)).full.net_eur, 3),
            "status": plan.summary.status, "reported gap": f"{plan.summary.mip_gap:.4%}",
            "wall s": round(time.perf_counter() - t0, 1),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weeks", nargs="+", help="START:KWH_PER_YEAR, e.g. 2024-09-02:3500")
    args = parser.parse_args()
    rows = []
    for item in args.weeks:
        start, size = item.split(":")
        rows += week(pd.Timestamp(start, tz="UTC"), float(size))
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
