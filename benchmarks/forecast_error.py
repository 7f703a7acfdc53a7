"""Day-ahead forecast error and skill against persistence of PV, household load and heat demand.

Every day is forecast from what was known before it (history strictly before the day) and
compared with what happened; skill = 1 - error / error of persistence (tomorrow = today) on the
same slots, for MAE and RMSE. Held-out data:

* PV: the four weeks 2024-01-08, 03-04, 06-10, 09-02 of measured DWD Duesseldorf weather
  through pvlib (1 kWp south 35 deg). The weather forecast is the measured weather with the
  day-ahead error model of :mod:`optimizer.weather_errors` (Perez et al. 2013 skill); the bias
  correction learns from the 14 days before each day. A second array is installed 20 deg
  further west with 8 % more losses than configured, so that there is a bias to learn.
* Load: the UCI Sceaux household, every day 2008-01-22 .. 2008-12-28 (14 days of history each).
* Heat: the BDEW/SigLinDe heat week 2024-01-08 (15 MWh/a house): the loss coefficient from the
  typical year (TRY) against one fitted on the week's first three days, and the controller's
  store fit (:func:`optimizer.forecast_fit.fit_store_model`: loss and constant draw, the TRY
  value as its prior, the house as a store held at 21 degC); forecast days 4..7.

Prints one table; the numbers go into docs/scheduler.md.

    .venv/bin/python benchmarks/forecast_error.py
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pandas as pd

from adapters import datasets
from optimizer import forecast as fc
from optimizer import forecast_fit as ff
from optimizer.config import HeatPump
from optimizer.devices.heatpump import cop
from optimizer.weather_errors import DayAheadErrors, perturb_weather

WEEKS = ("2024-01-08", "2024-03-04", "2024-06-10", "2024-09-02")
DAY = pd.Timedelta(days=1)
Row = tuple[str, str, dict[str, float], float, float]


def _score(name: str, unit: str, f: list[pd.Series], p: list[pd.Series], a: list[pd.Series]) -> Row:
    fs, ps, at = pd.concat(f), pd.concat(p), pd.concat(a)
    _, bias = fc.forecast_error(fs, at)
    return name, unit, fc.skill(fs, ps, at), bias, float(at.mean())


def _pv_week(start: pd.Timestamp, system: fc.PvSystem, site: fc.PvSystem) -> dict[str, list]:
    index = pd.date_range(start - 14 * DAY, start + 7 * DAY, freq="15min", inclusive="left")
    weather = datasets.measured_weather_2024(index)[datasets.WEATHER_COLUMNS].astype(float)
    seed = int(start.dayofyear)
    forecast_w = perturb_weather(weather, DayAheadErrors(seed=seed))
    actual = fc.pv_power(weather, site)
    raw = fc.pv_power(forecast_w, system)
    out: dict[str, list] = {k: [] for k in ("actual", "persist", "clear", "raw", "corrected")}
    for day in pd.date_range(start, periods=7, freq="D"):
        today = (index >= day) & (index < day + DAY)
        past = (index >= day - 14 * DAY) & (index < day)
        yday = actual[(index >= day - DAY) & (index < day)]
        factors = ff.pv_bias_factors(raw[past], actual[past])
        scale = fc.clear_sky_scale(yday, system)
        out["actual"].append(actual[today])
        out["persist"].append(yday.set_axis(actual.index[today]))
        out["clear"].append(fc.pv_clear_sky(pd.DatetimeIndex(index[today]), system, scale))
        out["raw"].append(raw[today])
        out["corrected"].append(ff.apply_pv_bias(raw[today], factors))
    return out


def _rows_pv() -> list[Row]:
    system = fc.PvSystem(peak_kw=1.0)
    rows: list[Row] = []
    for label, site in (
        ("as configured", system),
        ("array 20 deg west, +8 % losses", replace(system, azimuth_deg=200.0, losses=0.22)),
    ):
        weeks = [_pv_week(pd.Timestamp(w, tz="UTC"), system, site) for w in WEEKS]
        got = {k: [s for w in weeks for s in w[k]] for k in weeks[0]}
        a, p = got["actual"], got["persist"]
        rows += [
            _score(f"PV {label}: persistence (yesterday)", "kW/kWp", p, p, a),
            _score(f"PV {label}: clear sky x yesterday's scale", "kW/kWp", got["clear"], p, a),
            _score(f"PV {label}: weather forecast (error model)", "kW/kWp", got["raw"], p, a),
            _score(f"PV {label}: weather + learned bias", "kW/kWp", got["corrected"], p, a),
        ]
    return rows


def _rows_load() -> list[Row]:
    uci = datasets.read_uci_year()
    full = pd.date_range(uci.index[0].ceil("D"), uci.index[-1].floor("D"), freq="15min",
                         inclusive="left")  # fmt: skip
    uci = uci.reindex(full).interpolate(limit=4)
    annual = float(uci.mean()) * 8760
    got: dict[str, list[pd.Series]] = {k: [] for k in ("mean", "blend", "bdew", "persist", "a")}
    for day in pd.date_range("2008-01-22", "2008-12-28", freq="D", tz="UTC"):
        idx = pd.date_range(day, periods=96, freq="15min")
        hist = uci[(uci.index >= day - 14 * DAY) & (uci.index < day)]
        fallback = datasets.household_load_for_period(idx, annual)
        got["mean"].append(fc.household_load_forecast(hist, idx, fallback))
        got["blend"].append(ff.load_forecast_blend(hist, idx, fallback))
        got["bdew"].append(fallback)
        got["persist"].append(hist.iloc[-96:].set_axis(idx))
        got["a"].append(uci.reindex(idx))
    a, p = got["a"], got["persist"]
    return [
        _score("load: persistence (yesterday)", "kW", p, p, a),
        _score("load: BDEW H25 scaled to the annual energy", "kW", got["bdew"], p, a),
        _score("load: weekday/weekend x time mean (recency-weighted)", "kW", got["mean"], p, a),
        _score("load: mean/median blend x recent level", "kW", got["blend"], p, a),
    ]


def _rows_heat() -> list[Row]:
    name = "bdew_heat_EFH_15000kWh_duesseldorf_2024-01-08_week_hourly.csv"
    raw = pd.read_csv(datasets.DATA_DIR / "weather" / name)
    index = pd.DatetimeIndex(pd.to_datetime(raw["start_local_naive"]))
    t_out = pd.Series(raw["temp_air_c"].to_numpy(float), index=index)
    heat = pd.Series(raw["heat_demand_kw"].to_numpy(float), index=index)
    fit_days = index < index[0] + 3 * DAY
    h_try = fc.loss_coefficient(15000.0, datasets.read_try()["temp_air_c"].to_numpy(float))
    h_fit = ff.fit_loss_coefficient(heat[fit_days].to_numpy(), t_out[fit_days].to_numpy())
    test = heat[~fit_days]
    persist = [heat.shift(24)[~fit_days]]
    rows = []
    fits = (("typical-year fit (TRY)", h_try), ("fitted on the site's 3 winter days", h_fit))
    for label, h in fits:
        f = pd.Series(fc.heat_demand(t_out[~fit_days].to_numpy(), h), index=test.index)
        rows.append(_score(f"heat: H = {h:.3f} kW/K, {label}", "kW", [f], persist, [test]))
    store = _store_fit(heat[fit_days], t_out[fit_days], h_try)
    f = store.loss_kw_per_k * (21.0 - t_out[~fit_days]) + store.draw_kw
    label = f"heat: store fit H = {store.loss_kw_per_k:.3f} kW/K, draw {store.draw_kw:+.2f} kW"
    rows.append(_score(f"{label} (controller, 3 days)", "kW", [f.clip(lower=0)], persist, [test]))
    return rows


def _store_fit(heat: pd.Series, t_out: pd.Series, prior_h: float) -> ff.StoreFit:
    """:func:`~optimizer.forecast_fit.fit_store_model` on metered heat [kW]: a store held at
    21 degC whose heat pump delivered ``heat`` (electrical power = heat / COP), hourly rows."""
    hp = HeatPump(loss_kw_per_k=prior_h)
    history = pd.DataFrame(
        {"temp_c": 21.0, "hp_kw": heat / cop(hp, t_out.to_numpy(float)), "t_out_c": t_out},
        index=heat.index,
    )
    return ff.fit_store_model(history, hp, ff.StorePrior(block_slots=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    rows = _rows_pv() + _rows_load() + _rows_heat()
    print("| forecast | unit | MAE | RMSE | bias | skill MAE | skill RMSE | mean actual |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, unit, s, bias, mean in rows:
        print(f"| {name} | {unit} | {s['mae']:.3f} | {s['rmse']:.3f} | {bias:+.3f} | "
              f"{s['mae_skill']:+.2f} | {s['rmse_skill']:+.2f} | {mean:.3f} |")  # fmt: skip
    _ = np


if __name__ == "__main__":
    main()
