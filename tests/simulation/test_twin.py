"""The physical twin conserves energy over a simulated day driven through the Modbus server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adapters.clock import SimClock
from adapters.heartbeat.esi_types import BatteryMode, Setpoints
from simulation.twin import DeviceCommand, SiteParams, Twin

pytestmark = pytest.mark.anyio

PLAN = [  # (battery kW, mode, wallbox A, SG-Ready) per 6-hour block
    (-4.0, BatteryMode.SETPOINT, 0, 2),
    (None, BatteryMode.AUTO, 16, 3),
    (3.0, BatteryMode.SETPOINT, 6, 1),
    (-2.0, BatteryMode.NO_GRID_CHARGE, 10, 4),
]


async def test_energy_conservation_over_a_day(rig):
    rig.clock.set("2024-06-11T00:00:00Z")
    rig.box.tick()
    rig.box.keep_steps = True
    soc0 = rig.box.twin.soc
    async with rig.client() as c:
        await c.set_watchdog_timeout(3600)
        for q in range(96):
            bat, mode, amps, sg = PLAN[q // 24]
            await c.heartbeat()
            await c.write_setpoints(
                Setpoints(
                    battery_kw=bat, battery_mode=mode, wallbox_current_a=amps, hp_sgready_state=sg
                )
            )
            rig.clock.advance(900)
        await c.read_measurements()
    steps = rig.box.steps
    assert sum(s.dt_s for s in steps) == pytest.approx(86400)
    b = rig.box.twin.site.battery
    for s in steps:  # house balance every step [kW]
        assert s.grid_kw == pytest.approx(s.load_kw + s.ev_kw + s.hp_kw - s.pv_kw - s.battery_kw)
        assert b.soc_min - 1e-9 <= s.soc_end <= b.soc_max + 1e-9
    e_in = sum(s.charge_kw * s.dt_s for s in steps) / 3600
    e_out = sum(s.discharge_kw * s.dt_s for s in steps) / 3600
    dsoc = rig.box.twin.soc - soc0
    assert e_in * b.eta_charge - e_out / b.eta_discharge == pytest.approx(dsoc * b.capacity_kwh)
    assert e_in > 5 and e_out > 5  # the day really charged and discharged
    losses = e_in * (1 - b.eta_charge) + e_out * (1 / b.eta_discharge - 1)
    assert e_in - e_out - losses == pytest.approx(dsoc * b.capacity_kwh)
    # buffer: one record per minute, powers consistent with the steps
    recs = [r for r in rig.box.buffer.pending() if r.t >= pd.Timestamp("2024-06-11").timestamp()]
    assert len(recs) == 1440
    grid_kwh = sum(s.grid_kw * s.dt_s for s in steps) / 3600
    assert sum(r.grid_kw for r in recs) / 60 == pytest.approx(grid_kwh, rel=1e-6)


def test_heat_store_follows_sgready(june_profiles):
    t0 = june_profiles.start
    temps = {}
    for sg in (1, 4):
        twin = Twin(SiteParams(), june_profiles)
        for i in range(360):
            twin.step(t0 + 60 * i, 60, DeviceCommand(hp_sgready=sg, wallbox_current_a=0))
        temps[sg] = twin.t_store_c
    hp = SiteParams().heat_pump
    assert temps[1] < hp.t_init_c < temps[4]  # blocked: cools towards outdoor; forced: heats


def test_heat_store_energy_balance(june_profiles):
    twin = Twin(SiteParams(), june_profiles)
    hp = twin.site.heat_pump
    t0, t_start, heat_in, loss = june_profiles.start, twin.t_store_c, 0.0, 0.0
    for i in range(600):
        t_before = twin.t_store_c
        s = twin.step(t0 + 60 * i, 60, DeviceCommand(hp_sgready=3))
        heat_in += s.hp_kw * hp.cop(s.t_out_c) / 60
        loss += hp.loss_kw_per_k * (t_before - s.t_out_c) / 60
    assert (twin.t_store_c - t_start) * hp.store_kwh_per_k == pytest.approx(heat_in - loss)


def test_ev_follows_real_sessions(june_profiles):
    twin = Twin(SiteParams(), june_profiles)
    t0 = june_profiles.start
    ev = np.array(
        [twin.step(t0 + 60 * i, 60, DeviceCommand(wallbox_current_a=16)).ev_kw for i in range(2880)]
    )
    sessions = june_profiles.ev_sessions
    assert len(sessions) >= 1
    delivered = ev.sum() / 60
    assert 0 < delivered <= sessions["energy_kwh"].sum() + 1e-9
    plugged = [twin.ev_session(t0 + 60 * i) is not None for i in range(2880)]
    assert not any(e > 0 and not p for e, p in zip(ev, plugged, strict=True))
    assert ev.max() <= 3 * 230 * 16 / 1000 + 1e-9


def test_sim_clock_cannot_go_back():
    clock = SimClock("2024-06-10T00:00:00Z")
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="naive"):
        SimClock("2024-06-10 00:00")
