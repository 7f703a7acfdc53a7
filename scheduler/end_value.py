"""What energy left in the battery at the horizon end is worth: the next day's value function.

A flat terminal value (the horizon's median import price) says every stored kWh saves the same
tomorrow. It does not: the first kWh replace the night's and morning's imports, those beyond
what the house needs before the sun refills the battery replace nothing but a little feed-in.
So the value of the end energy ``E`` is taken the way a dynamic programme takes it: the
energy cost of the optimal next 24 h (the *tail*, on the expected prices, PV, household load and
heat-pump consumption after the horizon) from a few end levels, ``V(E) = cost(lowest) -
cost(E)``. The optimal cost of an LP is convex in its start level, so ``V`` is concave and its
slopes fall: the plan gets them as segments (:attr:`optimizer.Problem.battery_end_value`) and
keeps exactly the energy whose value tomorrow beats what it earns today. The fair score of
:mod:`scheduler.fair_score` values end states by the same kind of next-day plan.

The tail is battery-only (no car, the heat pump's expected consumption as load), an LP of a
few milliseconds per level.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from optimizer import HeatPump, Inputs, Problem, Site, State, Tuning, optimize
from optimizer.devices.heatpump import cop

#: Levels of end energy the tail is solved from, between the battery's SOC limits.
LEVELS = 5
TAIL = pd.Timedelta(days=1)


def battery_end_value(
    site: Site, tail: pd.DataFrame, tuning: Tuning, levels: int = LEVELS
) -> tuple[tuple[float, float], ...]:
    """Segments ``((kWh, EUR/kWh), ...)`` of the end energy's value, from the battery's lowest
    allowed level up.

    Parameters
    ----------
    site : Site
        The site; only its grid, PV and battery are used.
    tail : pandas.DataFrame
        The slots after the horizon: ``import_eur_per_kwh``, ``export_eur_per_kwh`` [EUR/kWh],
        ``pv_kw`` and ``load_kw`` [kW] (the household's and the heat pump's expected load).
    tuning : Tuning
        The site's tuning (battery wear); the tail itself values its own end at zero.
    """
    battery = site.battery
    if battery is None or tail.empty:
        return ()
    tail_site = Site(site.grid, site.pv, battery, (), ())
    tail_tuning = replace(tuning, terminal_value_eur_per_kwh=0.0, final_soc=None)
    inputs = Inputs.from_frame(tail)
    socs = np.linspace(battery.soc_min, battery.soc_max, levels)
    costs = np.array([_energy_cost(Problem(tail_site, inputs, State(float(s)), tail_tuning))
                      for s in socs])  # fmt: skip
    widths = np.diff(socs) * battery.capacity_kwh
    slopes = np.clip(-np.diff(costs) / np.where(widths > 0, widths, 1.0), 0.0, None)
    slopes = np.minimum.accumulate(slopes)  # concave up to solver tolerance
    return tuple((float(w), float(v)) for w, v in zip(widths, slopes, strict=True))


def expected_hp_load_kw(hp: HeatPump, t_out_c: np.ndarray, demand_kw: np.ndarray) -> np.ndarray:
    """The heat pump's expected electrical load [kW]: the store's loss at the bottom of its
    comfort band plus the demand drawn from it, at the COP of the outdoor temperature."""
    heat = np.clip(hp.loss_kw_per_k * (hp.comfort_min_c - t_out_c), 0.0, None) + demand_kw
    return np.clip(heat / cop(hp, t_out_c), 0.0, hp.max_kw)


def _energy_cost(problem: Problem) -> float:
    """What the plan's grid energy costs [EUR] (the plan's own ``cost_eur`` column)."""
    return float(optimize(problem).slots["cost_eur"].sum())
