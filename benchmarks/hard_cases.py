"""The structures that make the plan's MILP hard, on real days (used by benchmarks/solve.py).

Each case builds one :class:`optimizer.Problem` per day from the bundled real data
(:mod:`scheduler.scenario`): an EV that can switch between 1 and 3 phases with its 6 A
minimum and needs 30-60 kWh over 24-48 h, prices with long runs of equal quarter-hours,
days with negative prices, a heat pump with a minimum run time, and two wallboxes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from optimizer import EVSession, HeatPump, Inputs, Problem, Site, Wallbox
from pricing.bundled import bundled_hourly
from scheduler.scenario import Home, scenario_problem

#: The bundled day-ahead prices span these months.
FIRST_DAY, LAST_DAY = "2024-01-02", "2025-09-28"


def spread_days(count: int) -> list[pd.Timestamp]:
    """``count`` Berlin midnights spread evenly over the bundled prices [UTC]."""
    days = pd.date_range(FIRST_DAY, LAST_DAY, periods=count).normalize()
    return [d.tz_localize("Europe/Berlin").tz_convert("UTC") for d in days]


def negative_price_days(count: int) -> list[pd.Timestamp]:
    """``count`` Berlin midnights of days with at least one negative spot hour, spread out."""
    spot = bundled_hourly()["spot_eur_per_kwh"]
    local = spot.tz_convert("Europe/Berlin")
    neg = local[local < 0].index.normalize().unique()
    neg = neg[(neg >= pd.Timestamp(FIRST_DAY, tz="Europe/Berlin"))]
    neg = neg[neg <= pd.Timestamp(LAST_DAY, tz="Europe/Berlin")]
    pick = np.linspace(0, len(neg) - 1, min(count, len(neg))).round().astype(int)
    return [neg[i].tz_convert("UTC") for i in pick]


def _session(index: pd.DatetimeIndex, day: int, wallbox: str = "ev") -> EVSession:
    """A car plugged in now, needing 30-60 kWh (by day) by the last slot of the horizon."""
    need = 30.0 + 10.0 * (day % 4)
    departure = index[-1] + (index[1] - index[0])
    return EVSession(
        wallbox=wallbox,
        capacity_kwh=80.0,
        energy_kwh=10.0,
        target_kwh=10.0 + need,
        departure=departure,
    )


def _with(problem: Problem, site: Site, sessions: tuple[EVSession, ...]) -> Problem:
    return replace(problem, site=site, state=replace(problem.state, ev_sessions=sessions))


def _flatten_prices(inputs: Inputs, hours: int) -> Inputs:
    """Import price as the mean of each block of ``hours`` hours: long equal runs."""
    per = round(hours / inputs.dt_h)
    price = np.asarray(inputs.import_eur_per_kwh).copy()
    for start in range(0, len(price), per):
        price[start : start + per] = price[start : start + per].mean().round(4)
    return replace(inputs, import_eur_per_kwh=price)


PHASES = Wallbox(switch_phases=True, max_current_a=16.0)


def ev_1p3p(home: Home, day: pd.Timestamp, i: int, periods: int) -> Problem:
    problem = scenario_problem(home, day, periods)[0]
    site = replace(problem.site, wallboxes=(PHASES,))
    return _with(problem, site, (_session(problem.inputs.index, i),))


def equal_runs(home: Home, day: pd.Timestamp, i: int, periods: int) -> Problem:
    problem = ev_1p3p(home, day, i, periods)
    return replace(problem, inputs=_flatten_prices(problem.inputs, 4))


def hp_min_run(home: Home, day: pd.Timestamp, i: int, periods: int) -> Problem:
    problem = ev_1p3p(home, day, i, periods)
    hp = HeatPump(min_kw=1.0, min_run_slots=4)
    return replace(problem, site=replace(problem.site, heat_pumps=(hp,)))


def two_wallboxes(home: Home, day: pd.Timestamp, i: int, periods: int) -> Problem:
    problem = scenario_problem(home, day, periods)[0]
    second = Wallbox(name="ev2", phases=1, max_current_a=32.0)
    site = replace(problem.site, wallboxes=(PHASES, second))
    index = problem.inputs.index
    sessions = (_session(index, i), _session(index, i + 2, "ev2"))
    return _with(problem, site, sessions)


def default_home(home: Home, day: pd.Timestamp, i: int, periods: int) -> Problem:
    return scenario_problem(home, day, periods)[0]


@dataclass(frozen=True)
class Case:
    name: str
    periods: int
    make: Callable[[Home, pd.Timestamp, int, int], Problem]
    negative_days: bool = False

    def problems(self, days: int) -> list[Problem]:
        home = Home()
        picked = negative_price_days(days) if self.negative_days else spread_days(days)
        return [self.make(home, d, i, self.periods) for i, d in enumerate(picked)]


CASES = (
    Case("battery+ev+hp", 96, default_home),
    Case("battery+ev+hp", 192, default_home),
    Case("ev 1p/3p 30-60 kWh", 96, ev_1p3p),
    Case("ev 1p/3p 30-60 kWh", 192, ev_1p3p),
    Case("equal 4 h price runs", 96, equal_runs),
    Case("equal 4 h price runs", 192, equal_runs),
    Case("negative-price days", 96, ev_1p3p, negative_days=True),
    Case("negative-price days", 192, ev_1p3p, negative_days=True),
    Case("hp min run 1 h", 96, hp_min_run),
    Case("hp min run 1 h", 192, hp_min_run),
    Case("two wallboxes", 96, two_wallboxes),
    Case("two wallboxes", 192, two_wallboxes),
    Case("ev 1p/3p, a week", 672, ev_1p3p),
)
