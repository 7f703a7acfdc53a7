"""``hbopt backtest``: the controller in accelerated time over historical days, and baselines.

The same :class:`~scheduler.controller.SiteController` as in production runs against
the box logic and its physical twin on a simulated clock, over the bundled real prices
(as published: tomorrow's only after 13:00), weather, household load and EV sessions. The
backtest talks to the box in-process (:class:`~simulation.box_inprocess.InProcessClient`,
the real client minus TCP) to keep a week in about two minutes; the tests and ``hbopt demo``
use the real Modbus server.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from scheduler.controller import SiteConfig
from scheduler.simulate import (
    ClosedLoopRun,
    Outcome,
    outcome_from_plan,
    outcome_from_steps,
    perfect_foresight,
    period_prices,
    run_closed_loop,
    run_no_control,
    valuation,
)
from simulation.twin import Twin


@dataclass(frozen=True)
class BacktestResult:
    """Outcomes of the three runs over the same period, and the controller's run."""

    start: pd.Timestamp
    end: pd.Timestamp
    controlled: Outcome
    no_control: Outcome
    perfect: Outcome
    run: ClosedLoopRun
    wall_s: dict[str, float]


def backtest(
    start: pd.Timestamp,
    days: int,
    config: SiteConfig | None = None,
    *,
    transport: Literal["modbus", "inprocess"] = "inprocess",
    progress: bool = True,
    store_dir: str | None = None,
) -> BacktestResult:
    """Run the controller and both baselines from ``start`` (UTC) for ``days`` days."""
    config = config or SiteConfig("backtest", watchdog_timeout_s=180)
    end = start + pd.Timedelta(days=days)
    walls: dict[str, float] = {}
    twin = Twin.from_bundled_data(start, days + 1)
    soc0 = twin.soc
    t0 = time.perf_counter()
    run = asyncio.run(
        run_closed_loop(
            config, twin, start, end, transport=transport, store_dir=store_dir,
            progress=progress, desc="backtest",
        )
    )  # fmt: skip
    walls["closed loop"] = time.perf_counter() - t0
    if progress:
        print("backtest: the two baselines (no control, perfect foresight)", file=sys.stderr)
    t0 = time.perf_counter()
    base = run_no_control(Twin.from_bundled_data(start, days + 1), start, end)
    walls["no control"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    plan = perfect_foresight(config, Twin.from_bundled_data(start, days + 1), start, end, soc0)
    walls["perfect foresight"] = time.perf_counter() - t0
    prices = period_prices(config, start, end)
    value = valuation(config, prices)
    temp0 = twin.site.heat_pump.t_init_c
    return BacktestResult(
        start,
        end,
        outcome_from_steps(run.steps, prices, value, temp0),
        outcome_from_steps(base, prices, value, temp0),
        outcome_from_plan(plan, value, temp0),
        run,
        walls,
    )


ROWS: tuple[tuple[str, str, str], ...] = (
    ("net_cost_eur", "net cost [EUR]", "{:10.2f}"),
    ("cost_eur", "energy cost [EUR]", "{:10.2f}"),
    ("value_left_eur", "value stored (batt/heat/EV)", "{:10.2f}"),
    ("import_kwh", "grid import [kWh]", "{:10.1f}"),
    ("export_kwh", "grid export [kWh]", "{:10.1f}"),
    ("pv_kwh", "PV used [kWh]", "{:10.1f}"),
    ("self_consumption", "self-consumption [%]", "{:10.1%}"),
    ("co2_kg", "grid CO2 [kg]", "{:10.1f}"),
    ("ev_kwh", "EV charged [kWh]", "{:10.1f}"),
    ("hp_kwh", "heat pump [kWh]", "{:10.1f}"),
    ("soc_end", "battery SOC at end [%]", "{:10.0%}"),
)


def format_outcomes(columns: dict[str, Outcome]) -> str:
    """A table with one column per run."""
    head = f"{'':28}" + "".join(f"{name:>20}" for name in columns)
    lines = [head]
    for attr, label, fmt in ROWS:
        cells = "".join(f"{fmt.format(getattr(o, attr)):>20}" for o in columns.values())
        lines.append(f"{label:28}{cells}")
    return "\n".join(lines)


def format_result(result: BacktestResult) -> str:
    """The comparison table, savings and run statistics."""
    ctl, base, best = result.controlled, result.no_control, result.perfect
    table = format_outcomes({"controller": ctl, "no control": base, "perfect foresight": best})
    reports = result.run.controller.reports
    failed = sum(not r.ok for r in reports)
    gap = base.net_cost_eur - best.net_cost_eur
    saved = base.net_cost_eur - ctl.net_cost_eur
    captured = saved / gap if gap > 1e-9 else float("nan")
    lines = [
        f"period {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC",
        table,
        "",
        f"saving vs no control   {saved:8.2f} EUR net "
        f"({captured:.0%} of the perfect-foresight saving {gap:.2f} EUR), "
        f"CO2 {base.co2_kg - ctl.co2_kg:+.1f} kg avoided",
        f"cycles                 {len(reports)} ({failed} failed), "
        f"median solve {pd.Series([r.solve_ms for r in reports]).median():.0f} ms",
        "wall time              " + ", ".join(f"{k} {v:.1f} s" for k, v in result.wall_s.items()),
        "net cost = energy cost - value of the battery energy and heat gained and of the "
        "energy charged into cars (all at the period's mean import price)",
    ]
    return "\n".join(lines)
