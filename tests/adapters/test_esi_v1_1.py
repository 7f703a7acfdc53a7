"""ESI v1.1 measurements (EV SOC, session energy, heat-store temperature) against a real pymodbus
box simulator on 127.0.0.1, and a v1.0 box that does not have them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pandas as pd
import pytest

from adapters.clock import SimClock
from adapters.heartbeat import esi_map as m
from adapters.heartbeat.client import HeartbeatClient
from adapters.heartbeat.esi_types import BatteryMode, Setpoints
from simulation.box import BoxConfig, HeartbeatBox
from simulation.box_sim import BoxSimulator, start_box_simulator
from simulation.twin import Profiles, SiteParams, Twin

pytestmark = pytest.mark.anyio
NOW = "2024-06-10T10:00:00Z"
Rig = tuple[HeartbeatBox, BoxSimulator, SimClock]


def _car_now(profiles: Profiles) -> Profiles:
    """One car plugged in from 09:30 to 14:00 UTC wanting 20 kWh."""
    sessions = pd.DataFrame({"plugin_utc": [pd.Timestamp("2024-06-10T09:30Z")],
                             "plugout_utc": [pd.Timestamp("2024-06-10T14:00Z")],
                             "energy_kwh": [20.0]})  # fmt: skip
    return replace(profiles, ev_sessions=sessions)


async def _box(profiles: Profiles, minor: int) -> Rig:
    clock = SimClock(NOW)
    box = HeartbeatBox(Twin(SiteParams(), _car_now(profiles)), clock, BoxConfig(esi_minor=minor))
    box.keep_steps = True
    return box, await start_box_simulator(box), clock


@pytest.fixture
async def v1_1(
    june_profiles: Profiles,
) -> AsyncIterator[tuple[HeartbeatBox, BoxSimulator, SimClock]]:
    box, sim, clock = await _box(june_profiles, 1)
    try:
        yield box, sim, clock
    finally:
        await sim.stop()


@pytest.fixture
async def v1_0(
    june_profiles: Profiles,
) -> AsyncIterator[tuple[HeartbeatBox, BoxSimulator, SimClock]]:
    box, sim, clock = await _box(june_profiles, 0)
    try:
        yield box, sim, clock
    finally:
        await sim.stop()


async def _charge_half_an_hour(client: HeartbeatClient, box: HeartbeatBox, clock: SimClock) -> None:
    await client.write_setpoints(Setpoints(battery_mode=BatteryMode.AUTO, wallbox_current_a=16.0))
    for _ in range(30):
        clock.advance(60)
        box.tick()
        await client.heartbeat(force=True)


async def test_v1_1_box_reports_session_energy_soc_and_store_temperature(v1_1) -> None:
    box, sim, clock = v1_1
    async with HeartbeatClient("127.0.0.1", sim.port, clock=clock, timeout_s=1.0) as c:
        assert (await c.discover()).version_minor == 1
        await _charge_half_an_hour(c, box, clock)
        meas = await c.read_measurements()
    steps = pd.DataFrame([s.__dict__ for s in box.steps])
    charged = float((steps["ev_kw"] * steps["dt_s"] / 3600).sum())  # the twin's physics
    assert charged == pytest.approx(11.04 * 0.5, rel=0.05)
    assert meas.ev_session_kwh == pytest.approx(charged, abs=1e-3)  # Wh on the wire
    assert meas.ev_soc == pytest.approx(0.3 + charged / 60.0, abs=1e-3)  # permille
    assert meas.hp_store_temp_c == pytest.approx(box.twin.t_store_c, abs=1e-3)


async def test_client_reads_the_version_itself_without_discover(v1_1) -> None:
    box, sim, clock = v1_1
    clock.advance(60)  # one minute of the box's own logic: the car charges from plug-in
    box.tick()
    async with HeartbeatClient("127.0.0.1", sim.port, clock=clock, timeout_s=1.0) as c:
        meas = await c.read_measurements()
        assert c.esi_minor == 1
    assert meas.ev_session_kwh == pytest.approx(11.04 / 60, rel=0.02)
    assert meas.hp_store_temp_c == pytest.approx(box.twin.t_store_c, abs=1e-3)


async def test_v1_0_box_still_works_and_reports_none(v1_0) -> None:
    box, sim, clock = v1_0
    async with HeartbeatClient("127.0.0.1", sim.port, clock=clock, timeout_s=1.0) as c:
        info = await c.discover()
        assert (info.version_major, info.version_minor) == (1, 0)
        await _charge_half_an_hour(c, box, clock)
        meas = await c.read_measurements()
        raw = await c.read_raw(1122, 5)
    assert raw == [0] * 5  # reserved in v1.0
    assert meas.wallbox_kw == pytest.approx(11.04, rel=0.01)
    assert (meas.ev_soc, meas.ev_session_kwh, meas.hp_store_temp_c) == (None, None, None)


def test_v1_1_fields_sit_in_the_reserved_range_of_the_measurement_block() -> None:
    fields = {f.name: f for f in m.MEASUREMENTS.fields}
    for name in m.V1_1_FIELDS:
        f = fields[name]
        assert f.addr >= 1122 and f.end <= m.MEASUREMENTS.base + m.MEASUREMENTS.length
