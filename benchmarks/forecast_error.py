"""Forecast error (MAE, bias) of optimizer.forecast on the bundled real data.

Day-ahead: each day is forecast from what was known before it (history strictly before the
day). Prints a table; the numbers go into docs/scheduler.md.

    .venv/bin/python benchmarks/forecast_error.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adapters import datasets
from optimizer import forecast as fc


def _rows_pv() -> list[tuple[str, str, float, float, float]]:
    system = fc.PvSystem(peak_kw=1.0)
    actual = datasets.read_pv_per_kwp()  # hourly, pvlib from the measured DWD weather (file)
    index15 = pd.date_range(actual.index[0], actual.index[-1] + pd.Timedelta("45min"), freq="15min")
    weather = datasets.weather_for_period(index15)
    from_weather = fc.pv_power(weather, system).resample("1h").mean()
    rows = []
    mae, bias = fc.forecast_error(from_weather, actual)
    rows.append(("PV from weather (measured = perfect forecast)", "kW/kWp", mae, bias,
                 actual.mean()))  # fmt: skip
    clear, persist, truth = [], [], []
    for day in pd.date_range(actual.index[0] + pd.Timedelta(days=1), periods=6, freq="D"):
        past = actual[(actual.index >= day - pd.Timedelta(days=1)) & (actual.index < day)]
        scale = fc.clear_sky_scale(past.resample("15min").ffill(), system)
        idx = pd.date_range(day, periods=96, freq="15min")
        clear.append(fc.pv_clear_sky(idx, system, scale).resample("1h").mean())
        persist.append(past.set_axis(past.index + pd.Timedelta(days=1)))
        truth.append(actual[(actual.index >= day) & (actual.index < day + pd.Timedelta(days=1))])
    t = pd.concat(truth)
    for name, f in (("PV clear-sky x yesterday's scale", clear), ("PV persistence", persist)):
        mae, bias = fc.forecast_error(pd.concat(f), t)
        rows.append((name, "kW/kWp", mae, bias, t.mean()))
    return rows


def _rows_load() -> list[tuple[str, str, float, float, float]]:
    uci = datasets.read_uci_load().resample("15min").mean()
    uci = uci[uci.index >= uci.index[0].ceil("D")]
    annual = float(uci.mean()) * 8760
    days = pd.date_range(uci.index[0] + pd.Timedelta(days=1), uci.index[-1], freq="D")
    learned, bdew, persist, truth = [], [], [], []
    for day in days[:6]:
        idx = pd.date_range(day, periods=96, freq="15min")
        fallback = datasets.household_load_for_period(idx, annual)
        hist = uci[uci.index < day]
        learned.append(fc.household_load_forecast(hist, idx, fallback))
        bdew.append(fallback)
        yday = uci[(uci.index >= day - pd.Timedelta(days=1)) & (uci.index < day)]
        persist.append(yday.set_axis(yday.index + pd.Timedelta(days=1)))
        truth.append(uci.reindex(idx))
    t = pd.concat(truth)
    rows = []
    for name, f in (
        ("load: own history (weekday/weekend x time, recency-weighted), H25 fallback", learned),
        ("load: BDEW H25 scaled to the annual consumption only", bdew),
        ("load: persistence (yesterday)", persist),
    ):
        mae, bias = fc.forecast_error(pd.concat(f), t)
        rows.append((name, "kW", mae, bias, t.mean()))
    return rows


def _rows_heat() -> list[tuple[str, str, float, float, float]]:
    raw = pd.read_csv(
        datasets.DATA_DIR
        / "weather"
        / "bdew_heat_EFH_15000kWh_duesseldorf_2024-01-08_week_hourly.csv"
    )
    t_out = raw["temp_air_c"].to_numpy(float)
    actual = pd.Series(raw["heat_demand_kw"].to_numpy(float))
    h = fc.loss_coefficient(15000.0, datasets.read_try()["temp_air_c"].to_numpy(float))
    f = pd.Series(fc.heat_demand(t_out, h))
    mae, bias = fc.forecast_error(f, actual)
    return [(f"heat: H x (21 degC - T_out), H = {h:.3f} kW/K from 15 MWh/a on the TRY", "kW",
             mae, bias, float(actual.mean()))]  # fmt: skip


def main() -> None:
    rows = _rows_pv() + _rows_load() + _rows_heat()
    print("| forecast | unit | MAE | bias | mean actual |")
    print("| --- | --- | --- | --- | --- |")
    for name, unit, mae, bias, mean in rows:
        print(f"| {name} | {unit} | {mae:.3f} | {bias:+.3f} | {mean:.3f} |")
    _ = np


if __name__ == "__main__":
    main()
