"""Model error: the perfect-foresight plan's predicted cost against the plan played on the twin.

For each week the perfect-foresight plan (one solve over the week on the actual data) is played
back minute by minute on the physical twin (:mod:`scheduler.playback`), exactly (setpoints as
planned) and through the box command rules of the controller, all rules and one device at a
time, and on the previous default twin (``SiteParams()``, COP 3.0 at 0 degC instead of the
optimizer's 2.94). Each row is the fair net cost [EUR] minus the plan's own prediction, so the
columns show which model difference costs what.

Usage::

    .venv/bin/python benchmarks/pf_model_error.py 2024-01-08 2024-03-04 2024-06-01 2024-06-10
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import pandas as pd

from scheduler.backtest_inputs import bundled_inputs
from scheduler.controller import SiteConfig
from scheduler.fair_score import Scorer, plan_trace, steps_trace
from scheduler.playback import play_back
from scheduler.simulate import perfect_foresight
from simulation.twin import SiteParams, Twin

VARIANTS: dict[str, object] = {
    "exact": "exact",
    "box rules": "box",
    "battery rule": ("battery",),
    "battery + ceiling": ("battery-ceiling",),
    "EV rule": ("ev",),
    "HP rule": ("hp",),
}


def week(start: pd.Timestamp, days: int) -> dict[str, float]:
    """Predicted fair net [EUR] and each playback's difference to it [EUR]."""
    end = start + pd.Timedelta(days=days)
    config = SiteConfig("model-error")
    inputs = bundled_inputs(start, days, config.home).for_period(start, end)
    index = pd.date_range(start, end, freq="15min", inclusive="left")

    def twin(params: SiteParams | None = None) -> Twin:
        return Twin(params or inputs.twin_params(), inputs.profiles(start, end))

    t = twin()
    temp0 = t.t_store_c
    plan = perfect_foresight(
        replace(config, hp_temp_init_c=temp0), t, start, end, t.soc,
        prices=inputs.tariff_prices(index),
    )  # fmt: skip
    scorer = Scorer(inputs, start, end, config.tuning)
    predicted = scorer.score(plan_trace(plan, temp0)).full.net_eur
    row = {"predicted": predicted}
    for name, mode in VARIANTS.items():
        steps = play_back(plan, twin(), mode)  # type: ignore[arg-type]
        row[name] = scorer.score(steps_trace(steps, temp0)).full.net_eur - predicted
    steps = play_back(plan, twin(SiteParams()), "exact")
    row["exact, old twin"] = scorer.score(steps_trace(steps, temp0)).full.net_eur - predicted
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("starts", nargs="+", help="first days (UTC), e.g. 2024-06-01")
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    rows, walls = {}, []
    for s in args.starts:
        t0 = time.perf_counter()
        rows[s] = week(pd.Timestamp(s, tz="UTC"), args.days)
        walls.append(time.perf_counter() - t0)
    table = pd.DataFrame(rows).T
    print(f"fair net cost: PF prediction [EUR] and playback - prediction [EUR], {args.days} days")
    print(table.to_string(float_format=lambda v: f"{v:8.2f}"))
    print(f"median {table.median().round(2).to_dict()}")
    print(f"wall per period: median {pd.Series(walls).median():.1f} s, p90 "
          f"{pd.Series(walls).quantile(0.9):.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
