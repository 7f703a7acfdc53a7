"""Decision quality of the closed loop: weeks across the seasons, three household sizes.

Each period runs :func:`scheduler.backtest.backtest` (the production controller against the
box's twin, in-process) on :class:`~scheduler.backtest_inputs.BacktestInputs` built from the
bundled data with a **measured** household load (the UCI Sceaux household, its minute data
scaled to the household's annual energy) instead of the standard profile, and the weather
the bundled data have (DWD measured for 2024-01-08 and 2024-06-10 weeks, else the Potsdam
TRY). Runs compared, all on the fair score of ``docs/scheduler.md``:

* **no control**: the box's logic with the battery idle (the car at full power from
  plug-in, the heat pump's thermostat);
* **rule-based**: the box's own self-consumption logic (battery follows the house), the car
  charged from plug-in;
* **controller**; **perfect foresight** (as predicted).

Per period and household it prints the fair net cost of each, capture against the rule-based
system (fair net; and without the EV shortfall term), EV sessions met / total and kWh short,
comfort violations (degree-hours of the heat store below the comfort band), self-consumption
and wall time; then the median and worst capture.

Usage::

    nice .venv/bin/python benchmarks/decision_quality.py --days 7   # 4 weeks x 3 sizes
    .venv/bin/python benchmarks/decision_quality.py --days 2 --sizes 3500 --starts 2024-06-10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from adapters import datasets
from scheduler.backtest import backtest
from scheduler.backtest_inputs import BacktestInputs, bundled_inputs
from scheduler.controller import SiteConfig
from scheduler.fair_score import Scorer, steps_trace
from scheduler.scenario import Home
from scheduler.simulate import run_no_control
from simulation.twin import Twin

STARTS = ("2024-01-08", "2024-03-04", "2024-06-10", "2024-09-02")
SIZES = (2000.0, 3500.0, 6000.0)


def measured_inputs(start: pd.Timestamp, days: int, annual_kwh: float) -> BacktestInputs:
    """The bundled inputs with the UCI household's load scaled to ``annual_kwh`` [kWh/a]."""
    home = Home(annual_load_kwh=annual_kwh)
    base = bundled_inputs(start, days, home)
    index = pd.DatetimeIndex(base.load_kw.index)
    minutes = pd.date_range(index[0], index[-1] + pd.Timedelta(minutes=15), freq="1min",
                            inclusive="left")  # fmt: skip
    uci = datasets.uci_load_for_period(minutes)
    load = uci * annual_kwh / (float(uci.mean()) * 8760)
    return replace(base, load_kw=load)


def comfort_kh(steps: pd.DataFrame, comfort_min_c: float) -> float:
    """Degree-hours of the store below ``comfort_min_c`` [K h]."""
    below = np.clip(comfort_min_c - steps["t_store_c"].to_numpy(float), 0, None)
    return float((below * steps["dt_s"].to_numpy(float) / 3600).sum())


def period(start: pd.Timestamp, days: int, annual_kwh: float) -> dict[str, float | str]:
    """One period and household: the printed row."""
    t0 = time.perf_counter()
    end = start + pd.Timedelta(days=days)
    inputs = measured_inputs(start, days, annual_kwh).for_period(start, end)
    config = SiteConfig("decision-quality", watchdog_timeout_s=180)
    with tempfile.TemporaryDirectory(prefix="hbopt-dq-") as tmp:
        result = backtest(start, days, config, inputs=inputs, progress=False, store_dir=tmp)
    params = inputs.twin_params()
    idle = replace(params, battery=replace(params.battery, charge_max_kw=0.0,
                                           discharge_max_kw=0.0))  # fmt: skip
    temp0 = params.heat_pump.t_init_c
    nc_steps = run_no_control(Twin(idle, inputs.profiles(start, end)), start, end)
    scorer = Scorer(inputs, start, end, config.tuning)
    scores = {"no control": scorer.score(steps_trace(nc_steps, temp0)).full}
    scores |= {k: result.scores[k].full for k in ("rule-based", "controller", "perfect foresight")}
    net = {k: s.net_eur for k, s in scores.items()}
    dry = {k: s.net_eur - s.ev_short_eur for k, s in scores.items()}
    hp = inputs.home.site.heat_pumps
    comfort_min = hp[0].comfort_min_c if hp else -np.inf
    ctl = scores["controller"]
    return {
        "period": f"{start:%Y-%m-%d}+{days}d",
        "kWh/a": f"{annual_kwh:.0f}",
        **{f"net {k}": v for k, v in net.items()},
        "capture": _capture(net),
        "capture w/o EV": _capture(dry),
        "EV met": f"{ctl.ev_met}/{ctl.ev_total}",
        "EV short kWh": ctl.ev_short_kwh,
        "comfort K h": comfort_kh(result.run.steps, comfort_min),
        "self-cons.": result.controlled.self_consumption,
        "wall s": time.perf_counter() - t0,
    }


def _capture(net: dict[str, float]) -> float:
    gap = net["rule-based"] - net["perfect foresight"]
    return (net["rule-based"] - net["controller"]) / gap if gap > 1e-9 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--starts", nargs="+", default=list(STARTS), help="first days (UTC)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--sizes", nargs="+", type=float, default=list(SIZES),
                        help="household sizes [kWh/a]")  # fmt: skip
    args = parser.parse_args()
    rows = []
    for s in args.starts:
        for size in args.sizes:
            rows.append(period(pd.Timestamp(s, tz="UTC"), args.days, size))
            print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.2f"), flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    cap = table["capture"]
    walls = table["wall s"]
    print(
        f"capture (fair net, EV shortfall at 0.55 EUR/kWh): median {cap.median():.0%}, "
        f"worst {cap.min():.0%}; controller worse than rule-based on "
        f"{int((table['net controller'] > table['net rule-based'] + 1e-9).sum())} of {len(table)}"
    )
    print(f"wall per run: median {walls.median():.0f} s, p90 {walls.quantile(0.9):.0f} s")


if __name__ == "__main__":
    main()
