"""The next departure from the owner's weekly plan and one-off override, in the site's zone."""

from __future__ import annotations

from datetime import time

import pandas as pd
import pytest

from optimizer import ChargingMode
from scheduler.site_model import (
    DepartureGoal,
    LiveState,
    SiteEquipment,
    SitePreferences,
    WallboxPreference,
    ev_sessions,
    next_departure,
)

BERLIN = "Europe/Berlin"
CAPACITY = 60.0
#: Mon-Fri 07:30 to 80 % (48 kWh of 60), Saturday 10:00 to 30 kWh, Sunday nothing.
WEEKLY = {
    **{d: DepartureGoal(time(7, 30), target_soc=0.8) for d in range(5)},
    5: DepartureGoal(time(10, 0), target_kwh=30.0),
}


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def test_weekly_plan_gives_the_next_weekday_departure_in_local_time() -> None:
    pref = WallboxPreference(weekly=WEEKLY)
    # Friday 12 June 2026, 09:00 Berlin: today's 07:30 is past, Saturday 10:00 is next
    dep, target = next_departure(pref, _utc("2026-06-12T09:00+02:00"), BERLIN, CAPACITY)
    assert dep == _utc("2026-06-13T10:00+02:00")
    assert target == 30.0
    # Saturday 11:00: Sunday has no departure, so Monday 07:30 (CEST) at 80 % of 60 kWh
    dep, target = next_departure(pref, _utc("2026-06-13T11:00+02:00"), BERLIN, CAPACITY)
    assert dep == _utc("2026-06-15T07:30+02:00")
    assert target == pytest.approx(48.0)
    # the departure instant itself is past; one minute before it is still ahead
    at = _utc("2026-06-15T07:30+02:00")
    assert next_departure(pref, at, BERLIN, CAPACITY)[0] == _utc("2026-06-16T07:30+02:00")
    assert next_departure(pref, at - pd.Timedelta(minutes=1), BERLIN, CAPACITY)[0] == at


def test_weekly_plan_across_daylight_saving_changes() -> None:
    # Sunday 29 March 2026 the clocks go from 02:00 to 03:00 in Berlin: 02:30 does not exist
    # and moves to 03:00 CEST (01:00 UTC); 07:30 that day is 05:30 UTC, not 06:30.
    gap = WallboxPreference(weekly={6: DepartureGoal(time(2, 30))})
    dep, target = next_departure(gap, _utc("2026-03-28T12:00Z"), BERLIN, CAPACITY)
    assert dep == _utc("2026-03-29T01:00Z")
    assert target is None  # no target: full
    morning = WallboxPreference(weekly={6: DepartureGoal(time(7, 30), target_kwh=70.0)})
    dep, target = next_departure(morning, _utc("2026-03-28T12:00Z"), BERLIN, CAPACITY)
    assert dep == _utc("2026-03-29T05:30Z")
    assert target == CAPACITY  # capped at the car
    # Sunday 25 October 2026, 02:30 happens twice: the first (CEST, 00:30 UTC) counts
    twice = WallboxPreference(weekly={6: DepartureGoal(time(2, 30))})
    dep, _ = next_departure(twice, _utc("2026-10-24T12:00Z"), BERLIN, CAPACITY)
    assert dep == _utc("2026-10-25T00:30Z")
    # the site's zone decides, not UTC: 07:30 in New York on a Monday
    dep, _ = next_departure(
        WallboxPreference(weekly=WEEKLY), _utc("2026-06-15T03:00Z"), "America/New_York", 60
    )
    assert dep == _utc("2026-06-15T07:30-04:00")


def test_one_off_overrides_the_weekly_plan_until_it_has_passed() -> None:
    trip = _utc("2026-06-16T05:00+02:00")  # Tuesday 05:00, before the weekly 07:30
    pref = WallboxPreference(departure=trip.to_pydatetime(), target_kwh=55.0, weekly=WEEKLY)
    monday_noon = _utc("2026-06-15T12:00+02:00")
    assert next_departure(pref, monday_noon, BERLIN, CAPACITY) == (trip, 55.0)
    # a later one-off replaces the weekly departures before it (the next trip is then)
    late = WallboxPreference(
        departure=_utc("2026-06-17T18:00+02:00").to_pydatetime(), target_soc=0.5, weekly=WEEKLY
    )
    dep, target = next_departure(late, monday_noon, BERLIN, CAPACITY)
    assert (dep, target) == (_utc("2026-06-17T18:00+02:00"), 30.0)
    # once it has passed, the weekly plan takes over again
    after = trip + pd.Timedelta(minutes=1)
    assert next_departure(pref, after, BERLIN, CAPACITY) == (
        _utc("2026-06-16T07:30+02:00"),
        pytest.approx(48.0),
    )
    # nothing set: no deadline, the one-off target (if any) still caps the charge
    assert next_departure(WallboxPreference(target_kwh=20.0), after, BERLIN, CAPACITY) == (
        None,
        20.0,
    )


def test_ev_sessions_take_departure_and_target_from_the_weekly_plan() -> None:
    equipment = SiteEquipment()
    prefs = SitePreferences(
        wallboxes={"ev": WallboxPreference(ChargingMode.SMART, weekly=WEEKLY)},
        timezone=BERLIN,
    )
    (session,) = ev_sessions(equipment, prefs, LiveState(), _utc("2026-06-14T20:00+02:00"))
    assert session.departure == _utc("2026-06-15T07:30+02:00")
    assert session.target_kwh == pytest.approx(0.8 * equipment.wallboxes[0].car_capacity_kwh)
    unplugged = LiveState(car_connected={"ev": False})
    assert ev_sessions(equipment, prefs, unplugged, _utc("2026-06-14T20:00+02:00")) == ()
