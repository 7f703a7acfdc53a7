"""Each charging mode's rule on a sunny day with a car plugged in."""

import numpy as np
import pandas as pd
import pytest

from core.timeindex import utc_range
from optimizer import (
    Battery,
    ChargingMode,
    EVSession,
    HeatPump,
    Inputs,
    Plan,
    Problem,
    Site,
    State,
    Wallbox,
    optimize,
)

N = 48  # 12 h at 15 min, 06:00-18:00 UTC
INDEX = utc_range("2024-06-15T06:00", N, 15)
T = np.arange(N)
PV = np.clip(9 * np.sin(np.pi * (T + 0.5) / N), 0, None)
LOAD = np.full(N, 0.6)
PRICE = 0.30 - 0.15 * np.sin(np.pi * (T + 0.5) / N)
DEPARTURE = INDEX[-1] + pd.Timedelta(minutes=15)
WALLBOX = Wallbox(max_current_a=16, phases=3, switch_phases=True, efficiency=0.9)


def plan_for(mode: ChargingMode, *, energy: float = 10.0, soc: float = 0.5, **kw: object) -> Plan:
    site = Site(
        battery=Battery(capacity_kwh=10, charge_kw=4, discharge_kw=4),
        wallboxes=(WALLBOX,),
        heat_pumps=(HeatPump(max_kw=2.0),),
    )
    inputs = Inputs(INDEX, PRICE, np.full(N, 0.08), PV, LOAD, t_out_c=np.full(N, 12.0))
    session = EVSession(mode=mode, capacity_kwh=60, energy_kwh=energy, departure=DEPARTURE, **kw)
    return optimize(Problem(site, inputs, State(soc, {"hp": 21.0}, (session,))))


def test_off_never_charges() -> None:
    assert plan_for(ChargingMode.OFF).slots["ev_kw"].max() == 0.0


def test_now_charges_at_full_power_from_plug_in_until_target() -> None:
    s = plan_for(ChargingMode.NOW, energy=40.0, target_kwh=50.0).slots
    full = WALLBOX.power_range_kw(3)[1]
    slots_needed = 10.0 / (full * 0.9 * 0.25)  # 4.03 -> 4 full slots and a tail
    assert s["ev_kw"].iloc[:4].tolist() == pytest.approx([full] * 4, abs=1e-6)
    assert s["ev_kw"].iloc[6:].max() == 0.0
    assert s["ev_energy_kwh"].iloc[-1] >= 50.0 - 1e-6
    assert slots_needed < 5


def test_solar_takes_no_grid_and_no_battery_energy() -> None:
    s = plan_for(ChargingMode.SOLAR).slots
    charging = s["ev_kw"] > 0
    assert charging.any()
    surplus = s["pv_kw"] - s["load_kw"] - s["hp_kw"]
    assert (s["ev_kw"][charging] <= surplus[charging] + 1e-6).all()


def test_min_solar_keeps_the_minimum_and_takes_more_only_from_surplus() -> None:
    s = plan_for(ChargingMode.MIN_SOLAR).slots
    low = WALLBOX.power_range_kw(1)[0]
    assert (s["ev_kw"] >= low - 1e-6).all()
    extra = s["ev_kw"] - low
    surplus = (s["pv_kw"] - s["load_kw"] - s["hp_kw"]).clip(lower=0)
    assert (extra <= surplus + 1e-6).all()
    assert extra.max() > 1.0  # it does use the sun


def test_min_solar_stops_when_the_car_is_full() -> None:
    s = plan_for(ChargingMode.MIN_SOLAR, energy=58.0).slots
    assert s["ev_energy_kwh"].max() <= 60 + 1e-6
    assert s["ev_kw"].iloc[-1] == 0.0


def test_smart_reaches_the_target_at_least_cost() -> None:
    smart = plan_for(ChargingMode.SMART, target_kwh=30.0)
    now = plan_for(ChargingMode.NOW, target_kwh=30.0)
    assert smart.slots["ev_energy_kwh"].iloc[-1] >= 30.0 - 1e-6
    assert smart.summary.violations == ()
    assert smart.summary.cost_eur < now.summary.cost_eur - 0.5


def test_after_battery_charges_only_once_the_battery_is_full() -> None:
    plan = plan_for(ChargingMode.AFTER_BATTERY, soc=0.2)
    s = plan.slots
    soc_before = np.concatenate([[0.2], s["battery_soc"].to_numpy()[:-1]])
    charging = s["ev_kw"].to_numpy() > 0
    assert charging.any()
    assert (soc_before[charging] >= 0.99 * 1.0 - 0.01).all()
    surplus = s["pv_kw"] - s["load_kw"] - s["hp_kw"]
    assert (s["ev_kw"][charging] <= surplus[charging] + 1e-6).all()
