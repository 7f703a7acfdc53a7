"""Plan -> box command mapping, departure times, and the stepped clock's ordering."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pandas as pd
import pytest

from adapters.clock import SimClock
from adapters.heartbeat.esi_types import BatteryMode
from optimizer import HeatPumpSetpoint, Setpoints, WallboxSetpoint
from scheduler.backtest_inputs import bundled_inputs
from scheduler.clock import SteppedClock, Wakeup
from scheduler.commands import (
    battery_command,
    battery_soc_ceiling,
    box_setpoints,
    keeps_room,
    schedule_slot,
)
from scheduler.controller import DepartureTarget, SiteConfig
from scheduler.fair_score import Scorer, plan_trace, steps_trace
from scheduler.playback import play_back
from scheduler.scenario import Home
from scheduler.simulate import perfect_foresight
from simulation.twin import Twin

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


@pytest.mark.parametrize(
    ("battery_kw", "grid_kw", "soc_end", "ceiling"),
    [
        (0.0, -2.0, 0.4, 0.4),  # exports, battery idle below its maximum: keeps room
        (-1.0, -2.0, 0.4123, 0.413),  # charges part of the surplus: up to the plan, 0.1 % up
        (0.0, -2.0, 0.995, None),  # full (within 1 %): nothing kept
        (-2.0, 0.0, 0.4, None),  # self-consumption: the box takes all the surplus
        (0.0, 1.5, 0.4, None),  # HOLD while importing
        (4.0, -3.0, 0.4, None),  # discharging into the grid (SETPOINT)
        (0.0, -2.0, None, None),  # no planned SOC
    ],
)
def test_battery_soc_ceiling(
    battery_kw: float, grid_kw: float, soc_end: float | None, ceiling: float | None
) -> None:
    battery = Home().site.battery
    assert battery_soc_ceiling(battery_kw, grid_kw, soc_end, battery, True) == ceiling
    assert battery_soc_ceiling(battery_kw, grid_kw, soc_end, battery, False) is None


def room_plan(later_export: float, soc_between: float, grid_between: float) -> pd.DataFrame:
    """Four slots: export now at 0.08 EUR/kWh with the battery idle at 40 %, a slot between
    (SOC ``soc_between``, grid ``grid_between``), a later slot charging 2 kW from PV exported
    at ``later_export``, then idle."""
    return pd.DataFrame(
        {
            "battery_charge_kw": [0.0, 0.0, 2.0, 0.0],
            "battery_soc": [0.4, soc_between, 0.6, 0.6],
            "grid_kw": [-2.0, grid_between, -1.0, 0.0],
            "pv_curtailed_kw": [0.0, 0.0, 0.0, 0.0],
            "import_eur_per_kwh": [0.30, 0.30, 0.30, 0.30],
            "export_eur_per_kwh": [0.08, 0.08, later_export, 0.08],
        }
    )


@pytest.mark.parametrize(
    ("later_export", "soc_between", "grid_between", "kept"),
    [
        (0.0, 0.4, -1.0, True),  # the later charge earns nothing exported (negative spot)
        (0.08, 0.4, -1.0, False),  # the same feed-in later: a tie, charge now (AUTO)
        (0.0, 1.0, -1.0, False),  # full in between: the room is not what the later charge uses
        (0.0, 0.05, 0.5, False),  # empty while importing: a kWh stored now would have served
        (0.0, 0.05, 0.0, True),  # empty, but the house needed no more
    ],
)
def test_keeps_room_only_where_a_later_charge_is_worth_less(
    later_export: float, soc_between: float, grid_between: float, kept: bool
) -> None:
    room = keeps_room(room_plan(later_export, soc_between, grid_between), 0.05, 1.0)
    assert bool(room[0]) == kept
    assert not room[2:].any()  # nothing cheaper after the last charge


def test_the_live_command_carries_the_ceiling_the_schedule_does_not() -> None:
    site = Home().site
    sp = replace(setpoints(0.0, 0, 0.0, 2), battery_kw=0.0)
    live = box_setpoints(sp, -3.0, site, soc_end=0.25, keeps_room=True)
    assert live.battery_mode == BatteryMode.AUTO and live.battery_soc_max == 0.25
    assert box_setpoints(sp, -3.0, site).battery_soc_max is None
    assert schedule_slot(sp, -3.0, site).battery_kw is None


def test_the_perfect_foresight_plan_keeps_its_room_through_the_soc_ceiling() -> None:
    """2024-06-02: the plan exports the morning's PV at the feed-in tariff and keeps room for
    the midday's negative spot prices (feed-in unpaid). Played back on the twin through the
    battery commands with the SOC ceiling it costs what it predicted (within 3 cents); with
    AUTO alone the box fills up in the morning and the plan loses more than 0.50 EUR."""
    start = pd.Timestamp("2024-06-02", tz="UTC")
    end = start + pd.Timedelta(days=1)
    config = SiteConfig("battery-rule")
    inputs = bundled_inputs(start, 1, config.home).for_period(start, end)
    twin = Twin(inputs.twin_params(), inputs.profiles(start, end))
    temp0 = twin.t_store_c
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    plan = perfect_foresight(replace(config, hp_temp_init_c=temp0), twin, start, end, twin.soc,
                             prices=inputs.tariff_prices(index))  # fmt: skip
    scorer = Scorer(inputs, start, end, config.tuning)
    predicted = scorer.score(plan_trace(plan, temp0)).full.net_eur

    def played(rule: str) -> float:
        fresh = Twin(inputs.twin_params(), inputs.profiles(start, end))
        steps = play_back(plan, fresh, (rule,))
        return scorer.score(steps_trace(steps, temp0)).full.net_eur

    assert abs(played("battery-ceiling") - predicted) < 0.03
    assert played("battery") - predicted > 0.50


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
    assert live.hp_sgready_state == 3 and live.hp_power_budget_kw == pytest.approx(1.2)
    paused = box_setpoints(setpoints(0.0, 0, 0.0, 1), 0.0, site)
    assert paused.wallbox_current_a == 0.0 and paused.hp_sgready_state == 1
    assert paused.battery_mode == BatteryMode.AUTO
    # a schedule slot has no AUTO: it leaves the battery to the box ("no command")
    assert schedule_slot(setpoints(0.0, 0, 0.0, 1), 0.0, site).battery_kw is None


@pytest.mark.parametrize(
    ("hp_kw", "sg", "expected"),
    [
        (1.2, 2, (3, 1.2)),  # heating under "normal": recommend on at the planned power
        (0.4, 3, (3, 0.4)),
        (3.0, 4, (4, 3.0)),  # the plan's "force on" stays
        (0.0, 1, (1, None)),  # blocked
        (0.005, 2, (2, None)),  # idle: the pump's own thermostat
    ],
)
def test_the_heat_pump_runs_at_the_planned_power_where_the_plan_heats(
    hp_kw: float, sg: int, expected: tuple[int, float | None]
) -> None:
    live = box_setpoints(setpoints(0.0, 0, hp_kw, sg), 0.0, Home().site)
    assert (live.hp_sgready_state, live.hp_power_budget_kw) == expected


def test_the_perfect_foresight_plan_loses_nothing_through_the_heat_pump_commands() -> None:
    """Played back minute by minute on the twin through the controller's heat-pump commands,
    a day's perfect-foresight plan costs what it predicted (within 3 cents)."""
    start = pd.Timestamp("2024-01-08", tz="UTC")
    end = start + pd.Timedelta(days=1)
    config = SiteConfig("hp-rule")
    inputs = bundled_inputs(start, 1, config.home).for_period(start, end)
    twin = Twin(inputs.twin_params(), inputs.profiles(start, end))
    temp0 = twin.t_store_c
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    plan = perfect_foresight(replace(config, hp_temp_init_c=temp0), twin, start, end, twin.soc,
                             prices=inputs.tariff_prices(index))  # fmt: skip
    scorer = Scorer(inputs, start, end, config.tuning)
    predicted = scorer.score(plan_trace(plan, temp0)).full.net_eur
    fresh = Twin(inputs.twin_params(), inputs.profiles(start, end))
    played = scorer.score(steps_trace(play_back(plan, fresh, ("hp",)), temp0)).full.net_eur
    assert plan.slots["hp_kw"].sum() > 4 * 5  # a January day: the pump does run
    assert abs(played - predicted) < 0.03


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
