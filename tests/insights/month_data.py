"""A realistic month of one home, from the bundled real data: DWD weather through pvlib (8 kWp),
the BDEW H25 household profile (4,000 kWh/a), real Norwegian EV sessions charged at 11 kW from
plug-in, and a 10 kWh battery run by a self-consumption rule. Powers per 15 minutes [kW];
grid = load + ev - pv - battery, so every slot balances."""

from __future__ import annotations

import pandas as pd

from adapters import datasets
from insights.battery import BatteryParams, simulate_self_consumption
from optimizer.forecast import PvSystem, pv_power


def month_flows(first_local: str, tz: str = "Europe/Berlin") -> pd.DataFrame:
    """Columns pv, house, ev, battery, grid [kW] for the local month starting ``first_local``."""
    start = pd.Timestamp(first_local, tz=tz)
    end = start + pd.DateOffset(months=1)
    index = pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min", inclusive="left"
    )
    pv = pv_power(datasets.weather_for_period(index), PvSystem(peak_kw=8.0))
    house = datasets.household_load_for_period(index, annual_kwh=4000.0)
    ev = _ev(index)
    battery, grid = simulate_self_consumption(
        pv.to_numpy(), (house + ev).to_numpy(), BatteryParams(), 0.25
    )
    return pd.DataFrame(
        {"pv": pv, "house": house, "ev": ev, "battery": battery, "grid": grid}, index=index
    )


def _ev(index: pd.DatetimeIndex, power_kw: float = 11.0) -> pd.Series:
    sessions = datasets.ev_sessions_for_period(
        datasets.read_ev_sessions(), index[0], index[-1] + pd.Timedelta("15min")
    )
    ev = pd.Series(0.0, index=index)
    for _, s in sessions.iterrows():
        need = float(s["energy_kwh"])
        for t in ev.loc[s["plugin_utc"] : s["plugout_utc"]].index:
            if need <= 0:
                break
            kw = min(power_kw, need / 0.25)
            ev[t] += kw
            need -= kw * 0.25
    return ev


def telemetry_samples(flows: pd.DataFrame) -> list[dict[str, object]]:
    """Gateway samples (``/v1/gateway/telemetry``), one per device and slot."""
    devices = {"pv": "pv", "house": "house", "battery": "battery", "grid": "grid",
               "ev": "wallbox"}  # fmt: skip
    samples = []
    for ts, row in zip(flows.index, flows.to_dict("records"), strict=True):
        stamp = ts.isoformat()
        for column, device in devices.items():
            samples.append(
                {"ts": stamp, "device": device, "fields": {"power_kw": round(row[column], 4)}}
            )
    return samples


__all__ = ["month_flows", "telemetry_samples"]
