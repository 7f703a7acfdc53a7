"""Highlights on hand-made days whose answers are computed by hand in the comments."""

from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import local_day, utc_range
from insights import (
    BatteryParams,
    InsightSettings,
    PoolParams,
    energy_highlights,
)
from tests.insights.frames import FrameFactory, slots

NO_BATTERY = InsightSettings(battery=None)


def test_day_without_pv_imports_everything(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    # 0.5 kW house for 24 h = 12 kWh, all imported at 0.30 EUR/kWh and 400 g/kWh
    result = energy_highlights(make_frame(day, house=0.5), "day")
    assert result.balance.max_residual_kw == pytest.approx(0.0)
    p = result.periods[0]
    assert p.complete
    assert p.pv_kwh == 0
    assert p.consumption_kwh == pytest.approx(12.0)
    assert p.import_kwh == pytest.approx(12.0)
    assert p.export_kwh == 0
    assert p.self_consumption_rate is None
    assert p.autarky == pytest.approx(0.0)
    assert p.cost_eur == pytest.approx(3.6)
    assert p.effective_price_eur_per_kwh == pytest.approx(0.30)
    assert p.savings_vs_no_pv_eur == pytest.approx(0.0)
    assert p.savings_vs_self_consumption_eur == pytest.approx(0.0)
    assert p.co2.caused_kg == pytest.approx(4.8)


def test_day_with_all_pv_exported(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    # 2 kW for 40 slots = 20 kWh, all exported at 0.08 EUR/kWh: the site earns 1.60 EUR
    pv = slots(len(day), {(30, 70): 2.0})
    p = energy_highlights(make_frame(day, pv=pv), "day", NO_BATTERY).periods[0]
    assert p.pv_kwh == pytest.approx(20.0)
    assert p.export_kwh == pytest.approx(20.0)
    assert p.self_consumption_rate == pytest.approx(0.0)
    assert p.autarky is None
    assert p.cost_eur == pytest.approx(-1.6)
    assert p.savings_vs_no_pv_eur == pytest.approx(1.6)
    assert p.savings_vs_self_consumption_eur == pytest.approx(0.0)
    assert p.co2.caused_kg == 0
    assert p.co2.avoided_total_kg == 0  # exports earn no CO2 credit


def test_grid_charged_battery_is_not_own_energy(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    # no PV; 4 kWh charged from the grid at night, 3.5 kWh discharged into the house at noon
    n = len(day)
    battery = slots(n, {(0, 8): -2.0, (40, 54): 1.0})
    p = energy_highlights(make_frame(day, house=1.0, battery=battery), "day").periods[0]
    assert p.battery_grid_charge_kwh == pytest.approx(4.0)
    assert p.battery_discharge_kwh == pytest.approx(3.5)
    assert p.import_kwh == pytest.approx(24.0 + 4.0 - 3.5)
    # consumption by origin: 3.5 kWh from the battery, none from PV, the rest from the grid
    assert (p.battery_to_load_kwh, p.pv_to_load_kwh) == (pytest.approx(3.5), 0.0)
    assert p.autarky == pytest.approx(0.0)


def test_battery_pool_splits_pv_and_grid_origin(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    # 4 kWh from the grid at night, 4 kWh from PV at noon (PV 5 kW, house 1 kW for 1 h):
    # the pool is half PV, so 6 kWh discharged in the evening count 3 kWh as own energy.
    # own = 1 kWh direct PV + 3 kWh = 4 kWh of 24 kWh consumption.
    n = len(day)
    pv = slots(n, {(40, 44): 5.0})
    battery = slots(n, {(0, 8): -2.0, (40, 44): -4.0, (60, 84): 1.0})
    frame = make_frame(day, pv=pv, house=1.0, battery=battery)
    p = energy_highlights(frame, "day").periods[0]
    assert p.autarky == pytest.approx(4.0 / 24.0)
    assert p.self_consumption_rate == pytest.approx(1.0)  # nothing exported
    # counting the whole discharge as own energy would give (1 + 6) / 24
    assert p.autarky != pytest.approx(7.0 / 24.0)
    full_pv = InsightSettings(pool=PoolParams(initial_pv_share=1.0))
    # initial_pv_share only matters for energy the pool cannot explain; here it explains all
    assert energy_highlights(frame, "day", full_pv).periods[0].autarky == pytest.approx(4 / 24)


def test_autarky_without_battery_is_one_minus_import_share(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    n = len(day)
    pv = slots(n, {(30, 70): 3.0})
    house = 0.4 + slots(n, {(50, 80): 2.0})
    p = energy_highlights(make_frame(day, pv=pv, house=house), "day").periods[0]
    assert p.autarky == pytest.approx(1 - p.import_kwh / p.consumption_kwh)


def test_ev_solar_share_and_heat_pump_cop(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    # EV 4 kW for 2 h: first hour under 4 kW PV (solar), second hour from the grid -> 50 %
    n = len(day)
    ev = slots(n, {(44, 52): 4.0})
    pv = slots(n, {(44, 48): 4.0})
    hp = slots(n, {(0, 8): 2.0})
    frame = make_frame(day, pv=pv, ev=ev, hp=hp)
    frame["hp_heat_kw"] = frame["hp_kw"] * 3.5
    p = energy_highlights(frame, "day").periods[0]
    assert p.ev_kwh == pytest.approx(8.0)
    assert p.ev_solar_share == pytest.approx(0.5)
    assert p.hp_kwh == pytest.approx(4.0)
    assert p.hp_heat_kwh == pytest.approx(14.0)
    assert p.hp_cop == pytest.approx(3.5)
    frame["hp_heat_kw"] = float("nan")  # meter missing: heat unknown, not zero
    p = energy_highlights(frame, "day").periods[0]
    assert p.hp_heat_kwh is None
    assert p.hp_cop is None


@pytest.mark.parametrize(("day_str", "hours"), [("2024-03-31", 23), ("2024-10-27", 25)])
def test_dst_days_sum_all_their_slots(make_frame: FrameFactory, day_str: str, hours: int) -> None:
    idx = local_day(day_str)
    assert len(idx) == hours * 4
    p = energy_highlights(make_frame(idx, house=1.0), "day").periods[0]
    assert p.complete
    assert p.consumption_kwh == pytest.approx(hours)
    assert p.start == pd.Timestamp(day_str, tz="Europe/Berlin")
    assert p.end - p.start == pd.Timedelta(hours=hours)


def test_dst_transitions_across_days_weeks_and_months(make_frame: FrameFactory) -> None:
    # 2024-10-26 .. 2024-10-28 local at 1 kW: 24 + 25 + 24 kWh, nothing leaks across days
    idx = utc_range(pd.Timestamp("2024-10-26", tz="Europe/Berlin"), 73 * 4)
    frame = make_frame(idx, house=1.0)
    days = energy_highlights(frame, "day").table
    assert days["consumption_kwh"].tolist() == pytest.approx([24.0, 25.0, 24.0])
    assert days["complete"].all()
    # Oct 26-27 belong to the week starting Mon Oct 21 (partial), Oct 28 starts a new week
    weeks = energy_highlights(frame, "week").table
    assert weeks.index.tolist() == [
        pd.Timestamp("2024-10-21", tz="Europe/Berlin"),
        pd.Timestamp("2024-10-28", tz="Europe/Berlin"),
    ]
    assert weeks["consumption_kwh"].tolist() == pytest.approx([49.0, 24.0])
    assert not weeks["complete"].any()


def test_full_month_with_dst_is_complete(make_frame: FrameFactory) -> None:
    start = pd.Timestamp("2024-10-01", tz="Europe/Berlin")
    idx = utc_range(start, (31 * 24 + 1) * 4)
    table = energy_highlights(make_frame(idx, house=1.0), "month").table
    assert len(table) == 1
    assert table["complete"].iloc[0]
    assert table["consumption_kwh"].iloc[0] == pytest.approx(745.0)


def test_self_consumption_counterfactual_by_hand(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    # house 1 kW; PV 5 kW for 2 h (slots 40-47). Baseline battery 5 kWh, 5 kW, lossless:
    # charges 4 kW x 5 slots = 5 kWh, exports 4 kW x 3 slots = 3 kWh, then covers slots 48-67.
    # Imports: slots 0-39 10 kWh @0.20, slots 68-95 7 kWh @0.40 -> 4.80 EUR; export 0.24 EUR.
    n = len(day)
    pv = slots(n, {(40, 48): 5.0})
    price = 0.20 + slots(n, {(48, 96): 0.20})
    frame = make_frame(day, pv=pv, house=1.0, import_price=price)
    battery = BatteryParams(5.0, 5.0, 1.0, 1.0, soc_min=0.0, soc_initial=0.0)
    p = energy_highlights(frame, "day", InsightSettings(battery=battery)).periods[0]
    assert p.cost_self_consumption_eur == pytest.approx(4.80 - 0.24)
    assert p.cost_no_pv_eur == pytest.approx(12 * 0.20 + 12 * 0.40)
    # measured site has no battery activity: imports 10 @0.20 + 12 @0.40, exports 8 kWh
    assert p.cost_eur == pytest.approx(2.0 + 4.8 - 0.64)
    assert p.savings_vs_no_pv_eur == pytest.approx(7.2 - 6.16)
    assert p.savings_vs_self_consumption_eur == pytest.approx(4.56 - 6.16)


def test_savings_against_self_consumption_can_be_negative(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    # same day; the measured battery buys 2 kWh at night, stores only 5 kWh of PV and exports
    # the rest: a rule-based 10 kWh battery that keeps all 8 kWh of PV does better
    n = len(day)
    pv = slots(n, {(40, 48): 5.0})
    price = 0.20 + slots(n, {(48, 96): 0.20})
    battery = slots(n, {(0, 8): -1.0, (40, 45): -4.0, (68, 96): 1.0})
    frame = make_frame(day, pv=pv, house=1.0, battery=battery, import_price=price)
    base = BatteryParams(10.0, 5.0, 1.0, 1.0, soc_min=0.0, soc_initial=0.0)
    p = energy_highlights(frame, "day", InsightSettings(battery=base)).periods[0]
    # measured: imports 10 + 2 kWh @0.20, 20 slots (48-67) 5 kWh @0.40, export 3 kWh
    assert p.cost_eur == pytest.approx(12 * 0.2 + 5 * 0.4 - 3 * 0.08)
    # baseline (10 kWh): stores 8 kWh of PV -> covers slots 48-79; imports 10 @0.2 + 4 @0.4
    assert p.cost_self_consumption_eur == pytest.approx(10 * 0.2 + 4 * 0.4)
    assert p.savings_vs_self_consumption_eur == pytest.approx(3.6 - 4.16)
