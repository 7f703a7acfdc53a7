from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from insights import (
    BatteryParams,
    InsightSettings,
    co2_impact,
    energy_highlights,
    simulate_self_consumption,
)
from tests.insights.frames import FrameFactory, slots


def test_co2_of_a_shifted_battery_by_hand(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    # house 1 kW; clean first half (100 g/kWh), dirty second half (500 g/kWh); no PV.
    # Battery charges 4 kWh in the clean hours, discharges 3.5 kWh in the dirty ones.
    n = len(day)
    co2 = 100.0 + slots(n, {(48, 96): 400.0})
    battery = slots(n, {(0, 8): -2.0, (48, 62): 1.0})
    frame = make_frame(day, house=1.0, battery=battery, co2=co2)
    impact = co2_impact(frame)
    caused = (12 + 4) * 0.1 + (12 - 3.5) * 0.5  # 5.85 kg
    no_pv = 12 * 0.1 + 12 * 0.5  # 7.2 kg
    assert impact.caused_kg == pytest.approx(caused)
    assert impact.no_pv_kg == pytest.approx(no_pv)
    assert impact.self_consumption_kg == pytest.approx(no_pv)  # no PV: baseline battery idle
    assert impact.avoided_total_kg == pytest.approx(no_pv - caused)
    assert impact.avoided_by_self_consumption_kg == pytest.approx(0.0)
    assert impact.avoided_by_shifting_kg == pytest.approx(1.35)


def test_co2_of_pv_self_consumption_by_hand(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    # house 1 kW at 300 g/kWh; PV 2 kW for 4 h covers 4 kWh of load and exports 4 kWh
    n = len(day)
    pv = slots(n, {(40, 56): 2.0})
    settings = InsightSettings(battery=None)
    impact = co2_impact(make_frame(day, pv=pv, house=1.0, co2=300.0), settings)
    assert impact.caused_kg == pytest.approx(20 * 0.3)
    assert impact.avoided_total_kg == pytest.approx(4 * 0.3)
    assert impact.avoided_by_self_consumption_kg == pytest.approx(4 * 0.3)
    assert impact.avoided_by_shifting_kg == pytest.approx(0.0)


def test_baseline_battery_respects_losses_power_and_soc_floor() -> None:
    # 1 h slots: 6 kW surplus for 3 h, then 4 kW deficit for 4 h
    pv = np.array([6.0, 6.0, 6.0, 0, 0, 0, 0])
    load = np.array([0.0, 0, 0, 4, 4, 4, 4])
    b = BatteryParams(10.0, 3.0, 0.9, 0.9, soc_min=0.1, soc_initial=0.1)
    bat, grid = simulate_self_consumption(pv, load, b, 1.0)
    # charge at 3 kW (power limit): 2.7 kWh stored per hour, full after 9 kWh ... 1+2.7*3=9.1
    assert bat[:3] == pytest.approx([-3.0, -3.0, -3.0])
    # usable above floor: 9.1 - 1.0 = 8.1 kWh -> 7.29 kWh AC out at 3 kW per hour
    assert bat[3:].sum() == pytest.approx(8.1 * 0.9)
    assert bat[3:].max() <= 3.0 + 1e-12
    np.testing.assert_allclose(grid, load - pv - bat)


def test_baseline_battery_is_counted_in_highlights_export(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    pv = slots(len(day), {(40, 48): 5.0})
    frame = make_frame(day, pv=pv)
    table = energy_highlights(frame, "day", InsightSettings(battery=BatteryParams())).table
    assert table["cost_self_consumption_eur"].iloc[0] > table["cost_eur"].iloc[0]
