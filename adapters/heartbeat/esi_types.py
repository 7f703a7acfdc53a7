"""Typed commands and readings of the Heartbeat box, in project units (kW, A, SOC 0-1).

These are what the scheduler builds from an optimizer plan; the client converts them to the
wire units of the register map (W, mA, permille). Sign conventions: battery power
``+`` = discharge, ``-`` = charge; grid power ``+`` = import; PV power >= 0.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from core.timeindex import check_index


class BatteryMode(enum.IntEnum):
    """Register 1032."""

    AUTO = 0
    SETPOINT = 1
    HOLD = 2
    NO_GRID_CHARGE = 3


class ControlState(enum.IntEnum):
    """Register 1013."""

    LOCAL = 0
    REMOTE_LIVE = 1
    SCHEDULE = 2
    FALLBACK = 3


class FallbackMode(enum.IntEnum):
    """Register 1014."""

    SELF_CONSUMPTION = 0
    SAFE_HOLD = 1
    FALLBACK_SETPOINTS = 2


class LastStatus(enum.IntEnum):
    """Register 1021."""

    OK = 0
    CLAMPED = 1
    REJECTED = 2
    GRID_OPERATOR = 3
    DEVICE_OFFLINE = 4


class SchedStatus(enum.IntEnum):
    """Register 2011."""

    NONE = 0
    ACTIVE = 1
    REJECTED_CRC = 2
    REJECTED_RANGE = 3
    REJECTED_TIME = 4
    EXPIRED = 5


class Layer(enum.IntEnum):
    """Which layer is in force for a device (one nibble per device in register 1121)."""

    LOCAL = 0
    LIVE = 1
    SCHEDULE = 2
    FALLBACK = 3
    GRID_OPERATOR = 4


class Capability(enum.IntFlag):
    """Register 1005."""

    BATTERY = 1
    WALLBOX = 2
    WALLBOX_PHASE_SWITCH = 4
    HP_SGREADY = 8
    HP_POWER_BUDGET = 16
    SCHEDULE = 32
    EXTERNAL_14A = 64
    FEEDIN_LIMIT = 128


class ExternalLimit(enum.IntFlag):
    """Register 1022."""

    DIMMING_14A = 1
    FEEDIN_LIMIT = 2
    HP_UTILITY_LOCK = 4


SOURCE_NIBBLES = ("battery", "wallbox", "hp")


def decode_source_of_control(value: int) -> dict[str, Layer]:
    """Layer in force per device from register 1121 (battery bits 0-3, wallbox 4-7, HP 8-11)."""
    return {dev: Layer((value >> (4 * i)) & 0xF) for i, dev in enumerate(SOURCE_NIBBLES)}


def encode_source_of_control(layers: dict[str, Layer]) -> int:
    """Inverse of :func:`decode_source_of_control`."""
    return sum(int(layers[dev]) << (4 * i) for i, dev in enumerate(SOURCE_NIBBLES))


@dataclass(frozen=True)
class Setpoints:
    """One live command for the whole site (register block 2).

    Parameters
    ----------
    battery_kw : float | None
        Battery power [kW], + discharge / - charge; None = no command (local logic).
    battery_mode : BatteryMode
        SETPOINT follows ``battery_kw``; AUTO ignores it.
    battery_soc_min, battery_soc_max : float | None
        Reserve floor / ceiling the box enforces [0-1]; None = box default.
    wallbox_current_a : float | None
        Charging current [A]: 0 = pause, 6..32, None = no command.
    wallbox_phases : int
        0 = no change/auto, 1 or 3.
    hp_sgready_state : int | None
        SG-Ready state 1 block, 2 normal, 3 recommend-on, 4 force-on; None = no command.
    hp_power_budget_kw : float | None
        Electrical power budget for the heat pump [kW]; None = none.
    grid_import_limit_kw : float | None
        Site import cap [kW]; None = none.
    """

    battery_kw: float | None = None
    battery_mode: BatteryMode = BatteryMode.AUTO
    battery_soc_min: float | None = None
    battery_soc_max: float | None = None
    wallbox_current_a: float | None = None
    wallbox_phases: int = 0
    hp_sgready_state: int | None = None
    hp_power_budget_kw: float | None = None
    grid_import_limit_kw: float | None = None


@dataclass(frozen=True)
class FallbackSetpoints:
    """Block 3: used when ``fallback_mode = FALLBACK_SETPOINTS`` (and for SAFE_HOLD's current).

    ``battery_kw`` [kW, + discharge], ``wallbox_current_a`` [A], ``hp_sgready_state`` 1-4.
    """

    battery_kw: float | None = 0.0
    wallbox_current_a: float | None = 6.0
    hp_sgready_state: int | None = 2


@dataclass(frozen=True)
class ScheduleSlot:
    """One slot of a pushed plan (6 registers). None on a device = no command for it."""

    battery_kw: float | None = None
    wallbox_current_a: float | None = None
    hp_sgready_state: int | None = None
    hp_power_budget_kw: float | None = None


@dataclass(frozen=True)
class Schedule:
    """A plan the box executes from its own clock until ``start + len(slots) * slot_len_s``.

    Parameters
    ----------
    schedule_id : int
        1..65535, chosen by the service.
    start : pandas.Timestamp
        tz-aware, aligned to ``slot_len_s``.
    slot_len_s : int
        Slot length [s], e.g. 900.
    slots : tuple[ScheduleSlot, ...]
        1..192 slots.
    """

    schedule_id: int
    start: pd.Timestamp
    slot_len_s: int
    slots: tuple[ScheduleSlot, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("Schedule.start: naive timestamp; use tz-aware UTC")
        if not 1 <= self.schedule_id <= 0xFFFF:
            raise ValueError(f"Schedule.schedule_id: {self.schedule_id} not in 1..65535")
        if not 1 <= len(self.slots) <= 192:
            raise ValueError(f"Schedule.slots: {len(self.slots)} slots, need 1..192")

    @property
    def valid_until(self) -> pd.Timestamp:
        """End of the last slot (UTC)."""
        return self.start + pd.Timedelta(seconds=self.slot_len_s * len(self.slots))

    @classmethod
    def from_slots(
        cls, schedule_id: int, index: pd.DatetimeIndex, slots: Sequence[ScheduleSlot]
    ) -> Schedule:
        """A schedule over a fixed-step UTC index (one slot per index entry)."""
        step = check_index(index, name="schedule index")
        return cls(schedule_id, index[0], int(step.total_seconds()), tuple(slots))


@dataclass(frozen=True)
class BoxInfo:
    """Identification block."""

    magic: str
    version_major: int
    version_minor: int
    map_length: int
    capabilities: Capability


@dataclass(frozen=True)
class Measurement:
    """Measurement and applied-value block in project units.

    Powers in [kW] (battery + discharge, grid + import), SOC [0-1], currents [A], ``time`` UTC.
    A None value means "not available" on the box.
    """

    time: pd.Timestamp
    pv_kw: float | None
    grid_kw: float | None
    battery_kw: float | None
    battery_soc: float | None
    house_load_kw: float | None
    wallbox_kw: float | None
    wallbox_state: int
    wallbox_phases_active: int
    hp_kw: float | None
    hp_sgready_applied: int
    battery_applied_kw: float | None
    wallbox_applied_a: float | None
    source_of_control: dict[str, Layer]
    #: ESI v1.1 (None from a v1.0 box or where the box does not know): the car's SOC [0-1],
    #: AC energy charged since plug-in [kWh], the heat-store temperature [degC].
    ev_soc: float | None = None
    ev_session_kwh: float | None = None
    hp_store_temp_c: float | None = None


@dataclass(frozen=True)
class BoxStatus:
    """Session/watchdog block in project units (limits [kW], times UTC)."""

    ctrl_heartbeat: int
    watchdog_timeout_s: int
    watchdog_remaining_s: int
    control_state: ControlState
    fallback_mode: FallbackMode
    controller_id: int
    box_heartbeat: int
    box_time: pd.Timestamp | None
    applied_seq: int
    last_status: LastStatus
    external_limits: ExternalLimit
    external_consumption_limit_kw: float | None
    external_feedin_limit_kw: float | None


@dataclass(frozen=True)
class ScheduleState:
    """Read-only part of the schedule header."""

    active_schedule_id: int
    active_valid_until: pd.Timestamp | None
    active_slot_index: int | None
    status: SchedStatus
