"""A fair score for backtests: the same obligations at the end, undelivered car energy at a price.

Runs over the same period end in different states (battery, heat store, a car half charged),
and a run that knows when the period ends (perfect foresight) can fill the stores cheaply in the
last hours. :func:`fair_score` therefore scores a run up to a cut time as

``fair net = energy cost + end-state cost + EV shortfall x replacement price``

* **energy cost**: import x import price - export x export price over ``[start, cut)`` [EUR];
* **end-state cost**: what the next 24 h cost from the run's state at ``cut`` (battery SOC,
  store temperature, the energy still owed to a car plugged in at ``cut``), minus what they
  cost from the reference state (the start's SOC and temperature, nothing owed). Both are
  optimal plans (:func:`~optimizer.optimize`, energy left at their end worth nothing) on the
  next day's expected data: the given
  prices where they reach beyond ``cut``, else the same-day-type estimate of
  :mod:`pricing.estimate`; weather, load and heat demand likewise, else the last day repeated.
  So stored energy is worth what it saves tomorrow (little on a sunny day that fills the
  battery anyway), and every run ends with the same obligations;
* **EV shortfall**: energy a session wanted but did not get by its real departure, for every
  session that left before ``cut``, at ``replacement_eur_per_kwh`` (default 0.55 EUR/kWh,
  public fast charging), reported as its own line.

The **interior** score cuts one day before the end: the last day is then the next period, with
actual data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from optimizer import ChargingMode, EVSession, Inputs, Plan, Problem, Site, State, Tuning, optimize
from pricing import load_tariff, retail_prices
from pricing.errors import PricingError
from pricing.estimate import same_day_type_profile
from scheduler.backtest_inputs import BacktestInputs
from scheduler.ev_sessions import REPLACEMENT_EUR_PER_KWH  # public charging [EUR/kWh]
from scheduler.frame_feeds import persist_days

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class FairScore:
    """One run scored up to ``cut`` (see the module notes). Money [EUR], energy [kWh]."""

    cut: pd.Timestamp
    cost_eur: float
    end_state_eur: float
    ev_short_kwh: float
    ev_short_eur: float
    ev_met: int
    ev_total: int
    soc_end: float
    t_store_end_c: float

    @property
    def net_eur(self) -> float:
        """Energy cost + end-state cost + EV shortfall at the replacement price [EUR]."""
        return self.cost_eur + self.end_state_eur + self.ev_short_eur


@dataclass(frozen=True)
class RunScores:
    """A run's fair score over the whole period and its interior score (all but the last day)."""

    full: FairScore
    interior: FairScore


@dataclass(frozen=True)
class Trace:
    """What a run did, on its own steps: start times (UTC index) with ``dt_s`` [s],
    ``grid_kw`` (+ import), ``ev_kw`` [kW] and the states at each step's end, ``soc_end``
    [0-1] and ``t_store_c`` [degC]. Twin steps are one; :func:`plan_trace` makes a plan one."""

    frame: pd.DataFrame
    soc0: float
    t_store0_c: float


def plan_trace(plan: Plan, t_store0_c: float) -> Trace:
    """A plan's slots as a :class:`Trace` (EV power summed over its wallboxes)."""
    s = plan.slots
    ev_cols = [c for c in map(str, s.columns) if c.startswith("ev") and c.endswith("_kw")]
    frame = pd.DataFrame(
        {
            "dt_s": plan.problem.inputs.dt_h * 3600,
            "grid_kw": (s["grid_import_kw"] - s["grid_export_kw"]).to_numpy(float),
            "ev_kw": s[ev_cols].sum(axis=1).to_numpy(float) if ev_cols else 0.0,
            "soc_end": s["battery_soc"].to_numpy(float) if "battery_soc" in s else 0.0,
            "t_store_c": s["hp_temp_c"].to_numpy(float) if "hp_temp_c" in s else t_store0_c,
        },
        index=s.index,
    )
    return Trace(frame, plan.problem.state.battery_soc, t_store0_c)


def steps_trace(steps: pd.DataFrame, t_store0_c: float) -> Trace:
    """Per-minute twin steps (:func:`scheduler.simulate.steps_frame`) as a :class:`Trace`."""
    cols = ["dt_s", "grid_kw", "ev_kw", "soc_end", "t_store_c"]
    return Trace(steps[cols], float(steps["soc_start"].iloc[0]), t_store0_c)


@dataclass
class Scorer:
    """Scores runs of one backtest; the reference continuation is solved once per cut.

    Parameters
    ----------
    inputs : BacktestInputs
        The backtest's data (checked for the period).
    start, end : pandas.Timestamp
        The period (UTC).
    tuning : Tuning
        Optimizer parameters of the continuation plans.
    replacement_eur_per_kwh : float
        Price of EV energy not delivered by a real departure [EUR/kWh].
    """

    inputs: BacktestInputs
    start: pd.Timestamp
    end: pd.Timestamp
    tuning: Tuning
    replacement_eur_per_kwh: float = REPLACEMENT_EUR_PER_KWH

    def __post_init__(self) -> None:
        self._reference: dict[pd.Timestamp, float] = {}
        index = pd.date_range(self.start, self.end, freq="15min", inclusive="left")
        self.prices = self.inputs.tariff_prices(index)

    def score(self, trace: Trace) -> RunScores:
        """The run's full and interior scores."""
        return RunScores(self.at(trace, self.end), self.at(trace, self.end - DAY))

    def at(self, trace: Trace, cut: pd.Timestamp) -> FairScore:
        """The run scored up to ``cut``."""
        f = trace.frame[trace.frame.index < cut]
        h = f["dt_s"].to_numpy(float) / 3600
        slot = self.prices.reindex(pd.DatetimeIndex(f.index).floor("15min"))
        grid = f["grid_kw"].to_numpy(float)
        imp, exp = np.clip(grid, 0, None) * h, np.clip(-grid, 0, None) * h
        cost = float((imp * slot["import_eur_per_kwh"] - exp * slot["export_eur_per_kwh"]).sum())
        delivered = session_delivery(f["ev_kw"], h, self.inputs.ev_sessions)
        need = self.inputs.ev_sessions["energy_kwh"].to_numpy(float)
        plugin = self.inputs.ev_sessions["plugin_utc"]
        plugout = self.inputs.ev_sessions["plugout_utc"]
        left = (plugout <= cut) & (plugout > self.start)
        short = np.clip(need - delivered, 0, None)
        ev_short = float(short[left.to_numpy()].sum())
        open_ = ((plugin < cut) & (plugout > cut)).to_numpy()
        owed = tuple(
            (pd.Timestamp(plugout.iloc[k]), float(short[k])) for k in np.flatnonzero(open_)
        )
        soc = float(f["soc_end"].iloc[-1]) if len(f) else trace.soc0
        temp = float(f["t_store_c"].iloc[-1]) if len(f) else trace.t_store0_c
        end_state = self.continuation(cut, soc, temp, owed) - self.reference(cut, trace)
        return FairScore(
            cut, cost, end_state, ev_short, ev_short * self.replacement_eur_per_kwh,
            int((left.to_numpy() & (short < 0.05)).sum()), int(left.sum()), soc, temp,
        )  # fmt: skip

    def reference(self, cut: pd.Timestamp, trace: Trace) -> float:
        if cut not in self._reference:
            self._reference[cut] = self.continuation(cut, trace.soc0, trace.t_store0_c, ())
        return self._reference[cut]

    def continuation(
        self,
        cut: pd.Timestamp,
        soc: float,
        t_store_c: float,
        owed: tuple[tuple[pd.Timestamp, float], ...],
    ) -> float:
        """Energy cost of the optimal next 24 h from a state [EUR] (EV left short: replaced).

        The plan values energy left at its end at zero (no terminal value), so a state is worth
        what it saves within the day; states converge by then (the battery drained or filled
        by PV, the store back in its band), which keeps the difference between states fair.
        """
        index = pd.date_range(cut, cut + DAY, freq="15min", inclusive="left")
        site = self.inputs.home.site
        wallboxes, sessions, unreachable = owed_sessions(site, owed, cut, cut + DAY)
        site = replace(site, wallboxes=wallboxes)
        temps = {hp.name: t_store_c for hp in site.heat_pumps}
        state = State(float(np.clip(soc, 0.0, 1.0)), temps, sessions)
        inputs = Inputs.from_frame(expected_frame(self.inputs, index), self._demand(site, index))
        tuning = replace(self.tuning, terminal_value_eur_per_kwh=0.0)
        s = optimize(Problem(site, inputs, state, tuning)).slots
        cost = s["grid_import_kw"] * s["import_eur_per_kwh"]
        cost -= s["grid_export_kw"] * s["export_eur_per_kwh"]
        return float(cost.sum() * inputs.dt_h) + unreachable * self.replacement_eur_per_kwh

    def _demand(self, site: Site, index: pd.DatetimeIndex) -> dict[str, np.ndarray]:
        heat = self.inputs.heat_demand_kw
        if heat is None or not site.heat_pumps:
            return {}
        return {site.heat_pumps[0].name: heat.reindex(persist_days(index, heat.index)).to_numpy()}


def expected_frame(inputs: BacktestInputs, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The optimizer's inputs on ``index`` as expected: given data where they reach, else
    the same-day-type price estimate and the last day of weather, load and heat repeated."""
    prices = inputs.prices
    out = pd.DataFrame(index=index)
    for col in prices.columns:
        series = prices[col].dropna()
        known = series.reindex(index)
        missing = index[known.isna().to_numpy()]
        if len(missing):
            try:
                known.loc[missing] = same_day_type_profile(series.rename(col), missing).to_numpy()
            except PricingError:
                known.loc[missing] = float(series.iloc[-96:].mean())
        out[col] = known.to_numpy(float)
    if inputs.spot_given:
        spot = pd.DataFrame({"spot_eur_per_kwh": out["spot_eur_per_kwh"], "is_estimate": False})
        home = inputs.home
        retail = retail_prices(spot, load_tariff(home.tariff_path), home.export_rules())
        out["import_eur_per_kwh"] = retail["import_eur_per_kwh"].to_numpy(float)
        out["export_eur_per_kwh"] = retail["export_eur_per_kwh"].to_numpy(float)
    weather = inputs.weather.reindex(persist_days(index, inputs.weather.index)).set_axis(index)
    out["pv_kw"] = inputs.pv_kw_from(weather).to_numpy(float)
    out["load_kw"] = inputs.load_kw.reindex(persist_days(index, inputs.load_kw.index)).to_numpy(
        float
    )
    out["t_out_c"] = weather["temp_air_c"].to_numpy(float)
    return out[["import_eur_per_kwh", "export_eur_per_kwh", "pv_kw", "load_kw", "t_out_c"]]


def owed_sessions(
    site: Site,
    owed: tuple[tuple[pd.Timestamp, float], ...],
    cut: pd.Timestamp,
    horizon_end: pd.Timestamp,
) -> tuple[tuple, tuple[EVSession, ...], float]:
    """One wallbox per car still owed energy at ``cut`` (grid kWh 1:1 into the car, as in the
    twin), the sessions, and the energy that cannot be delivered before departure [kWh]."""
    if not site.wallboxes:
        return (), (), float(sum(kwh for _, kwh in owed))
    base = replace(site.wallboxes[0], efficiency=1.0)
    p_max = base.power_range_kw(base.phases)[1]
    boxes, sessions, unreachable = [], [], 0.0
    for i, (plugout, kwh) in enumerate(owed):
        leave = min(plugout, horizon_end).floor("15min")
        hours = max((leave - cut) / pd.Timedelta(hours=1), 0.0)
        target = min(kwh, p_max * hours)
        unreachable += kwh - target
        if target <= 0.01:
            continue
        name = f"owed{i}"
        boxes.append(replace(base, name=name))
        sessions.append(
            EVSession(name, ChargingMode.SMART, capacity_kwh=target + 1.0, energy_kwh=0.0,
                      target_kwh=target, departure=leave, arrival=cut)
        )  # fmt: skip
    return tuple(boxes), tuple(sessions), unreachable


def session_delivery(ev_kw: pd.Series, h: np.ndarray, sessions: pd.DataFrame) -> np.ndarray:
    """Energy [kWh] delivered to each session: EV power inside its plug-in window."""
    t = pd.DatetimeIndex(ev_kw.index)
    energy = ev_kw.to_numpy(float) * h
    out = np.zeros(len(sessions))
    for k, (a, b) in enumerate(zip(sessions["plugin_utc"], sessions["plugout_utc"], strict=True)):
        out[k] = energy[(t >= a) & (t < b)].sum()
    return out
