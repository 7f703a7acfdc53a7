"""Stationary battery: SOC dynamics as a first difference over the horizon.

Charging and discharging are two non-negative powers. Where prices are non-negative an
optimum never uses both in one slot (it would only lose energy), so the block stays an LP; only
the slots in ``Context.burn_slots`` (negative import price, where wasting energy pays) get a
binary that forbids simultaneous flows.
"""

from __future__ import annotations

import numpy as np

from optimizer.devices.context import BatteryBlocks, Context
from optimizer.model import Block, diag, lag, pick


def terminal_value(ctx: Context) -> float:
    """Value of a kWh left in the battery at the horizon end [EUR/kWh]."""
    tuning, battery = ctx.problem.tuning, ctx.problem.site.battery
    assert battery is not None
    if tuning.terminal_value_eur_per_kwh is not None:
        return tuning.terminal_value_eur_per_kwh
    median_import = float(np.median(ctx.problem.inputs.import_eur_per_kwh))
    return max(0.0, median_import) * battery.discharge_efficiency


def add_battery(ctx: Context) -> None:
    """Add ``battery-charge``, ``battery-discharge`` [kW] and ``battery-energy`` [kWh]."""
    battery = ctx.problem.site.battery
    if battery is None:
        return
    m, n, dt = ctx.m, ctx.n, ctx.dt_h
    cap = battery.capacity_kwh
    e0 = ctx.problem.state.battery_soc * cap
    wear = ctx.problem.tuning.battery_wear_eur_per_kwh * dt / 2
    charge = m.var("battery-charge", 0.0, battery.charge_kw, wear)
    discharge = m.var("battery-discharge", 0.0, battery.discharge_kw, wear)
    # A SOC already outside the window must not make the problem infeasible: the bound
    # then holds the SOC where it is rather than forcing a recovery at any price.
    lower = min(battery.soc_min * cap, e0)
    upper = max(battery.soc_max * cap, e0)
    segments = ctx.problem.battery_end_value
    end_value = np.zeros(n)
    end_value[-1] = 0.0 if segments else -terminal_value(ctx)
    energy = m.var("battery-energy", lower, upper, end_value)
    if segments:
        _add_end_segments(ctx, energy, lower, segments)
    rhs = np.zeros(n)
    rhs[0] = e0
    m.rows(
        "battery-energy_balance",
        [
            (energy, diag(n)),
            (energy, lag(n, -1.0)),
            (charge, diag(n, -battery.charge_efficiency * dt)),
            (discharge, diag(n, dt / battery.discharge_efficiency)),
        ],
        rhs,
        rhs,
    )
    if battery.reserve_soc > battery.soc_min:
        penalty = ctx.problem.tuning.reserve_penalty_eur_per_kwh * dt
        short = m.var("battery-reserve_shortfall", 0.0, battery.reserve_soc * cap, penalty)
        m.rows("battery-reserve", [(energy, diag(n)), (short, diag(n))], battery.reserve_soc * cap)
    if ctx.problem.tuning.final_soc is not None:
        _add_final_target(ctx, energy, min(ctx.problem.tuning.final_soc, battery.soc_max) * cap)
    _forbid_simultaneous(ctx, charge, discharge)
    ctx.battery = BatteryBlocks(charge, discharge, energy, cap, e0)
    ctx.balance += [(discharge, 1.0), (charge, -1.0)]


def _forbid_simultaneous(ctx: Context, charge: Block, discharge: Block) -> None:
    slots = ctx.burn_slots
    if len(slots) == 0:
        return
    battery = ctx.problem.site.battery
    assert battery is not None
    m = ctx.m
    k = len(slots)
    charging = m.var("battery-charging", 0.0, 1.0, integer=True, size=k)
    rows = np.arange(k)
    m.rows(
        "battery-charge_mode",
        [(charge, pick(rows, slots)), (charging, pick(rows, rows, -battery.charge_kw))],
        ub=0.0,
        size=k,
    )
    m.rows(
        "battery-discharge_mode",
        [(discharge, pick(rows, slots)), (charging, pick(rows, rows, battery.discharge_kw))],
        ub=battery.discharge_kw,
        size=k,
    )


def _add_end_segments(
    ctx: Context, energy: Block, lower: float, segments: tuple[tuple[float, float], ...]
) -> None:
    """Concave end value: ``energy[-1] >= lower + sum(segment)``, each segment [kWh] worth its
    price. The prices fall from segment to segment, so the LP fills them in order."""
    k = len(segments)
    widths = np.array([w for w, _ in segments], dtype=float)
    values = np.array([v for _, v in segments], dtype=float)
    seg = ctx.m.var("battery-end_segment", 0.0, widths, -values, size=k)
    one = np.zeros(1, dtype=np.int64)
    ctx.m.rows(
        "battery-end_value",
        [
            (energy, pick(one, np.array([ctx.n - 1]))),
            (seg, pick(np.zeros(k, np.int64), np.arange(k), -1.0)),
        ],
        lb=lower,
        size=1,
    )


def _add_final_target(ctx: Context, energy: Block, target_kwh: float) -> None:
    """Soft end-of-horizon SOC: ``energy[-1] + shortfall >= target`` [kWh], next to the
    terminal value (which values energy above it as usual)."""
    penalty = ctx.problem.tuning.final_soc_penalty_eur_per_kwh
    short = ctx.m.var("battery-final_shortfall", 0.0, target_kwh, penalty, size=1)
    one = np.zeros(1, dtype=np.int64)
    ctx.m.rows(
        "battery-final_soc",
        [(energy, pick(one, np.array([ctx.n - 1]))), (short, pick(one, one))],
        lb=target_kwh,
        size=1,
    )
