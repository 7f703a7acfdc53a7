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
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import pandas as pd

from scheduler.backtest_inputs import BacktestInputs, bundled_inputs
from scheduler.controller import SiteConfig, SiteController
from scheduler.fair_score import (
    REPLACEMENT_EUR_PER_KWH,
    RunScores,
    Scorer,
    plan_trace,
    steps_trace,
)
from scheduler.playback import play_back
from scheduler.simulate import (
    ClosedLoopRun,
    Outcome,
    outcome_from_plan,
    outcome_from_steps,
    perfect_foresight,
    run_closed_loop,
    run_no_control,
    valuation,
)
from simulation.twin import Twin

T = TypeVar("T")


@dataclass(frozen=True)
class BacktestResult:
    """Outcomes and fair scores of the runs over the same period, and the controller's run.

    ``scores`` holds the fair scores (:mod:`scheduler.fair_score`) of ``controller``,
    ``rule-based`` (the box's own logic: no control), ``perfect foresight`` (the plan as the
    optimizer predicts it) and the perfect-foresight plan played back on the twin
    (``pf on twin``: exact setpoints, ``pf via box rules``: the controller's commands).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    controlled: Outcome
    no_control: Outcome
    perfect: Outcome
    run: ClosedLoopRun
    wall_s: dict[str, float]
    scores: dict[str, RunScores] = field(default_factory=dict)
    replacement_eur_per_kwh: float = REPLACEMENT_EUR_PER_KWH


def backtest(
    start: pd.Timestamp,
    days: int,
    config: SiteConfig | None = None,
    *,
    inputs: BacktestInputs | None = None,
    transport: Literal["modbus", "inprocess"] = "inprocess",
    progress: bool = True,
    store_dir: str | None = None,
    replacement_eur_per_kwh: float = REPLACEMENT_EUR_PER_KWH,
    watch: Callable[[SiteController], None] | None = None,
) -> BacktestResult:
    """Run the controller and the baselines from ``start`` (UTC) for ``days`` days.

    Parameters
    ----------
    start : pandas.Timestamp
        First slot, tz-aware.
    days : int
        Length of the period [days].
    config : SiteConfig, optional
        The controller's configuration; its ``home`` is replaced by ``inputs.home``.
    inputs : BacktestInputs, optional
        The data everything runs on: the controller's prices, CO2, weather and heat demand,
        the twin's PV, load, temperatures and EV sessions, the baselines and the score. Default:
        :func:`~scheduler.backtest_inputs.bundled_inputs` for ``config.home``.
    replacement_eur_per_kwh : float
        Price of EV energy not delivered by a session's real departure [EUR/kWh].
    watch : callable, optional
        Called with the controller after every simulated minute.

    Raises
    ------
    InputError
        ``inputs`` do not cover the period (the message names the argument).
    """
    config = config or SiteConfig("backtest", watchdog_timeout_s=180)
    end = start + pd.Timedelta(days=days)
    if inputs is None:
        inputs = bundled_inputs(start, days, config.home)
    inputs = inputs.for_period(start, end)
    config = replace(config, home=inputs.home)
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    prices = inputs.tariff_prices(index)

    def twin() -> Twin:
        return Twin(inputs.twin_params(), inputs.profiles(start, end))

    walls: dict[str, float] = {}
    twin0 = twin()
    soc0, temp0 = twin0.soc, twin0.t_store_c
    t0 = time.perf_counter()
    run = run_sync(
        run_closed_loop(
            config, twin0, start, end, transport=transport, store_dir=store_dir,
            progress=progress, desc="backtest", inputs=inputs, watch=watch,
        )
    )  # fmt: skip
    walls["closed loop"] = time.perf_counter() - t0
    if progress:
        print("backtest: the two baselines (no control, perfect foresight)", file=sys.stderr)
    t0 = time.perf_counter()
    base = run_no_control(twin(), start, end)
    walls["no control"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # perfect foresight knows the building as built (it differs with a true heat loss)
    config_pf = replace(config, hp_temp_init_c=temp0, home=inputs.physical_home())
    plan = perfect_foresight(config_pf, twin(), start, end, soc0, prices=prices)
    walls["perfect foresight"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer = Scorer(inputs, start, end, config.tuning, replacement_eur_per_kwh)
    rules = ("battery-ceiling", "ev", "hp") if config.soc_ceiling else "box"
    scores = {
        "controller": scorer.score(steps_trace(run.steps, temp0)),
        "rule-based": scorer.score(steps_trace(base, temp0)),
        "perfect foresight": scorer.score(plan_trace(plan, temp0)),
        "pf on twin": scorer.score(steps_trace(play_back(plan, twin(), "exact"), temp0)),
        "pf via box rules": scorer.score(steps_trace(play_back(plan, twin(), rules), temp0)),
    }
    walls["score"] = time.perf_counter() - t0
    value = valuation(config, prices)
    return BacktestResult(
        start,
        end,
        outcome_from_steps(run.steps, prices, value, temp0),
        outcome_from_steps(base, prices, value, temp0),
        outcome_from_plan(plan, value, temp0),
        run,
        walls,
        scores,
        replacement_eur_per_kwh,
    )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, in a worker thread when this thread already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


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
    """The energy table, the fair score, the model error and run statistics."""
    ctl, base, best = result.controlled, result.no_control, result.perfect
    table = format_outcomes({"controller": ctl, "rule-based": base, "perfect foresight": best})
    reports = result.run.controller.reports
    failed = sum(not r.ok for r in reports)
    lines = [
        f"period {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC",
        "\n".join(t for i, t in enumerate(table.splitlines()) if i not in (1, 3)),
        "",
        format_scores(result.scores, result.replacement_eur_per_kwh),
        "",
        f"cycles                 {len(reports)} ({failed} failed), "
        f"median solve {pd.Series([r.solve_ms for r in reports]).median():.0f} ms",
        "wall time              " + ", ".join(f"{k} {v:.1f} s" for k, v in result.wall_s.items()),
    ]
    return "\n".join(lines)


SCORE_ROWS: tuple[tuple[str, str], ...] = (
    ("cost_eur", "energy cost [EUR]"),
    ("end_state_eur", "end state, next day [EUR]"),
    ("ev_short_eur", "EV short x {price:.2f} [EUR]"),
    ("net_eur", "fair net cost [EUR]"),
)


def format_scores(scores: dict[str, RunScores], price: float) -> str:
    """Fair scores (full period and interior), capture against the rule-based system and the
    perfect-foresight plan on the twin beside its prediction."""
    head = f"{'fair score':30}" + "".join(f"{name:>19}" for name in scores)
    lines = [head]
    for part, label in (("full", "whole period"), ("interior", "all but the last day")):
        lines.append(f"-- {label}")
        for attr, name in SCORE_ROWS:
            cells = "".join(f"{getattr(getattr(r, part), attr):19.2f}" for r in scores.values())
            lines.append(f"{name.format(price=price):30}{cells}")
        cells = "".join(
            f"{f'{s.ev_short_kwh:.1f} ({s.ev_met}/{s.ev_total} met)':>19}"
            for s in (getattr(r, part) for r in scores.values())
        )
        lines.append(f"{'EV short [kWh] (sessions)':30}{cells}")
    for part, label in (("full", "whole period"), ("interior", "interior")):
        ctl, rb, pf = (
            getattr(scores[k], part).net_eur
            for k in ("controller", "rule-based", "perfect foresight")
        )
        gap = rb - pf
        captured = (rb - ctl) / gap if gap > 1e-9 else float("nan")
        lines.append(
            f"capture ({label}): controller saves {rb - ctl:.2f} EUR vs rule-based, "
            f"{captured:.0%} of the perfect-foresight saving {gap:.2f} EUR"
        )  # fmt: skip
    if "pf on twin" in scores:
        pred = scores["perfect foresight"].full.net_eur
        twin = scores["pf on twin"].full.net_eur
        box = scores["pf via box rules"].full.net_eur
        lines.append(
            f"model error: the perfect-foresight plan costs {twin - pred:+.2f} EUR on the twin "
            f"(exact setpoints), {box - pred:+.2f} EUR through the box rules, vs its prediction"
        )
    return "\n".join(lines)
