"""Client against a real pymodbus box simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from adapters.heartbeat import esi_map as m
from adapters.heartbeat.client import (
    BoxBusy,
    BoxMapMismatch,
    BoxRejected,
    BoxUnreachable,
    HeartbeatClient,
    ScheduleRejected,
    schedule_registers,
)
from adapters.heartbeat.esi_types import (
    BatteryMode,
    Capability,
    ControlState,
    FallbackMode,
    FallbackSetpoints,
    LastStatus,
    Layer,
    SchedStatus,
    Schedule,
    ScheduleSlot,
    Setpoints,
)

pytestmark = pytest.mark.anyio


async def test_discover_and_status_round_trip(rig):
    async with rig.client() as c:
        info = await c.discover(Capability.BATTERY | Capability.SCHEDULE)
        assert info.magic == "ESI1" and info.version_major == 1
        assert info.map_length == m.MAP_LENGTH
        st = await c.read_status()
        assert st.control_state == ControlState.LOCAL
        assert st.box_time == pd.Timestamp("2024-06-10T10:00:00Z")
        await c.set_watchdog_timeout(30)
        assert (await c.read_status()).watchdog_timeout_s == 30


async def test_map_mismatch_is_typed(rig):
    rig.box.config = type(rig.box.config)(capabilities=Capability.BATTERY)
    async with rig.client() as c:
        with pytest.raises(BoxMapMismatch):
            await c.discover(Capability.WALLBOX)


async def test_setpoints_round_trip_and_applied(rig):
    sp = Setpoints(
        battery_kw=-2.5,
        battery_mode=BatteryMode.SETPOINT,
        battery_soc_min=0.1,
        battery_soc_max=0.9,
        wallbox_current_a=10.0,
        wallbox_phases=3,
        hp_sgready_state=3,
        hp_power_budget_kw=1.5,
        grid_import_limit_kw=11.0,
    )
    async with rig.client() as c:
        st = await c.write_setpoints(sp)
        assert st.control_state == ControlState.REMOTE_LIVE
        assert st.last_status == LastStatus.OK
        back, seq = await c.read_setpoints()
        assert back == sp and seq == st.applied_seq
        rig.clock.advance(30)
        meas = await c.read_measurements()
        assert meas.battery_applied_kw == -2.5
        assert meas.battery_kw == pytest.approx(-2.5)  # SOC 0.5 is inside 0.1..0.9
        assert meas.wallbox_applied_a == 10.0
        assert meas.hp_sgready_applied == 3
        assert meas.source_of_control == {
            "battery": Layer.LIVE, "wallbox": Layer.LIVE, "hp": Layer.LIVE
        }  # fmt: skip
        assert await c.read_measurements(input_registers=True) == meas  # FC4 mirror
        # house balance in the register values themselves [kW]
        bal = meas.house_load_kw + meas.wallbox_kw + meas.hp_kw - meas.pv_kw - meas.battery_kw
        assert meas.grid_kw == pytest.approx(bal, abs=0.005)


async def test_fallback_block_round_trip(rig):
    fb = FallbackSetpoints(battery_kw=-1.0, wallbox_current_a=8.0, hp_sgready_state=1)
    async with rig.client() as c:
        await c.set_fallback(FallbackMode.FALLBACK_SETPOINTS, fb)
        assert await c.read_fallback() == fb
        assert (await c.read_status()).fallback_mode == FallbackMode.FALLBACK_SETPOINTS


async def test_half_written_block_is_never_applied(rig):
    async with rig.client() as c:
        await c.write_setpoints(Setpoints(battery_kw=1.0, battery_mode=BatteryMode.SETPOINT))
        # new battery power and mode, but the frame stops before command_seq
        regs = m.encode(m.LIVE, {"battery_power_w": -4000, "battery_mode": 1})[:3]
        await c.write_raw(1030, regs)
        rig.clock.advance(30)
        meas = await c.read_measurements()
        assert meas.battery_applied_kw == 1.0
        # a partial int32 (only the low word of battery_power_w) is exception 03
        with pytest.raises(BoxRejected) as err:
            await c.write_raw(1031, [5])
        assert err.value.code == 3
        # an invalid enum in a full block is 03 and nothing is applied
        bad = m.encode(m.LIVE, {"battery_mode": 9, "command_seq": 999, "wallbox_phases": 0})
        with pytest.raises(BoxRejected):
            await c.write_raw(1030, bad)
        assert (await c.read_status()).applied_seq != 999
        assert (await c.read_measurements()).battery_applied_kw == 1.0


async def test_structurally_invalid_values_raise_03(rig):
    async with rig.client() as c:
        for addr, value in [(1011, 0), (1014, 7), (1036, 2), (1035, 3000), (1037, 5)]:
            with pytest.raises(BoxRejected) as err:
                await c.write_raw(addr, [value])
            assert err.value.code == 3, addr
        with pytest.raises(ValueError, match="wallbox_current_a"):
            await c.write_setpoints(Setpoints(wallbox_current_a=-3))


async def test_watchdog_expiry_fallback_and_leaving_it(rig):
    async with rig.client() as c:
        await c.set_watchdog_timeout(30)
        await c.set_fallback(FallbackMode.SAFE_HOLD)
        await c.write_setpoints(Setpoints(battery_kw=3.0, battery_mode=BatteryMode.SETPOINT))
        rig.clock.advance(20)
        st = await c.read_status()
        assert st.control_state == ControlState.REMOTE_LIVE and st.watchdog_remaining_s == 10
        rig.clock.advance(11)
        st = await c.read_status()
        assert st.control_state == ControlState.FALLBACK
        meas = await c.read_measurements()
        assert meas.battery_applied_kw == 0.0  # safe hold
        assert meas.wallbox_applied_a == 6.0
        assert meas.source_of_control["battery"] == Layer.FALLBACK
        _, seq_before = await c.read_setpoints()
    # a reconnect alone does not leave FALLBACK ...
    async with rig.client() as c2:
        assert (await c2.read_status()).control_state == ControlState.FALLBACK
        # ... nor does a heartbeat alone, nor re-sending the old command_seq
        await c2.heartbeat(force=True)
        rig.clock.advance(1)
        assert (await c2.read_status()).control_state == ControlState.FALLBACK
        old = m.encode(m.LIVE, {"battery_power_w": 3000, "battery_mode": 1,
                                "command_seq": (await c2.read_status()).applied_seq})  # fmt: skip
        await c2.write_raw(1030, old)
        assert (await c2.read_status()).control_state == ControlState.FALLBACK
        # heartbeat + new command_seq does
        st = await c2.write_setpoints(Setpoints(battery_kw=2.0, battery_mode=BatteryMode.SETPOINT))
        assert st.control_state == ControlState.REMOTE_LIVE and st.applied_seq != seq_before


async def test_stuck_heartbeat_does_not_refresh(rig):
    async with rig.client() as c:
        await c.write_setpoints(Setpoints(battery_kw=1.0, battery_mode=BatteryMode.SETPOINT))
        hb = (await c.read_status()).ctrl_heartbeat
        for _ in range(4):  # the same value re-sent every 20 s
            rig.clock.advance(20)
            await c.write_raw(1010, [hb])
        assert (await c.read_status()).control_state == ControlState.FALLBACK


async def test_heartbeat_rate_limit(rig):
    async with rig.client() as c:
        await c.discover()
        assert await c.heartbeat() is True
        rig.clock.advance(10)
        assert await c.heartbeat() is False  # < 60 s / 3
        rig.clock.advance(10)
        assert await c.heartbeat() is True


def _slots(n: int, kw: float) -> tuple[ScheduleSlot, ...]:
    return tuple(ScheduleSlot(battery_kw=kw, hp_sgready_state=2) for _ in range(n))


async def test_schedule_upload_executes_and_expires(rig):
    start = pd.Timestamp("2024-06-10T10:00:00Z")
    sch = Schedule(7, start, 900, (*_slots(2, -3.0), *_slots(2, 4.0)))
    async with rig.client() as c:
        state = await c.upload_schedule(sch)
        assert state.status == SchedStatus.ACTIVE and state.active_valid_until == sch.valid_until
        st = await c.read_status()
        assert st.control_state == ControlState.SCHEDULE
        assert (await c.read_measurements()).battery_applied_kw == -3.0
        rig.clock.advance(1800 + 5)
        meas = await c.read_measurements()
        assert meas.battery_applied_kw == 4.0
        assert meas.source_of_control["battery"] == Layer.SCHEDULE
        assert (await c.read_schedule_state()).active_slot_index == 2
        rig.clock.advance(1800)
        assert (await c.read_schedule_state()).status == SchedStatus.EXPIRED
        assert (await c.read_status()).control_state == ControlState.FALLBACK


async def test_schedule_needs_commit_and_valid_crc(rig):
    start = pd.Timestamp("2024-06-10T10:00:00Z")
    sch = Schedule(9, start, 900, _slots(96, -1.0))
    regs = schedule_registers(sch)
    async with rig.client() as c:
        header = [9, *m.encode(m.SCHEDULE_HEADER, {"sched_start": int(start.timestamp())})[1:3],
                  900, 96, m.crc16_modbus(regs) ^ 1]  # fmt: skip
        await c.write_raw(2000, header)
        for off in range(0, len(regs), 120):
            await c.write_raw(2100 + off, regs[off : off + 120])
        assert (await c.read_schedule_state()).status == SchedStatus.NONE  # staged only
        await c.write_raw(2006, [9])
        assert (await c.read_schedule_state()).status == SchedStatus.REJECTED_CRC
        assert (await c.read_status()).control_state == ControlState.LOCAL
        with pytest.raises(BoxRejected):  # commit value must equal the staged id
            await c.write_raw(2006, [10])


async def test_schedule_time_and_range_rejection(rig):
    async with rig.client() as c:
        expired = Schedule(3, pd.Timestamp("2024-06-09T00:00:00Z"), 900, _slots(4, 1.0))
        with pytest.raises(ScheduleRejected) as err:
            await c.upload_schedule(expired)
        assert err.value.code == SchedStatus.REJECTED_TIME
        misaligned = Schedule(4, pd.Timestamp("2024-06-10T10:05:00Z"), 900, _slots(4, 1.0))
        with pytest.raises(ScheduleRejected) as err:
            await c.upload_schedule(misaligned)
        assert err.value.code == SchedStatus.REJECTED_RANGE
        rig.box.clock_valid = False
        ok = Schedule(5, pd.Timestamp("2024-06-10T10:00:00Z"), 900, _slots(4, 1.0))
        with pytest.raises(ScheduleRejected) as err:
            await c.upload_schedule(ok)
        assert err.value.code == SchedStatus.REJECTED_TIME


async def test_clamping_visible(rig):
    async with rig.client() as c:
        st = await c.write_setpoints(
            Setpoints(
                battery_kw=20.0,
                battery_mode=BatteryMode.SETPOINT,
                wallbox_current_a=32,
                hp_power_budget_kw=9.0,
            )
        )
        assert st.last_status == LastStatus.CLAMPED
        meas = await c.read_measurements()
        assert meas.battery_applied_kw == 5.0  # battery discharge limit
        assert meas.wallbox_applied_a == 16.0  # wallbox installed at 16 A


async def test_precedence_grid_operator_over_live_over_schedule(rig):
    start = pd.Timestamp("2024-06-10T10:00:00Z")
    slot = ScheduleSlot(battery_kw=-1.0, wallbox_current_a=16, hp_sgready_state=4)
    sch = Schedule(11, start, 900, (slot,) * 8)
    async with rig.client() as c:
        await c.upload_schedule(sch)
        meas = await c.read_measurements()
        assert meas.source_of_control == {
            "battery": Layer.SCHEDULE, "wallbox": Layer.SCHEDULE, "hp": Layer.SCHEDULE
        }  # fmt: skip
        # live commands battery and wallbox only: the HP stays on the schedule
        await c.write_setpoints(
            Setpoints(battery_kw=-4.0, battery_mode=BatteryMode.SETPOINT, wallbox_current_a=12)
        )
        meas = await c.read_measurements()
        assert meas.battery_applied_kw == -4.0 and meas.wallbox_applied_a == 12
        assert meas.source_of_control["hp"] == Layer.SCHEDULE
        assert meas.hp_sgready_applied == 4
        # §14a dimming to 4.2 kW and a utility lock override live and schedule
        rig.box.set_external_limits(consumption_limit_kw=4.2, hp_utility_lock=True)
        rig.clock.advance(15)
        await c.heartbeat()
        st = await c.read_status()
        assert st.external_consumption_limit_kw == 4.2
        assert st.last_status == LastStatus.GRID_OPERATOR
        meas = await c.read_measurements()
        assert meas.wallbox_applied_a == 6.0  # floor(4200 W / (3 x 230 V))
        assert meas.hp_sgready_applied == 1
        assert meas.source_of_control == {
            "battery": Layer.LIVE, "wallbox": Layer.GRID_OPERATOR, "hp": Layer.GRID_OPERATOR
        }  # fmt: skip
        assert (meas.wallbox_kw or 0) + (meas.hp_kw or 0) <= 4.2 + 1e-9


async def test_second_controller_refused(rig):
    async with rig.client(controller_id=1) as c1:
        await c1.write_setpoints(Setpoints(battery_kw=1.0, battery_mode=BatteryMode.SETPOINT))
        with pytest.raises(BoxBusy):
            async with rig.client(controller_id=2, attempts=1) as c2:
                pass
        async with rig.client() as anonymous:
            assert (await anonymous.read_status()).controller_id == 1  # reads are fine
            with pytest.raises(BoxBusy):
                await anonymous.write_raw(1010, [77])
        await c1.release()
    async with rig.client(controller_id=2) as c2:
        assert (await c2.read_status()).controller_id == 2


async def test_reconnect_after_box_restart(rig):
    async with rig.client(attempts=6) as c:
        await c.write_setpoints(Setpoints(battery_kw=1.0, battery_mode=BatteryMode.SETPOINT))
        await rig.sim.restart()
        st = await c.read_status()  # the old connection is gone; the client reconnects
        assert c.reconnects >= 1
        assert st.control_state == ControlState.LOCAL  # live setpoints are never resumed
        assert (await c.read_measurements()).source_of_control["battery"] == Layer.LOCAL
        st = await c.write_setpoints(Setpoints(battery_kw=2.0, battery_mode=BatteryMode.SETPOINT))
        assert st.control_state == ControlState.REMOTE_LIVE


async def test_schedule_survives_reboot(rig):
    sch = Schedule(21, pd.Timestamp("2024-06-10T10:00:00Z"), 900, _slots(8, -2.0))
    async with rig.client() as c:
        await c.upload_schedule(sch)
        await rig.sim.restart()
        assert (await c.read_status()).control_state == ControlState.SCHEDULE


async def test_unreachable_box_is_a_typed_error_not_a_hang(rig):
    port = rig.sim.port
    await rig.sim.stop()
    c = HeartbeatClient("127.0.0.1", port, timeout_s=0.3, attempts=2)
    with pytest.raises(BoxUnreachable):
        await asyncio.wait_for(c.read_status(), 10)
    await c.close()


async def test_concurrent_callers_share_one_connection(rig):
    async with rig.client() as c:
        results = await asyncio.gather(*(c.read_measurements() for _ in range(20)))
        assert len(results) == 20
        assert c.reconnects == 0


async def test_keeper_task_refreshes_at_timeout_over_three(rig):
    async with rig.client() as c:
        await c.discover()
        seen = set()
        stop = asyncio.Event()
        keeper = asyncio.create_task(c.run_heartbeat(stop, interval_s=0.1))
        for _ in range(8):
            await asyncio.sleep(0.06)
            seen.add((await c.read_status()).ctrl_heartbeat)
        stop.set()
        await keeper
        assert 3 <= len(seen) <= 7  # ~5 beats in 0.48 s, never a burst


async def test_fallback_setpoints_mode_applies_block_3(rig):
    fb = FallbackSetpoints(battery_kw=-1.0, wallbox_current_a=8.0, hp_sgready_state=1)
    async with rig.client() as c:
        await c.set_watchdog_timeout(10)
        await c.set_fallback(FallbackMode.FALLBACK_SETPOINTS, fb)
        await c.write_setpoints(Setpoints(battery_kw=3.0, battery_mode=BatteryMode.SETPOINT))
        rig.clock.advance(11)
        meas = await c.read_measurements()
        assert (await c.read_status()).control_state == ControlState.FALLBACK
        assert (meas.battery_applied_kw, meas.wallbox_applied_a, meas.hp_sgready_applied) == (
            -1.0,
            8.0,
            1,
        )


async def test_feedin_limit_curtails_pv(rig):
    rig.clock.set("2024-06-10T11:00:00Z")  # midday, 8 kWp
    async with rig.client() as c:
        await c.set_watchdog_timeout(3600)
        await c.write_setpoints(
            Setpoints(
                battery_kw=0.0,
                battery_mode=BatteryMode.SETPOINT,
                wallbox_current_a=0,
                hp_sgready_state=1,
            )
        )
        rig.clock.advance(60)
        free = await c.read_measurements()
        assert free.grid_kw < -0.8  # exporting without a limit (a cloudy hour)
        rig.box.set_external_limits(feedin_limit_kw=0.2)
        rig.clock.advance(60)
        capped = await c.read_measurements()
        assert capped.grid_kw == pytest.approx(-0.2, abs=0.002)
        assert capped.pv_kw < free.pv_kw


async def test_box_heartbeat_and_invalid_clock(rig):
    async with rig.client() as c:
        first = await c.read_status()
        rig.clock.advance(42)
        second = await c.read_status()
        assert second.box_heartbeat - first.box_heartbeat == 42
        rig.box.clock_valid = False
        assert (await c.read_status()).box_time is None


async def test_running_box_helper_for_other_packages():
    from simulation.box_sim import running_box

    async with running_box("2024-01-09T06:00:00Z", days=1, load="uci") as sim:
        c = HeartbeatClient("127.0.0.1", sim.port, clock=sim.box.clock)
        assert (await c.discover()).magic == "ESI1"
        sim.box.clock.advance(3600)
        meas = await c.read_measurements()
        await c.close()
    assert meas.time == pd.Timestamp("2024-01-09T07:00:00Z")
    assert meas.hp_kw is not None and meas.house_load_kw > 0


async def test_retried_setpoint_frame_is_applied_once(rig):
    """A frame sent again after a lost reply, even after a newer one, changes nothing."""
    first = Setpoints(battery_kw=1.0, battery_mode=BatteryMode.SETPOINT)
    newer = Setpoints(battery_kw=-3.0, battery_mode=BatteryMode.SETPOINT)
    async with rig.client() as c:
        await c.write_setpoints(first)
        raw = await c.read_raw(m.LIVE.base, m.LIVE.length)
        _, seq = await c.read_setpoints()
        await c.write_raw(m.LIVE.base, raw)  # the same frame again
        assert (await c.read_status()).applied_seq == seq
        await c.write_setpoints(newer)
        applied = (await c.read_status()).applied_seq
        assert applied != seq
        await c.write_raw(m.LIVE.base, raw)  # the old frame arrives late
        assert (await c.read_status()).applied_seq == applied
        rig.clock.advance(30)
        assert (await c.read_measurements()).battery_applied_kw == -3.0
