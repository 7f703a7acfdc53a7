"""The car gets its target by departure whenever the wallbox can physically deliver it.

Departures on, one minute before and one minute after slot boundaries, on the days the clocks
change (92 and 100 quarter-hours in Europe/Berlin) and at the end of the horizon. The energy
is what the car receives from the power actually applied slot by slot (a receding horizon:
the controller's deadline rule and the optimizer, replanned every 15 minutes, as in
production), and "reachable" is counted independently: whole quarter-hours between now and the
departure at the wallbox's full power.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.timeindex import local_day, utc_range
from optimizer import EVSession, Inputs, Problem, Site, State, Wallbox, optimize
from optimizer.config import ChargingMode
from scheduler.controller import DepartureTarget

TZ = "Europe/Berlin"
STEP = pd.Timedelta(minutes=15)
DT_H = 0.25
WALLBOX = Wallbox(max_current_a=16, phases=3, efficiency=0.9)
MAX_KW = 16 * 3 * 230 / 1000  # 11.04 kW at the plug
PER_SLOT_KWH = MAX_KW * WALLBOX.efficiency * DT_H  # into the car per full quarter-hour
SITE = Site(pv=None, battery=None, wallboxes=(WALLBOX,), heat_pumps=())
DAYS = (date(2024, 3, 31), date(2024, 6, 12), date(2024, 10, 27))
CAPACITY = 60.0
TOL_KWH = 0.02  # MIP gap on a few kWh


def departure_instant(day: date, hh: int, mm: int) -> pd.Timestamp | None:
    """The departure on ``day`` in UTC, from the tz database; None if the time does not exist."""
    wall = datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZoneInfo(TZ))
    utc = pd.Timestamp(wall).tz_convert("UTC")
    if pd.Timestamp(utc).tz_convert(TZ).to_pydatetime().replace(tzinfo=None) != wall.replace(
        tzinfo=None
    ):
        return None  # in the spring gap
    return utc


def plan_first_slot_kw(now: pd.Timestamp, energy: float, target: float, dep: DepartureTarget,
                       prices: np.ndarray) -> float:  # fmt: skip
    """What the controller sends for the slot starting at ``now`` [kW at the plug]."""
    index = utc_range(now, len(prices), 15)
    session = EVSession(
        mode=ChargingMode.SMART,
        capacity_kwh=CAPACITY,
        energy_kwh=energy,
        target_kwh=max(target, energy),
        departure=dep.next_departure(index[0]),
    )
    n = len(index)
    inputs = Inputs(index, prices, np.full(n, 0.08), np.zeros(n), np.full(n, 0.3))
    plan = optimize(Problem(SITE, inputs, State(0.5, {}, (session,))))
    return float(plan.slots["ev_kw"].iloc[0])


def hourly_prices(levels: list[float], n: int) -> np.ndarray:
    """Prices that tie within each hour (four equal quarter-hours), as the day-ahead market had."""
    return np.repeat(np.resize(np.asarray(levels), n // 4 + 1), 4)[:n]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    day=st.sampled_from(DAYS),
    hh=st.integers(1, 8),
    quarter=st.sampled_from((0, 15, 30, 45)),
    offset_min=st.sampled_from((-1, 0, 1)),
    lead_slots=st.integers(1, 12),
    energy=st.floats(5.0, 40.0),
    fill=st.floats(0.05, 1.0),
    levels=st.lists(st.sampled_from((0.22, 0.25, 0.31)), min_size=3, max_size=6),
)
def test_receding_horizon_meets_every_reachable_target(  # noqa: PLR0917  (one per strategy)
    day: date,
    hh: int,
    quarter: int,
    offset_min: int,
    lead_slots: int,
    energy: float,
    fill: float,
    levels: list[float],
) -> None:
    minute = quarter + offset_min
    hh, mm = (hh - 1, 59) if minute < 0 else (hh, minute)
    departure = departure_instant(day, hh, mm)
    assume(departure is not None)
    assert departure is not None
    # start on a slot boundary, lead_slots whole quarter-hours before the last one that ends
    # by the departure
    last_end = departure.floor("15min")
    now = last_end - lead_slots * STEP
    reachable = lead_slots * PER_SLOT_KWH
    target = min(energy + fill * reachable, CAPACITY)
    dep = DepartureTarget(f"{hh:02d}:{mm:02d}", target_kwh=target, capacity_kwh=CAPACITY, tz=TZ)
    assert dep.next_departure(now) == departure  # today's deadline, from the tz database
    prices = hourly_prices(levels, 48)
    car = energy
    while now < departure:
        kw = plan_first_slot_kw(now, car, target, dep, prices)
        plugged_h = min(STEP, departure - now) / pd.Timedelta(hours=1)  # the car leaves then
        car += kw * WALLBOX.efficiency * plugged_h
        assert car <= CAPACITY + 1e-6
        now += STEP
        prices = np.roll(prices, -1)
    assert car >= target - TOL_KWH, f"short by {target - car:.3f} kWh"


@pytest.mark.parametrize("day", DAYS)
@pytest.mark.parametrize("hh_mm", ["00:00", "01:59", "02:00", "02:30", "02:59", "03:00", "23:59"])
def test_next_departure_on_dst_days_is_the_coming_one(day: date, hh_mm: str) -> None:
    dep = DepartureTarget(hh_mm, tz=TZ)
    for now in local_day(day.isoformat(), TZ, 15):
        nxt = dep.next_departure(now)
        assert now < nxt <= now + pd.Timedelta(hours=25)
        # the next one after that is the same wall-clock time the following day
        assert nxt.tz_convert(TZ).strftime("%H:%M") == hh_mm or (
            day == date(2024, 3, 31) and hh_mm.startswith("02") and nxt.tz_convert(TZ).hour == 3
        )


@pytest.mark.parametrize(
    "after_end_min",
    [-16, -15, -14, -1, 0, 1, 14, 15, 16, 29, 31],
)
def test_departure_at_the_end_of_the_horizon(after_end_min: int) -> None:
    """The horizon asks for what cannot be charged in the whole slots after it, no less."""
    n = 16
    index = utc_range("2024-06-12T20:00Z", n, 15)
    end = index[-1] + STEP
    departure = end + pd.Timedelta(minutes=after_end_min)
    inside = int((departure - index[0]) // STEP)  # whole slots that end by the departure
    slots_in_horizon = min(inside, n)
    slots_after = max(inside - n, 0)
    energy = 10.0
    # reachable, and more than the slots after the horizon could deliver
    target = energy + (slots_in_horizon - 0.5 + slots_after) * PER_SLOT_KWH
    session = EVSession(
        mode=ChargingMode.SMART,
        capacity_kwh=200.0,
        energy_kwh=energy,
        target_kwh=target,
        departure=departure,
    )
    inputs = Inputs(index, np.full(n, 0.25), np.full(n, 0.08), np.zeros(n), np.full(n, 0.3))
    plan = optimize(Problem(SITE, inputs, State(0.5, {}, (session,))))
    ev_kw = plan.slots["ev_kw"].to_numpy()
    slot_end = index + STEP
    assert np.all(ev_kw[np.asarray(slot_end > departure)] < 1e-6)  # nothing after it leaves
    delivered = energy + ev_kw.sum() * WALLBOX.efficiency * DT_H
    still_possible_after = slots_after * PER_SLOT_KWH
    assert delivered + still_possible_after >= target - TOL_KWH
