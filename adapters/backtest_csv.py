"""Readers for a backtest's own data as CSV files (the format of ``docs/scheduler.md``).

One directory, one file per input, comma separated, a header line, times as ISO 8601 with an
offset (``2024-01-08T00:00:00+00:00``; naive times are refused, any offset is converted to UTC):

=======================  ====================================================================
``prices.csv``           ``start_utc`` and ``spot_eur_per_kwh``, or ``import_eur_per_kwh`` and
                         ``export_eur_per_kwh`` [EUR/kWh]
``weather.csv``          ``start_utc``, ``temp_air_c`` [degC], ``ghi_wm2``, ``dhi_wm2``
                         [W/m^2], ``wind_speed_ms`` [m/s]
``load.csv``             ``start_utc``, ``load_kw`` [kW] (household without EV and heat pump)
``co2.csv``              ``start_utc``, ``co2_g_per_kwh`` [gCO2eq/kWh]
``ev_sessions.csv``      ``plugin_utc``, ``plugout_utc``, ``energy_kwh`` [kWh]
``heat_demand.csv``      optional: ``start_utc``, ``heat_demand_kw`` [kW thermal]
=======================  ====================================================================

``start_utc`` is the start of each interval; any fixed step up to one hour.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

FILES = ("prices", "weather", "load", "co2", "ev_sessions", "heat_demand")


class BacktestFrames(NamedTuple):
    """The parsed files; keyword arguments of ``scheduler.backtest_inputs.BacktestInputs``."""

    prices: pd.DataFrame
    weather: pd.DataFrame
    load_kw: pd.Series
    co2_g_per_kwh: pd.Series
    ev_sessions: pd.DataFrame
    heat_demand_kw: pd.Series | None


def read_timeseries_csv(path: str | Path) -> pd.DataFrame:
    """A CSV with a ``start_utc`` column as a frame on a tz-aware UTC index.

    Raises
    ------
    ValueError
        No ``start_utc`` column, or naive times; the message names the file.
    """
    raw = pd.read_csv(path)
    if "start_utc" not in raw:
        raise ValueError(f"{Path(path).name}: no start_utc column")
    index = pd.DatetimeIndex(pd.to_datetime(raw.pop("start_utc"), utc=False, format="ISO8601"))
    if index.tz is None:
        raise ValueError(f"{Path(path).name}: naive start_utc times; write them with an offset")
    return raw.set_axis(index.tz_convert("UTC").rename("start_utc"))


def read_sessions_csv(path: str | Path) -> pd.DataFrame:
    """EV sessions: ``plugin_utc``, ``plugout_utc`` (UTC), ``energy_kwh`` [kWh]."""
    raw = pd.read_csv(path)
    for col in ("plugin_utc", "plugout_utc"):
        if col not in raw:
            raise ValueError(f"{Path(path).name}: no {col} column")
        times = pd.to_datetime(raw[col], format="ISO8601")
        if times.dt.tz is None:
            raise ValueError(f"{Path(path).name}: naive {col} times; write them with an offset")
        raw[col] = times.dt.tz_convert("UTC")
    return raw


def read_backtest_csvs(directory: str | Path) -> BacktestFrames:
    """All files of one backtest from ``directory`` (see the module notes)."""
    d = Path(directory)
    heat = d / "heat_demand.csv"
    return BacktestFrames(
        prices=read_timeseries_csv(d / "prices.csv"),
        weather=read_timeseries_csv(d / "weather.csv"),
        load_kw=_column(d / "load.csv", "load_kw"),
        co2_g_per_kwh=_column(d / "co2.csv", "co2_g_per_kwh"),
        ev_sessions=read_sessions_csv(d / "ev_sessions.csv"),
        heat_demand_kw=_column(heat, "heat_demand_kw") if heat.exists() else None,
    )


def _column(path: Path, column: str) -> pd.Series:
    frame = read_timeseries_csv(path)
    if column not in frame:
        raise ValueError(f"{path.name}: no {column} column")
    return frame[column].astype(float)
