"""Plan -> box command mapping, departure times, and the stepped clock's ordering."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from adapters.clock import SimClock
from adapters.heartbeat.esi_types import BatteryMode
from optimizer import HeatPumpSetpoint, Setpoints, WallboxSetpoint
from scheduler.clock import SteppedClock, Wakeup
from scheduler.commands import battery_command, box_setpoints, schedule_slot
from scheduler.controller import DepartureTarget
from scheduler.scenario import Home

T0 = pd.Timestamp("2024-06-13T10:00Z")


@pytest.mark.parametrize(
    ("battery_kw", "grid_kw", "mode", "power"),
    [
        (-2.0, 0.0, BatteryMode.AUTO, None),  # self-consumption: the box follows the load
        (0.0, 1.5, BatteryMode.HOLD, 0.0),  # keep the energy for later
        (-1.0, -2.0, BatteryMode.AUTO, None),  # exporting: the battery may take more surplus
        (0.0, -2.0, BatteryMode.AUTO, None),
        (-3.0, 3.5, BatteryMode.SETPOINT, -3.0),  # grid charging
        (4.0, -3.0, BatteryMode.SETPOINT, 4.0),  # discharge into the grid
    ],
)
def test_battery_command(
    battery_kw: float, grid_kw: float, mode: BatteryMode, power: float | None
) -> None:
    assert battery_command(battery_kw, grid_kw) == (mode, power)


def setpoints(ev_kw: float, phases: int, hp_kw: float, sg: int) -> Setpoints:
    current = ev_kw * 1000 / (phases * 230) if phases else None
    return Setpoints(
        T0,
        T0 + pd.Timedelta("15min"),
        -2.0,
        {"ev": WallboxSetpoint(ev_kw, current, phases)},
        {"hp": HeatPumpSetpoint(hp_kw, sg)},
    )


def test_box_setpoints_carry_current_phases_and_sgready() -> None:
    site = Home().site
    live = box_setpoints(setpoints(6.9, 3, 1.2, 3), 4.0, site)
    assert live.battery_mode == BatteryMode.SETPOINT and live.battery_kw == -2.0
    assert live.wallbox_current_a == pytest.approx(10.0, abs=0.01)
    assert live.wallbox_phases == 3
    assert live.hp_sgready_state == 3 and live.hp_power_budget_kw == pytest.approx(1.25)
    paused = box_setpoints(setpoints(0.0, 0, 0.0, 1), 0.0, site)
    assert paused.wallbox_current_a == 0.0 and paused.hp_sgready_state == 1
    assert paused.battery_mode == BatteryMode.AUTO
    # a schedule slot has no AUTO: it leaves the battery to the box ("no command")
    assert schedule_slot(setpoints(0.0, 0, 0.0, 1), 0.0, site).battery_kw is None


def test_next_departure_is_local_time_and_still_today_inside_the_last_slot() -> None:
    dep = DepartureTarget("07:00")
    assert dep.next_departure(pd.Timestamp("2024-06-13T18:00Z")) == pd.Timestamp(
        "2024-06-14T05:00Z"
    )  # 07:00 CEST
    # the slot 06:45-07:00 CET ends at the departure: still today's deadline
    assert dep.next_departure(pd.Timestamp("2024-01-10T05:45Z")) == pd.Timestamp(
        "2024-01-10T06:00Z"
    )
    assert dep.next_departure(pd.Timestamp("2024-01-10T05:55Z")) == pd.Timestamp(
        "2024-01-10T06:00Z"
    )
    # at the departure itself the car has left: tomorrow, 07:00 CET
    assert dep.next_departure(pd.Timestamp("2024-01-10T06:00Z")) == pd.Timestamp(
        "2024-01-11T06:00Z"
    )
    with pytest.raises(ValueError, match="time_local"):
        DepartureTarget("7 am")


def test_stepped_clock_wakes_in_time_order_and_on_events() -> None:
    async def scenario() -> list[tuple[str, float]]:
        clock = SteppedClock(SimClock(0.0))
        seen: list[tuple[str, float]] = []
        wake = Wakeup()

        async def sleeper(name: str, period: float, w: Wakeup | None = None) -> None:
            while True:
                await clock.sleep_until(clock.now() + period, w)
                seen.append((name, clock.now()))

        clock.spawn(sleeper("a", 25.0), "a")
        clock.spawn(sleeper("b", 60.0, wake), "b")
        await clock.advance_to(70.0)
        clock.wake(wake)
        await clock.advance_to(70.0)
        return seen

    seen = asyncio.run(scenario())
    assert seen == [("a", 25.0), ("a", 50.0), ("b", 60.0), ("b", 70.0)]
