"""A plan played back on the physical twin, to see what the optimizer's model gets wrong.

The perfect-foresight plan predicts its own cost on 15-minute slots with the optimizer's
device models. Played back minute by minute on the twin (:class:`~simulation.twin.Twin`) it
costs what the simulated home makes of it. Two ways to play it back:

* ``exact``: the battery at the plan's power (SETPOINT), the car at the plan's power, the heat
  pump forced on at the plan's power (SG-Ready 4 with a budget) or off -- the difference to the
  prediction is model error alone (losses, SOC limits, the minute-level twin, the COP line);
* ``box``: the commands the controller would send for the same slots
  (:mod:`scheduler.commands`: AUTO/HOLD/SETPOINT battery, SG-Ready with a budget, the
  thermostat deciding), which adds the error of the command translation.

The rule ``battery-ceiling`` is the battery rule with the SOC ceiling where the plan keeps room
(:func:`~scheduler.commands.keeps_room`, ``SiteConfig.soc_ceiling``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import numpy as np
import pandas as pd

from adapters.heartbeat.esi_types import BatteryMode
from optimizer import Plan
from scheduler.commands import battery_command, battery_soc_ceiling, keeps_room, sgready_command
from scheduler.simulate import STEP_S, steps_frame
from simulation.twin import DeviceCommand, Twin, TwinStep

Mode = Literal["exact", "box"]
DEVICES = ("battery", "ev", "hp")


def play_back(plan: Plan, twin: Twin, mode: Mode | Collection[str] = "exact") -> pd.DataFrame:
    """Step ``twin`` minute by minute through the plan's slots; per-minute steps frame.

    ``mode``: ``exact``, ``box``, or the devices (``battery`` or ``battery-ceiling``, ``ev``,
    ``hp``) that get the box commands while the others follow the plan exactly.
    """
    rules = () if mode == "exact" else DEVICES if mode == "box" else tuple(mode)
    commands = slot_commands(plan, twin, frozenset(rules))
    t0 = plan.slots.index[0].timestamp()
    slot_s = plan.problem.inputs.dt_h * 3600
    steps: list[TwinStep] = []
    t = t0
    t_end = t0 + slot_s * len(commands)
    while t < t_end:
        steps.append(twin.step(t, STEP_S, commands[int((t - t0) // slot_s)]))
        t += STEP_S
    return steps_frame(steps)


def slot_commands(plan: Plan, twin: Twin, rules: frozenset[str]) -> list[DeviceCommand]:
    """One twin command per plan slot (see the module notes)."""
    s = plan.slots
    ev_cols = [c for c in map(str, s.columns) if c.startswith("ev") and c.endswith("_kw")]
    ev_kw = s[ev_cols].sum(axis=1) if ev_cols else pd.Series(0.0, index=s.index)
    hp_kw = s["hp_kw"] if "hp_kw" in s else pd.Series(0.0, index=s.index)
    sg = s["hp_sgready"] if "hp_sgready" in s else pd.Series(2, index=s.index)
    wb = twin.site.wallbox
    b = twin.site.battery
    out = []
    soc = s["battery_soc"] if "battery_soc" in s else pd.Series(None, index=s.index)
    battery = plan.problem.site.battery
    room = (
        keeps_room(s, battery.soc_min, battery.soc_max)
        if battery is not None and "battery-ceiling" in rules
        else np.zeros(len(s), dtype=bool)
    )
    for bat, grid, ev, hp, sgready, soc_end, keep in zip(
        s["battery_kw"], s["grid_kw"], ev_kw, hp_kw, sg, soc, room, strict=True
    ):
        amps = float(ev) * 1000 / (wb.phases * wb.voltage_v) if ev > 0.05 else 0.0
        battery_mode, battery_kw = BatteryMode.SETPOINT, float(bat)
        hp_sg, budget = (4, float(hp)) if hp > 0.01 else (1, None)
        soc_max = b.soc_max
        if "battery" in rules or "battery-ceiling" in rules:
            m, p = battery_command(float(bat), float(grid))
            battery_mode, battery_kw = m, 0.0 if p is None else p
            ceiling = battery_soc_ceiling(
                float(bat),
                float(grid),
                soc_end,
                battery,
                bool(keep),
            )
            soc_max = b.soc_max if ceiling is None else min(ceiling, b.soc_max)
        if "ev" in rules:
            amps = max(amps, 6.0) if amps > 0 else 0.0
        if "hp" in rules:
            hp_sg, budget = sgready_command(int(sgready), float(hp))
        out.append(
            DeviceCommand(
                battery_kw=battery_kw,
                battery_mode=battery_mode,
                soc_min=b.soc_min,
                soc_max=soc_max,
                wallbox_current_a=amps,
                wallbox_phases=wb.phases,
                hp_sgready=hp_sg,
                hp_budget_kw=budget,
            )
        )
    return out
