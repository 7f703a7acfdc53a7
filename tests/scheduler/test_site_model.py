"""Stored equipment and preferences -> the optimizer's home and problem."""

from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import utc_range
from optimizer import ChargingMode, FeedInRule, Tuning, optimize
from scheduler.scenario import scenario_frame
from scheduler.site_model import (
    ComfortBand,
    EquipmentError,
    LiveState,
    SiteEquipment,
    SitePreferences,
    WallboxPreference,
    optimizer_site,
    plan_column,
    site_home,
    site_problem,
    store_column,
)

EQUIPMENT = SiteEquipment.model_validate(
    {
        "latitude": 48.1,
        "longitude": 11.6,
        "pv": {"peak_kw": 6.0, "tilt_deg": 20.0, "azimuth_deg": 90.0},
        "battery": {"capacity_kwh": 8.0, "charge_kw": 4.0, "soc_min": 0.1, "reserve_soc": 0.2},
        "wallboxes": [{"name": "ev", "max_current_a": 32, "phases": 1, "switch_phases": True}],
        "heat_pumps": [{"name": "hp", "max_kw": 4.0}],
        "grid": {"feed_in_cap_kw": 3.6, "negative_price_rule": "always_paid"},
        "annual_consumption_kwh": 4200.0,
    }
)


def test_home_carries_every_equipment_value() -> None:
    prefs = SitePreferences(heat_pumps={"hp": ComfortBand(19.0, 22.5)})
    home = site_home(EQUIPMENT, prefs)
    site = home.site
    assert site.battery is not None
    assert (site.battery.capacity_kwh, site.battery.charge_kw, site.battery.soc_min) == (8, 4, 0.1)
    assert site.battery.reserve_soc == 0.2
    wb = site.wallboxes[0]
    assert (wb.max_current_a, wb.phases, wb.phase_options) == (32, 1, (1, 3))
    hp = site.heat_pumps[0]
    assert (hp.max_kw, hp.comfort_min_c, hp.comfort_max_c) == (4.0, 19.0, 22.5)  # owner's band
    assert site.grid.feed_in_cap_kw == 3.6
    assert site.grid.feed_in_rule == FeedInRule.ALWAYS_PAID
    assert (home.pv_system.peak_kw, home.pv_system.tilt_deg, home.pv_system.azimuth_deg) == (
        6.0,
        20.0,
        90.0,
    )
    assert (home.pv_system.latitude, home.pv_system.longitude) == (48.1, 11.6)
    assert home.annual_load_kwh == 4200.0
    assert home.export_rules().export_limit_kw == 3.6


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"battery": {"soc_min": 0.8, "soc_max": 0.5}}, "battery.soc_min"),
        ({"battery": {"reserve_soc": 0.9, "soc_max": 0.8}}, "battery.reserve_soc"),
        (
            {"heat_pumps": [{"comfort_min_c": 25, "comfort_max_c": 21}]},
            "heat_pumps.0.comfort_min_c",
        ),
        ({"wallboxes": [{"name": "a"}, {"name": "a"}]}, "wallboxes.1.name"),
        ({"wallboxes": [{"name": "battery"}]}, "wallboxes.0.name"),
        (
            {"wallboxes": [{"car_arrival_kwh": 70, "car_capacity_kwh": 60}]},
            "wallboxes.0.car_arrival_kwh",
        ),
    ],
)
def test_optimizer_rules_come_back_naming_the_equipment_field(
    document: dict[str, object], field: str
) -> None:
    with pytest.raises(EquipmentError) as caught:
        optimizer_site(SiteEquipment.model_validate(document))
    assert caught.value.field == field


def test_problem_uses_measured_state_and_the_owners_car_settings() -> None:
    index = utc_range("2024-06-12T22:00Z", 96)
    home = site_home(EQUIPMENT)
    departure = pd.Timestamp("2024-06-13T05:00Z")
    prefs = SitePreferences(
        wallboxes={"ev": WallboxPreference(ChargingMode.SMART, departure.to_pydatetime(), 70.0)}
    )
    live = LiveState(battery_soc=0.05, hp_temp_c={"hp": 22.0})
    problem = site_problem(
        home,
        equipment=EQUIPMENT,
        preferences=prefs,
        live=live,
        frame=scenario_frame(home, index),
        tuning=Tuning(),
    )
    assert problem.state.battery_soc == 0.1  # clipped into the SOC window
    assert problem.state.hp_temp_c == {"hp": 22.0}
    (session,) = problem.state.ev_sessions
    assert session.target_kwh == 60.0  # capped at the car's capacity
    assert session.energy_kwh == 20.0 and session.departure == departure
    plan = optimize(problem)
    assert plan.slots["ev_energy_kwh"].iloc[-1] >= 60.0 - 1e-6  # the target is reachable


def test_unplugged_car_and_past_departure() -> None:
    index = utc_range("2024-06-12T22:00Z", 8)
    home = site_home(EQUIPMENT)
    past = WallboxPreference(ChargingMode.SMART, pd.Timestamp("2024-06-01T00:00Z").to_pydatetime())
    frame = scenario_frame(home, index)
    kwargs = {"equipment": EQUIPMENT, "frame": frame, "tuning": Tuning()}
    prefs = SitePreferences(wallboxes={"ev": past})
    plugged = site_problem(home, preferences=prefs, live=LiveState(), **kwargs)  # type: ignore[arg-type]
    assert plugged.state.ev_sessions[0].departure is None
    unplugged = site_problem(
        home,
        preferences=prefs,
        live=LiveState(car_connected={"ev": False}),
        **kwargs,  # type: ignore[arg-type]
    )
    assert unplugged.state.ev_sessions == ()


def test_store_column_round_trip() -> None:
    for name in ("battery_kw", "battery_soc", "ev_2_kw", "import_eur_per_kwh", "hp_sgready"):
        assert plan_column(store_column(name)) == name
    assert store_column("battery_kw") == "battery-power_kw"
