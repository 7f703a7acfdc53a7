"""Reasons for each device's next action, on hand-made plan rows (optimizer column names)."""

from __future__ import annotations

import pandas as pd
import pytest

from insights.reasons import ReasonContext, next_action_reasons
from optimizer import ChargingMode

TZ = "Europe/Berlin"
#: Eight 15-min slots from 10:00 local (08:00 UTC, summer time).
INDEX = pd.date_range("2024-06-12T08:00Z", periods=8, freq="15min")
PRICES = [0.20, 0.22, 0.30, 0.30, 0.40, 0.40, 0.25, 0.25]  # median 0.275


def plan(**columns: list[float]) -> pd.DataFrame:
    base: dict[str, list[float]] = {
        "import_eur_per_kwh": PRICES,
        "export_eur_per_kwh": [0.08] * 8,
        "load_kw": [0.5] * 8,
        "pv_kw": [0.0] * 8,
        "grid_export_kw": [0.0] * 8,
        "battery_charge_kw": [0.0] * 8,
        "battery_discharge_kw": [0.0] * 8,
        "battery_soc": [0.5] * 8,
    }
    base.update(columns)
    return pd.DataFrame(base, index=INDEX)


def by_device(frame: pd.DataFrame, i: int = 0, **ctx: object) -> dict[str, object]:
    context = ReasonContext(tz=TZ, **ctx)  # type: ignore[arg-type]
    return {r.device: r for r in next_action_reasons(frame, i, context)}


def test_battery_charging_from_pv_surplus() -> None:
    frame = plan(pv_kw=[4.0] + [0.0] * 7, battery_charge_kw=[3.0] + [0.0] * 7)
    r = by_device(frame)["battery"]
    assert (r.action, r.code, r.text) == ("charge", "pv_surplus", "charging from PV surplus")
    assert r.power_kw == -3.0


def test_battery_charging_from_grid_names_price_and_distance_to_median() -> None:
    frame = plan(battery_charge_kw=[3.0] + [0.0] * 7)
    r = by_device(frame)["battery"]
    assert r.code == "grid_cheap"
    # 20.0 ct against a median of 27.5 ct: 27 % below
    assert (
        r.text == "charging from the grid at a low price (20.0 ct/kWh, 27% below the day's median)"
    )


def test_battery_discharging_at_high_price() -> None:
    frame = plan(battery_discharge_kw=[0.0] * 4 + [2.0] + [0.0] * 3)
    r = by_device(frame, 4)["battery"]
    assert r.code == "cover_house_expensive"
    assert r.text == (
        "discharging to cover the house at a high price (40.0 ct/kWh, 45% above the day's median)"
    )


def test_battery_holding_names_the_local_time_it_will_discharge() -> None:
    frame = plan(battery_discharge_kw=[0.0] * 4 + [2.0] + [0.0] * 3)
    r = by_device(frame, 0)["battery"]
    # slot 4 starts 09:00 UTC = 11:00 in Berlin (CEST)
    assert (r.action, r.code) == ("hold", "hold_for_later")
    assert r.text == "holding for later (price rises at 11:00)"


def test_battery_idle_without_any_later_action() -> None:
    assert by_device(plan())["battery"].code == "idle"


def test_ev_smart_charging_now_names_departure() -> None:
    frame = plan(ev_kw=[11.0] + [0.0] * 7, ev_phases=[3.0] + [0.0] * 7)
    departure = pd.Timestamp("2024-06-13T05:00Z")  # 07:00 local
    r = by_device(frame, ev_modes={"ev": ChargingMode.SMART}, ev_departures={"ev": departure})["ev"]
    assert r.text == "charging now: among the cheapest hours before departure at 07:00"
    assert r.power_kw == 11.0


def test_ev_waiting_for_cheaper_hours_and_solar_mode() -> None:
    frame = plan(ev_kw=[0.0] * 6 + [11.0, 11.0], ev_phases=[0.0] * 6 + [3.0, 3.0])
    r = by_device(frame, ev_modes={"ev": ChargingMode.SMART})["ev"]
    assert (r.action, r.code) == ("wait", "wait_cheaper")
    assert r.text.startswith("waiting for cheaper hours")
    sunny = plan(pv_kw=[6.0] + [0.0] * 7, ev_kw=[4.2] + [0.0] * 7, ev_phases=[1.0] + [0.0] * 7)
    r = by_device(sunny, ev_modes={"ev": ChargingMode.SOLAR})["ev"]
    assert r.text == "charging from PV surplus (solar mode)"


def test_ev_off_mode() -> None:
    frame = plan(ev_kw=[0.0] * 8, ev_phases=[0.0] * 8)
    assert by_device(frame, ev_modes={"ev": ChargingMode.OFF})["ev"].code == "off"


@pytest.mark.parametrize(
    ("slot", "power", "code"),
    [
        (0, 2.0, "preheat_cheap"),  # 20 ct < median
        (4, 0.0, "blocked_price_peak"),  # 40 ct > median
        (4, 2.0, "heat_comfort"),
        (0, 0.0, "off_warm"),
    ],
)
def test_heat_pump_reasons(slot: int, power: float, code: str) -> None:
    hp = [0.0] * 8
    hp[slot] = power
    frame = plan(hp_kw=hp, hp_sgready=[2.0] * 8, hp_temp_c=[21.0] * 8)
    r = by_device(frame, slot)["hp"]
    assert r.code == code
    if code == "blocked_price_peak":
        assert r.text.startswith("blocked: price peak (40.0 ct/kWh")
    if code == "preheat_cheap":
        assert r.text.startswith("pre-heating while power is cheap")


def test_house_use_of_heat_pump_and_car_counts_against_pv_surplus() -> None:
    # 4 kW PV, 0.5 house + 3 heat pump: 0.5 kW surplus cannot cover a 2 kW charge
    frame = plan(
        pv_kw=[4.0] + [0.0] * 7,
        battery_charge_kw=[2.0] + [0.0] * 7,
        hp_kw=[3.0] + [0.0] * 7,
        hp_sgready=[3.0] * 8,
    )
    assert by_device(frame)["battery"].code == "grid_cheap"


def test_out_of_range_slot_or_no_prices_gives_no_reasons() -> None:
    assert next_action_reasons(plan(), 8, ReasonContext()) == []
    assert next_action_reasons(plan().drop(columns="import_eur_per_kwh"), 0, ReasonContext()) == []
