"""EV sessions learned from telemetry: round trip through a real SQLite store, quantiles, goals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.store import StoreSettings, make_store
from optimizer import Milestone
from scheduler.ev_sessions import (
    MIN_SESSIONS,
    CarState,
    Expectation,
    SessionModel,
    charge_goal,
    history_samples,
    plug_in_from_shares,
    session_slots,
    sessions_from_telemetry,
    staircase,
)

TZ = "Europe/Berlin"
MONDAY = pd.Timestamp("2024-01-08", tz=TZ)


def _commuter(weeks: int = 4) -> pd.DataFrame:
    """Plug-in 18:10..18:50 local on workdays, out 07:10..07:40 next day, 8..12 kWh."""
    rows = []
    rng = np.random.default_rng(7)
    for d in range(7 * weeks):
        day = MONDAY - pd.Timedelta(days=7 * weeks - d)
        if day.weekday() >= 5:
            continue
        plugin = day + pd.Timedelta(hours=18, minutes=int(rng.integers(10, 50)))
        plugout = day + pd.Timedelta(days=1, hours=7, minutes=int(rng.integers(10, 40)))
        rows.append((plugin.tz_convert("UTC"), plugout.tz_convert("UTC"), rng.uniform(8, 12)))
    return pd.DataFrame(rows, columns=["plugin_utc", "plugout_utc", "energy_kwh"])


def test_sessions_round_trip_through_a_sqlite_store(tmp_path: Path) -> None:
    """Telemetry as the box stores it (per minute where the plug state changes) gives back
    every session: plug-in and plug-out within a minute, energy within 1e-6 kWh."""
    sessions = _commuter()
    start = MONDAY.tz_convert("UTC") - pd.Timedelta(days=29)
    end = MONDAY.tz_convert("UTC")
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    settings = StoreSettings(data_dir=tmp_path, sqlite_file="t.sqlite3")
    store = make_store(settings, clock=end.to_pydatetime)
    try:
        store.write(history_samples("s1", sessions, index, power_kw=11.0))
        span = {"start": start.to_pydatetime(), "end": end.to_pydatetime()}
        connected = store.field_window("s1", "wallbox", "connected", **span)
        power = store.window("s1", start.to_pydatetime(), end.to_pydatetime())["wallbox-power_kw"]
    finally:
        store.close()
    back = sessions_from_telemetry(connected, power)
    assert len(back) == len(sessions)
    for col in ("plugin_utc", "plugout_utc"):
        error = (back[col] - sessions[col]).abs().max()
        assert error <= pd.Timedelta(minutes=1)
    assert back["energy_kwh"].to_numpy() == pytest.approx(
        sessions["energy_kwh"].to_numpy(), abs=1e-6
    )


def test_sessions_cut_by_the_data_are_left_out() -> None:
    index = pd.date_range("2024-01-01", periods=8, freq="15min", tz="UTC")
    connected = pd.Series([1, 1, 0, 0, 1, 1, 0, np.nan], index=index, dtype=float)
    power = pd.Series(4.0, index=index)
    back = sessions_from_telemetry(connected, power)
    assert len(back) == 1  # the first is cut by the start; the second is complete
    assert back["energy_kwh"].iloc[0] == pytest.approx(2 * 4.0 * 0.25)


def test_too_little_history_says_nothing() -> None:
    model = SessionModel(_commuter().iloc[: MIN_SESSIONS - 1], TZ)
    assert model.expect(MONDAY, MONDAY, 0.0) is None


def test_a_commuter_plan_keeps_every_similar_session_whole() -> None:
    """Charging the expected need as late as possible at full power before the expected
    departure still gives every past workday-evening session its energy by its own time of
    departure on the next morning (the need is the largest similar one); the 5 % quantile of
    the departures over 20 sessions gives up at most one."""
    sessions = _commuter()
    model = SessionModel(sessions, TZ, power_kw=11.0)
    plugged = MONDAY + pd.Timedelta(hours=18, minutes=30)
    e = model.expect(plugged, plugged, 0.0)
    assert e is not None and e.departure is not None and e.energy_kwh is not None
    assert e.energy_kwh == pytest.approx(sessions["energy_kwh"].max())
    starts = e.departure - pd.Timedelta(hours=e.energy_kwh / 11.0)
    kept, enough = 0, 0
    for plugout, need in zip(sessions["plugout_utc"], sessions["energy_kwh"], strict=True):
        local = plugout.tz_convert(TZ)
        leaves = (plugged + pd.Timedelta(days=1)).normalize() + (local - local.normalize())
        had = min(max((leaves - starts) / pd.Timedelta(hours=1), 0.0) * 11.0, e.energy_kwh)
        kept += had >= need - 1e-9
        enough += need <= e.energy_kwh
    assert enough == 20 and kept >= enough - 1
    assert e.departure.tz_convert(TZ).date() == (MONDAY + pd.Timedelta(days=1)).date()


def test_the_staircase_keeps_every_similar_session_whole_and_waits_for_the_night() -> None:
    """Commuters plus two short evening stays: the milestones ask each similar session's
    energy by its own departure (a short stay's 1.5 kWh by 20:00), the whole need by the
    morning, not by the first departure seen."""
    sessions = _commuter()
    short = [(MONDAY - pd.Timedelta(days=d) + pd.Timedelta(hours=h), 1.5)
             for d, h in ((3, 18.5), (10, 18.6))]  # fmt: skip
    extra = pd.DataFrame({"plugin_utc": [a.tz_convert("UTC") for a, _ in short],
                          "plugout_utc": [(a + pd.Timedelta(hours=1.5)).tz_convert("UTC")
                                          for a, _ in short],
                          "energy_kwh": [kwh for _, kwh in short]})  # fmt: skip
    model = SessionModel(pd.concat([sessions, extra], ignore_index=True), TZ, power_kw=11.0)
    plugged = MONDAY + pd.Timedelta(hours=18, minutes=30)
    e = model.expect(plugged, plugged, 0.0)
    assert e is not None and e.departure is not None and e.energy_kwh is not None
    guard, *staircase_steps = e.milestones
    # a stay shorter than all 22 similar ones: 1 kWh within 15 minutes at 0.55 / 24 EUR/kWh
    assert guard == (plugged + pd.Timedelta(minutes=15), 1.0, pytest.approx(0.55 / 24))
    steps = [(t, kwh) for t, kwh, _ in staircase_steps] + [(e.departure, e.energy_kwh)]
    assert steps[0] == (plugged + pd.Timedelta(hours=1.5), 1.5)
    assert e.departure.tz_convert(TZ).hour == 7  # the night's prices, not 20:00's
    for plugout, need in zip(sessions["plugout_utc"], sessions["energy_kwh"], strict=True):
        local = plugout.tz_convert(TZ)
        leaves = (plugged + pd.Timedelta(days=1)).normalize() + (local - local.normalize())
        by_then = max((kwh for t, kwh in steps if t <= leaves), default=0.0)
        assert by_then >= need - 1e-9


def test_staircase_is_the_running_maximum_over_the_departures() -> None:
    t = pd.Timestamp("2024-01-08T18:00Z").value
    h = pd.Timedelta(hours=1).value
    leaves = np.array([t + 3 * h, t + h, t + 2 * h, t + 4 * h])
    steps = staircase(leaves, np.array([10.0, 2.0, 1.0, 4.0]), need=8.0)
    assert [(s.value, kwh) for s, kwh in steps] == [(t + h, 2.0), (t + 3 * h, 8.0)]


def test_a_car_still_there_is_expected_later_and_to_want_more() -> None:
    model = SessionModel(_commuter(), TZ)
    plugged = MONDAY + pd.Timedelta(hours=18, minutes=30)
    late = MONDAY + pd.Timedelta(days=1, hours=7, minutes=25)
    e = model.expect(plugged, late, delivered_kwh=11.5)
    assert e is not None
    assert e.departure is None or e.departure > late
    assert e.energy_kwh is None or e.energy_kwh > 11.5


def test_session_slots_charge_at_full_power_until_the_need() -> None:
    index = pd.date_range("2024-01-01", periods=8, freq="15min", tz="UTC")
    sessions = pd.DataFrame({"plugin_utc": [index[1] + pd.Timedelta(minutes=5)],
                             "plugout_utc": [index[6]], "energy_kwh": [3.0]})  # fmt: skip
    slots = session_slots(sessions, index, power_kw=8.0)
    # 10 minutes at 8 kW = 1.333 kWh, then 1.667 kWh of the next 2 kWh slot
    assert slots["power_kw"].to_numpy()[:4] == pytest.approx(
        [0, 8 * 10 / 15, (3 - 8 * 10 / 60) * 4, 0]
    )
    assert (slots["power_kw"] * 0.25).sum() == pytest.approx(3.0)


CAR = CarState(MONDAY, 0.0, arrival_kwh=20.0, capacity_kwh=60.0, efficiency=0.9)
CONFIGURED = (MONDAY + pd.Timedelta(hours=31), 45.0)


def test_goal_without_history_is_the_configured_one() -> None:
    goal = charge_goal(CAR, MONDAY, CONFIGURED, None, None)
    assert (goal.departure, goal.target_kwh, goal.min_kwh, goal.source) == (
        *CONFIGURED, None, "configured",
    )  # fmt: skip


def test_goal_learned_converts_ac_energy_into_the_car() -> None:
    learned = Expectation(MONDAY + pd.Timedelta(hours=12), 10.0, 8)
    goal = charge_goal(CAR, MONDAY, CONFIGURED, None, learned)
    assert goal.departure == learned.departure
    assert goal.target_kwh == pytest.approx(20.0 + 10.0 * 0.9)
    assert goal.min_kwh is None and goal.source == "learned"


def test_goal_with_an_owner_plan_takes_the_sooner_departure_and_the_owner_minimum() -> None:
    learned = Expectation(MONDAY + pd.Timedelta(hours=12), 10.0, 8)
    owner = (MONDAY + pd.Timedelta(hours=14), 40.0)
    goal = charge_goal(CAR, MONDAY, CONFIGURED, owner, learned)
    assert goal.departure == learned.departure
    assert goal.target_kwh == 40.0 and goal.min_kwh == 40.0
    sooner = (MONDAY + pd.Timedelta(hours=10), 25.0)
    goal = charge_goal(CAR, MONDAY, CONFIGURED, sooner, learned)
    assert goal.departure == sooner[0]
    assert goal.target_kwh == pytest.approx(29.0) and goal.min_kwh == 25.0
    # without history the owner's plan replaces the configured departure
    goal = charge_goal(CAR, MONDAY, CONFIGURED, owner, None)
    assert (goal.departure, goal.target_kwh, goal.source) == (owner[0], 40.0, "owner")


def test_goal_milestones_in_the_car_and_before_the_departure() -> None:
    steps = (Milestone(MONDAY + pd.Timedelta(hours=2), 2.0),
             Milestone(MONDAY + pd.Timedelta(hours=11), 6.0))  # fmt: skip
    learned = Expectation(MONDAY + pd.Timedelta(hours=12), 10.0, 8, steps)
    goal = charge_goal(CAR, MONDAY, CONFIGURED, None, learned)
    first = (steps[0][0], pytest.approx(21.8), None)
    second = (steps[1][0], pytest.approx(25.4), None)
    assert goal.milestones == (first, second)
    sooner = (MONDAY + pd.Timedelta(hours=10), 25.0)
    goal = charge_goal(CAR, MONDAY, CONFIGURED, sooner, learned)
    assert goal.milestones == (first,)


def test_plug_in_of_a_car_found_plugged_in_at_a_restart() -> None:
    index = pd.date_range("2024-01-08T20:00Z", periods=6, freq="15min")
    share = pd.Series([0.0, 0.0, 0.6, 1.0, 1.0, 1.0], index=index)
    # plugged for the last 9 minutes of 20:30-20:45: since 20:36
    assert plug_in_from_shares(share) == pd.Timestamp("2024-01-08T20:36Z")
    assert plug_in_from_shares(share.iloc[:2]) is None  # not plugged now: a fresh plug-in
    assert plug_in_from_shares(share.iloc[3:]) == index[3]  # plugged all along: the window
    gap = share.copy()
    gap.iloc[3] = np.nan  # no reading: the run starts after the gap
    assert plug_in_from_shares(gap) == index[4]
