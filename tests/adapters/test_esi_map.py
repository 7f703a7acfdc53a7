"""The register map as data and its codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.heartbeat import esi_map as m
from adapters.heartbeat.client import raw_to_setpoints, setpoints_to_raw
from adapters.heartbeat.esi_types import BatteryMode, Schedule, ScheduleSlot, Setpoints


def test_crc16_modbus_check_value():
    assert m.crc16_modbus_bytes(b"123456789") == 0x4B37
    assert m.crc16_modbus([0x3132, 0x3334]) == m.crc16_modbus_bytes(b"1234")


def test_magic_and_layout():
    assert m.MAGIC_U32.to_bytes(4, "big") == b"ESI1"
    for block in m.BLOCKS:
        addrs = [a for f in block.fields for a in range(f.addr, f.end)]
        assert len(addrs) == len(set(addrs)), block.name
        assert all(block.base <= a < block.base + block.length for a in addrs), block.name
    assert m.LIVE.field("command_seq").addr == 1041  # commit register is the last one
    assert m.SLOT_BASE + m.MAX_SLOTS * m.SLOT_REGS == 3252


def test_sentinels_decode_to_none():
    regs = m.encode(m.LIVE, {"battery_power_w": None, "wallbox_current_ma": None})
    assert regs[0:2] == [0x8000, 0x0000] and regs[5] == 0xFFFF
    raw = m.decode(m.LIVE, regs)
    assert raw["battery_power_w"] is None and raw["wallbox_current_ma"] is None
    with pytest.raises(ValueError, match="command_seq"):
        m.encode(m.LIVE, {"command_seq": None})
    with pytest.raises(ValueError, match="wallbox_phases"):
        m.encode(m.LIVE, {"wallbox_phases": 70000})


@given(st.integers(-(2**31) + 1, 2**31 - 1), st.integers(0, 0xFFFE))
def test_int32_big_endian_round_trip(power_w, current_ma):
    regs = m.encode(m.LIVE, {"battery_power_w": power_w, "wallbox_current_ma": current_ma})
    assert regs[0] == (power_w >> 16) & 0xFFFF  # high word first
    raw = m.decode(m.LIVE, regs)
    assert raw["battery_power_w"] == power_w and raw["wallbox_current_ma"] == current_ma


def test_split_int32_detection():
    f = m.LIVE.field("battery_power_w")
    assert m.split_int32(f, 1031, 3) and m.split_int32(f, 1028, 3)
    assert not m.split_int32(f, 1030, 2) and not m.split_int32(f, 1032, 5)


def test_setpoints_kw_conversion_round_trip():
    sp = Setpoints(battery_kw=-3.2, battery_mode=BatteryMode.SETPOINT, battery_soc_min=0.15,
                   wallbox_current_a=7.5, wallbox_phases=1, hp_power_budget_kw=2.0)  # fmt: skip
    raw = setpoints_to_raw(sp)
    assert raw["battery_power_w"] == -3200 and raw["wallbox_current_ma"] == 7500
    assert raw["battery_soc_min_permille"] == 150 and raw["hp_sgready_state"] == 0
    assert raw_to_setpoints(raw | {"command_seq": 4}) == (sp, 4)
    with pytest.raises(ValueError, match="battery_kw"):
        setpoints_to_raw(Setpoints(battery_mode=BatteryMode.SETPOINT))
    with pytest.raises(ValueError, match="battery_soc_max"):
        setpoints_to_raw(Setpoints(battery_soc_max=1.2))


def test_schedule_validation():
    import pandas as pd

    with pytest.raises(ValueError, match="naive"):
        Schedule(1, pd.Timestamp("2024-06-10"), 900, (ScheduleSlot(),))
    with pytest.raises(ValueError, match="slots"):
        Schedule(1, pd.Timestamp("2024-06-10", tz="UTC"), 900, (ScheduleSlot(),) * 193)
    idx = pd.date_range("2024-06-10", periods=4, freq="15min", tz="UTC")
    sch = Schedule.from_slots(2, idx, [ScheduleSlot(battery_kw=1.0)] * 4)
    assert sch.slot_len_s == 900 and sch.valid_until == idx[-1] + pd.Timedelta("15min")
