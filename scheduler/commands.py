"""Optimizer setpoints -> box commands (live setpoints and schedule slots).

The plan's battery power is a forecast-based slot mean. Sent as a fixed setpoint it would push
every forecast error of PV and load onto the grid, so the battery command depends on what the
plan does in the slot (``grid_kw`` is the planned grid power, + import):

* planned grid ~ 0: the plan is self-consumption here -> ``AUTO``: the box follows the real
  load and PV, as the plan intends;
* exporting while the battery idles or charges: ``AUTO`` too. The plan only exports what it
  expects the battery not to need; charging the surplus now rather than later costs nothing,
  while a PV forecast that was too high would otherwise leave the battery empty. (A plan
  that keeps room for a later negative-price or feed-in-capped hour loses that nuance.)
* battery ~ 0 while importing: keep the energy for later -> ``HOLD`` (no discharge, PV surplus
  may still charge);
* otherwise (grid charging, discharging into the grid or next to a large import) ->
  ``SETPOINT`` with the planned power.

Under AUTO the box charges every kW of surplus. Optionally (``SiteConfig.soc_ceiling``, off
by default), where the plan exports although the battery could still take energy *and* the
room pays (:func:`keeps_room`: a later charge, before the battery is next full, is worth less
than the feed-in now, e.g. surplus at a negative spot price whose feed-in earns nothing), the
live command carries a **SOC ceiling** (register 1034) at the plan's SOC at the slot's end.
The box still follows the real load and PV below it and exports the surplus above it. Where
exporting now and charging later are worth the same (a tie of the plan), no ceiling: the box
charges now, which is robust to a later replan. Played back on the twin, the perfect-foresight
plan of 2024-06-10 lost 0.50 EUR/week through AUTO, -0.02 with the ceiling
(``benchmarks/pf_model_error.py``); in the closed loop the ceiling gained at most 0.03 EUR/week
in June and lost 0.36-0.48 EUR in March 2024 (room kept for a midday surplus that a car the
plan did not expect then took), hence off.

A schedule slot can only say "setpoint" or "no command": AUTO becomes no command (the box's
local self-consumption, without the ceiling), HOLD a 0 kW setpoint, the others their power.

The heat pump: where the plan heats, SG-Ready "recommend on" (or the plan's "force on") with
the planned power as the budget, so the pump delivers what the plan bought; elsewhere the
plan's state ("block" or "normal") without a budget. Played back on the twin, the
perfect-foresight plans of four 2024 weeks lost 0.37-1.32 EUR/week through the former rule
(the plan's state, budget = plan + 0.05 kW) and -0.04..+0.01 EUR/week through this one
(``benchmarks/pf_model_error.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from adapters.heartbeat.esi_types import BatteryMode, ScheduleSlot
from adapters.heartbeat.esi_types import Setpoints as BoxSetpoints
from optimizer import Battery, Setpoints, Site

#: Grid power below which a slot counts as self-consumption [kW].
GRID_DEADBAND_KW = 0.1
#: Battery power below which the plan leaves the battery idle [kW].
BATTERY_DEADBAND_KW = 0.05
#: Room [0-1 of capacity] below the battery's maximum SOC that counts as room kept on purpose.
SOC_ROOM = 0.01
#: How much less a later charge must be worth than the feed-in now to keep room [EUR/kWh].
ROOM_MARGIN_EUR_PER_KWH = 0.005
#: Heat-pump power below which the plan's SG-Ready state is sent without a budget [kW].
HP_DEADBAND_KW = 0.01


def battery_command(battery_kw: float | None, grid_kw: float) -> tuple[BatteryMode, float | None]:
    """Battery mode and power [kW, + discharge] for a planned slot (see module notes)."""
    if battery_kw is None or abs(grid_kw) <= GRID_DEADBAND_KW:
        return BatteryMode.AUTO, None
    if grid_kw < 0 and battery_kw < BATTERY_DEADBAND_KW:
        return BatteryMode.AUTO, None
    if abs(battery_kw) < BATTERY_DEADBAND_KW:
        return BatteryMode.HOLD, 0.0
    return BatteryMode.SETPOINT, round(battery_kw, 3)


def battery_soc_ceiling(
    battery_kw: float | None,
    grid_kw: float,
    soc_end: float | None,
    battery: Battery | None,
    keeps_room: bool,
) -> float | None:
    """SOC ceiling [0-1] the box should enforce in a planned slot, None = its own maximum.

    A ceiling where the plan exports while its battery idles or charges, ends the slot below
    its maximum SOC and ``keeps_room`` (:func:`keeps_room`): the plan's SOC at the slot's end
    ``soc_end``, rounded up to the register's 0.1 %.
    """
    if battery is None or battery_kw is None or soc_end is None or not keeps_room:
        return None
    if grid_kw >= -GRID_DEADBAND_KW or battery_kw >= BATTERY_DEADBAND_KW:
        return None
    if soc_end >= battery.soc_max - SOC_ROOM:
        return None
    return min(max(math.ceil(soc_end * 1000 - 1e-6) / 1000, battery.soc_min), battery.soc_max)


def keeps_room(slots: pd.DataFrame, soc_min: float, soc_max: float) -> np.ndarray:
    """Per plan slot: does the battery's room kept there pay later?

    True where a later slot, before the plan's battery is next full or empty while the house
    imports (until then a kWh charged now would still be in it, unused), charges it with energy
    worth at least ``ROOM_MARGIN_EUR_PER_KWH`` less than this slot's feed-in tariff: feed-in
    that earns nothing there (a negative spot price), curtailed PV or cheaper grid energy.
    Where the later charge is worth the same (flat feed-in), exporting now and charging later
    is a tie of the plan, and the box's AUTO (charge now) is kept: a plan replanned on new data
    may not charge later after all. ``slots``: the plan's frame (``battery_charge_kw``,
    ``battery_soc``, ``grid_kw``, ``pv_curtailed_kw``, ``import_eur_per_kwh``,
    ``export_eur_per_kwh``); ``soc_min``, ``soc_max``: the battery's limits [0-1].
    """
    n = len(slots)
    if "battery_soc" not in slots or "export_eur_per_kwh" not in slots:
        return np.zeros(n, dtype=bool)
    export = slots["export_eur_per_kwh"].to_numpy(float)
    value = np.where(
        slots["grid_kw"].to_numpy(float) > 0, slots["import_eur_per_kwh"].to_numpy(float), export
    )
    value = np.where(slots["pv_curtailed_kw"].to_numpy(float) > BATTERY_DEADBAND_KW, 0.0, value)
    charging = slots["battery_charge_kw"].to_numpy(float) > BATTERY_DEADBAND_KW
    soc = slots["battery_soc"].to_numpy(float)
    importing = slots["grid_kw"].to_numpy(float) > GRID_DEADBAND_KW
    at_limit = (soc >= soc_max - SOC_ROOM) | ((soc <= soc_min + SOC_ROOM) & importing)
    out = np.zeros(n, dtype=bool)
    cheapest_later = np.inf  # the cheapest later charge before the next limit [EUR/kWh]
    for i in range(n - 1, -1, -1):
        out[i] = cheapest_later < export[i] - ROOM_MARGIN_EUR_PER_KWH
        if at_limit[i]:
            cheapest_later = np.inf
        if charging[i]:
            cheapest_later = min(cheapest_later, value[i])
    return out


def wallbox_command(sp: Setpoints, site: Site) -> tuple[float, int]:
    """Charging current [A] (0 = pause, else within the wallbox's range) and phases."""
    if not site.wallboxes:
        return 0.0, 0
    wb = site.wallboxes[0]
    cmd = sp.wallboxes.get(wb.name)
    if cmd is None or cmd.current_a is None or cmd.power_kw < 0.05:
        return 0.0, 0
    current = min(max(cmd.current_a, wb.min_current_a), wb.max_current_a)
    return round(current, 2), cmd.phases or wb.phases


def heat_pump_command(sp: Setpoints, site: Site) -> tuple[int | None, float | None]:
    """SG-Ready state (1-4) and electrical power budget [kW] (None = no budget)."""
    if not site.heat_pumps:
        return None, None
    cmd = sp.heat_pumps.get(site.heat_pumps[0].name)
    if cmd is None:
        return None, None
    return sgready_command(int(cmd.sgready), cmd.power_kw)


def sgready_command(sgready: int, power_kw: float) -> tuple[int, float | None]:
    """SG-Ready state and power budget [kW] for a slot the plan runs the heat pump at
    ``power_kw`` [kW] (see the module notes).

    Whenever the plan heats, at least "recommend on" (3) with the planned power as the budget:
    the pump then runs at the planned power unless its own thermostat, at the boost target,
    finds the store full. Under "normal" (2) the thermostat would leave a partly planned slot
    unheated when the store is above its normal target, and the plan's cheap heat is bought
    later at a worse price; a budget above the plan heats more than planned.
    """
    if power_kw <= HP_DEADBAND_KW or sgready == 1:
        return sgready, None
    return max(sgready, 3), round(power_kw, 2)


def box_setpoints(
    sp: Setpoints,
    grid_kw: float,
    site: Site,
    soc_end: float | None = None,
    keeps_room: bool = False,
) -> BoxSetpoints:
    """Live setpoints for the box from the plan's current slot (``soc_end``: the plan's battery
    SOC at the slot's end [0-1], ``keeps_room``: :func:`keeps_room` of the slot, for the
    ceiling)."""
    mode, battery_kw = battery_command(sp.battery_kw, grid_kw)
    ceiling = battery_soc_ceiling(sp.battery_kw, grid_kw, soc_end, site.battery, keeps_room)
    current, phases = wallbox_command(sp, site)
    sg, budget = heat_pump_command(sp, site)
    return BoxSetpoints(
        battery_kw=battery_kw,
        battery_mode=mode,
        battery_soc_max=ceiling,
        wallbox_current_a=current if site.wallboxes else None,
        wallbox_phases=phases,
        hp_sgready_state=sg,
        hp_power_budget_kw=budget,
    )


def schedule_slot(sp: Setpoints, grid_kw: float, site: Site) -> ScheduleSlot:
    """One schedule slot from a planned slot (AUTO -> no battery command)."""
    live = box_setpoints(sp, grid_kw, site)
    return ScheduleSlot(
        battery_kw=None if live.battery_mode == BatteryMode.AUTO else live.battery_kw,
        wallbox_current_a=live.wallbox_current_a,
        hp_sgready_state=live.hp_sgready_state,
        hp_power_budget_kw=live.hp_power_budget_kw,
    )
