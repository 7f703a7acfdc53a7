"""The SOC ceiling (register 1034) under AUTO, written over Modbus to the simulated box: it
charges the surplus up to the ceiling, exports the rest, and still discharges to cover load."""

from __future__ import annotations

import pytest

from adapters.heartbeat.esi_types import BatteryMode, Setpoints
from simulation.twin import TwinStep

pytestmark = pytest.mark.anyio

CEILING = 0.35


async def run(rig, start: str, hours: int, soc0: float, ceiling: float | None) -> list[TwinStep]:
    """The box in AUTO (car paused, heat pump blocked) for ``hours`` from ``start``; its steps."""
    rig.clock.set(start)
    rig.box.tick()
    rig.box.twin.soc = soc0
    rig.box.keep_steps, rig.box.steps = True, []
    async with rig.client() as c:
        await c.set_watchdog_timeout(3600)
        for _ in range(hours * 4):
            await c.heartbeat()
            await c.write_setpoints(
                Setpoints(
                    battery_mode=BatteryMode.AUTO,
                    battery_soc_max=ceiling,
                    wallbox_current_a=0,
                    hp_sgready_state=1,
                )
            )
            rig.clock.advance(900)
        await c.read_measurements()
    return rig.box.steps


def kwh(steps: list[TwinStep], attr: str) -> float:
    return sum(getattr(s, attr) * s.dt_s for s in steps) / 3600


async def test_the_box_charges_up_to_the_ceiling_and_exports_the_rest(rig):
    b = rig.box.twin.site.battery
    steps = await run(rig, "2024-06-11T09:00:00Z", 3, 0.30, CEILING)
    surplus = sum(max(s.pv_kw - s.load_kw - s.hp_kw - s.ev_kw, 0) * s.dt_s for s in steps) / 3600
    assert surplus > 5.0  # a sunny June morning: far more than the 0.5 kWh of room
    for s in steps:
        assert s.grid_kw == pytest.approx(s.load_kw + s.ev_kw + s.hp_kw - s.pv_kw - s.battery_kw)
        assert s.soc_end <= CEILING + 1e-9
        if s.soc_end < CEILING - 1e-6 and s.pv_kw > s.load_kw:  # below it: all surplus charged
            assert s.grid_kw == pytest.approx(0.0, abs=1e-9)
    assert rig.box.twin.soc == pytest.approx(CEILING)
    charged = kwh(steps, "charge_kw")
    assert charged * b.eta_charge == pytest.approx((CEILING - 0.30) * b.capacity_kwh)
    exported = -sum(min(s.grid_kw, 0) * s.dt_s for s in steps) / 3600
    imported = sum(max(s.grid_kw, 0) * s.dt_s for s in steps) / 3600
    # every kWh of surplus beyond the 0.53 kWh the room takes goes to the grid
    assert exported == pytest.approx(surplus - charged, abs=0.02)
    assert imported < 0.05  # the box never bought what the room was kept for


async def test_without_the_ceiling_the_box_takes_all_the_surplus(rig):
    steps = await run(rig, "2024-06-11T09:00:00Z", 3, 0.30, None)
    b = rig.box.twin.site.battery
    for s in steps:  # exports only what the battery cannot take: beyond 5 kW, or when full
        if s.grid_kw < -1e-9:
            assert s.charge_kw == pytest.approx(b.charge_max_kw) or s.soc_end > b.soc_max - 1e-3
    assert kwh(steps, "charge_kw") > 5.0


async def test_the_box_still_discharges_below_the_ceiling_to_cover_the_load(rig):
    b = rig.box.twin.site.battery
    steps = await run(rig, "2024-06-11T19:00:00Z", 2, CEILING, CEILING)
    deficit = sum(max(s.load_kw - s.pv_kw, 0) * s.dt_s for s in steps) / 3600
    assert deficit > 0.5  # the evening needs the battery
    for s in steps:
        assert s.soc_end <= CEILING + 1e-9
    imported = sum(max(s.grid_kw, 0) * s.dt_s for s in steps) / 3600
    assert imported < 0.01  # the battery covered the house
    out = kwh(steps, "discharge_kw")
    assert out == pytest.approx(deficit - kwh(steps, "charge_kw"), abs=0.02)
    assert (CEILING - rig.box.twin.soc) * b.capacity_kwh == pytest.approx(
        out / b.eta_discharge - kwh(steps, "charge_kw") * b.eta_charge
    )
