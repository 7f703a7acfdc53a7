"""The Heartbeat box register map ("ESI v1") as data, and the one codec that reads and writes it.

Every register of the map is a :class:`Field` (name, 0-based address, type, access). Blocks
group the fields that are read or written together. :func:`encode` and :func:`decode` turn a
block into registers and back, using pymodbus' own ``convert_to_registers`` /
``convert_from_registers`` (big-endian word order). Values here are raw wire units (W, mA,
permille, UNIX s); the client converts them to kW / A / SOC 0-1 at the edge.

Sentinels: an ``int32`` of ``0x80000000`` and a nullable ``uint16`` of ``0xFFFF`` decode to
``None`` ("no command / not available"), and ``None`` encodes to them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pymodbus.client.mixin import ModbusClientMixin

DT = ModbusClientMixin.DATATYPE

MAGIC = "ESI1"
MAGIC_U32 = int.from_bytes(MAGIC.encode("ascii"), "big")
VERSION_MAJOR = 1
VERSION_MINOR = 1
#: Fields a box reports from ESI v1.1 on (registers reserved, reading 0, in a v1.0 box).
V1_1_FIELDS = ("ev_soc_permille", "ev_session_energy_wh", "hp_store_temp_mdegc")
INT32_NONE = -(2**31)
UINT16_NONE = 0xFFFF
MAX_SLOTS = 192
SLOT_REGS = 6
SLOT_BASE = 2100
MAX_WRITE_REGS = 120


class Kind(enum.Enum):
    """Wire type of a field."""

    U16 = "uint16"
    I32 = "int32"
    U32 = "uint32"

    @property
    def width(self) -> int:
        """Number of 16-bit registers."""
        return 1 if self is Kind.U16 else 2


@dataclass(frozen=True)
class Field:
    """One register field of the map.

    Parameters
    ----------
    name : str
        Map name, e.g. ``battery_power_w``.
    addr : int
        0-based first register address.
    kind : Kind
        Wire type.
    writable : bool
        True for RW fields.
    nullable : bool
        True if the sentinel (``0x80000000`` / ``0xFFFF``) means "no command / not available".
    """

    name: str
    addr: int
    kind: Kind
    writable: bool = False
    nullable: bool = False

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.addr + self.kind.width


@dataclass(frozen=True)
class Block:
    """A contiguous range of registers with named fields."""

    name: str
    base: int
    length: int
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        """The field called ``name`` (KeyError names it if missing)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name}: no field {name!r}")


U16, I32, U32 = Kind.U16, Kind.I32, Kind.U32

IDENT = Block(
    "identification",
    1000,
    10,
    (
        Field("magic", 1000, U32),
        Field("version_major", 1002, U16),
        Field("version_minor", 1003, U16),
        Field("map_length", 1004, U16),
        Field("capabilities", 1005, U16),
    ),
)

SESSION = Block(
    "session",
    1010,
    20,
    (
        Field("ctrl_heartbeat", 1010, U16, writable=True),
        Field("watchdog_timeout_s", 1011, U16, writable=True),
        Field("watchdog_remaining_s", 1012, U16),
        Field("control_state", 1013, U16),
        Field("fallback_mode", 1014, U16, writable=True),
        Field("controller_id", 1015, U16, writable=True),
        Field("box_heartbeat", 1016, U32),
        Field("box_time", 1018, U32),
        Field("applied_seq", 1020, U16),
        Field("last_status", 1021, U16),
        Field("external_limits", 1022, U16),
        Field("external_consumption_limit_w", 1023, I32, nullable=True),
        Field("external_feedin_limit_w", 1025, I32, nullable=True),
    ),
)

LIVE = Block(
    "live_setpoints",
    1030,
    12,
    (
        Field("battery_power_w", 1030, I32, writable=True, nullable=True),
        Field("battery_mode", 1032, U16, writable=True),
        Field("battery_soc_min_permille", 1033, U16, writable=True, nullable=True),
        Field("battery_soc_max_permille", 1034, U16, writable=True, nullable=True),
        Field("wallbox_current_ma", 1035, U16, writable=True, nullable=True),
        Field("wallbox_phases", 1036, U16, writable=True),
        Field("hp_sgready_state", 1037, U16, writable=True),
        Field("hp_power_budget_w", 1038, U16, writable=True, nullable=True),
        Field("grid_import_limit_w", 1039, I32, writable=True, nullable=True),
        Field("command_seq", 1041, U16, writable=True),
    ),
)

FALLBACK = Block(
    "fallback_setpoints",
    1050,
    5,
    (
        Field("fb_battery_power_w", 1050, I32, writable=True, nullable=True),
        Field("fb_wallbox_current_ma", 1052, U16, writable=True, nullable=True),
        Field("fb_hp_sgready_state", 1053, U16, writable=True),
        Field("fb_valid", 1054, U16, writable=True),
    ),
)

MEASUREMENTS = Block(
    "measurements",
    1100,
    50,
    (
        Field("meas_time", 1100, U32),
        Field("pv_power_w", 1102, I32, nullable=True),
        Field("grid_power_w", 1104, I32, nullable=True),
        Field("battery_power_w", 1106, I32, nullable=True),
        Field("battery_soc_permille", 1108, U16, nullable=True),
        Field("house_load_w", 1109, I32, nullable=True),
        Field("wallbox_power_w", 1111, I32, nullable=True),
        Field("wallbox_state", 1113, U16),
        Field("wallbox_phases_active", 1114, U16),
        Field("hp_power_w", 1115, I32, nullable=True),
        Field("hp_sgready_applied", 1117, U16),
        Field("battery_power_applied_w", 1118, I32, nullable=True),
        Field("wallbox_current_applied_ma", 1120, U16, nullable=True),
        Field("source_of_control", 1121, U16),
        Field("ev_soc_permille", 1122, U16, nullable=True),
        Field("ev_session_energy_wh", 1123, I32, nullable=True),
        Field("hp_store_temp_mdegc", 1125, I32, nullable=True),
    ),
)

SCHEDULE_HEADER = Block(
    "schedule_header",
    2000,
    12,
    (
        Field("sched_id", 2000, U16, writable=True),
        Field("sched_start", 2001, U32, writable=True),
        Field("slot_len_s", 2003, U16, writable=True),
        Field("slot_count", 2004, U16, writable=True),
        Field("sched_crc16", 2005, U16, writable=True),
        Field("sched_commit", 2006, U16, writable=True),
        Field("active_sched_id", 2007, U16),
        Field("active_valid_until", 2008, U32),
        Field("active_slot_index", 2010, U16, nullable=True),
        Field("sched_status", 2011, U16),
    ),
)

SLOT = Block(
    "schedule_slot",
    0,
    SLOT_REGS,
    (
        Field("battery_power_w", 0, I32, writable=True),
        Field("wallbox_current_ma", 2, U16, writable=True),
        Field("hp_sgready_state", 3, U16, writable=True),
        Field("hp_power_budget_w", 4, U16, writable=True, nullable=True),
        Field("flags", 5, U16, writable=True),
    ),
)

SLOT_TABLE = Block("schedule_slots", SLOT_BASE, MAX_SLOTS * SLOT_REGS, ())

BLOCKS: tuple[Block, ...] = (IDENT, SESSION, LIVE, FALLBACK, MEASUREMENTS, SCHEDULE_HEADER)
MAP_LENGTH = sum(b.length for b in (*BLOCKS, SLOT_TABLE))
ALL_FIELDS: tuple[Field, ...] = tuple(f for b in BLOCKS for f in b.fields)

_DT = {Kind.U16: DT.UINT16, Kind.I32: DT.INT32, Kind.U32: DT.UINT32}


def _field_registers(f: Field, value: int | None) -> list[int]:
    if value is None:
        if f.kind is Kind.I32:
            value = INT32_NONE
        elif f.kind is Kind.U16 and f.nullable:
            value = UINT16_NONE
        else:
            raise ValueError(f"{f.name}: None not allowed (field is not nullable)")
    return ModbusClientMixin.convert_to_registers(int(value), _DT[f.kind], word_order="big")


def _field_value(f: Field, regs: Sequence[int]) -> int | None:
    raw = ModbusClientMixin.convert_from_registers(list(regs), _DT[f.kind], word_order="big")
    assert isinstance(raw, int)
    if f.kind is Kind.I32 and raw == INT32_NONE:
        return None
    if f.kind is Kind.U16 and f.nullable and raw == UINT16_NONE:
        return None
    return raw


def encode(block: Block, values: Mapping[str, int | None]) -> list[int]:
    """Registers of ``block`` from raw field values (missing fields encode as 0).

    Parameters
    ----------
    block : Block
        The block layout.
    values : Mapping[str, int | None]
        Raw wire values by field name; ``None`` encodes the sentinel.

    Returns
    -------
    list[int]
        ``block.length`` registers.
    """
    regs = [0] * block.length
    unknown = set(values) - {f.name for f in block.fields}
    if unknown:
        raise KeyError(f"{block.name}: unknown fields {sorted(unknown)}")
    for f in block.fields:
        if f.name in values:
            start = f.addr - block.base
            try:
                regs[start : start + f.kind.width] = _field_registers(f, values[f.name])
            except Exception as exc:  # struct.error for out-of-range ints
                raise ValueError(f"{f.name}: cannot encode {values[f.name]!r} ({exc})") from exc
    return regs


def decode(block: Block, regs: Sequence[int]) -> dict[str, int | None]:
    """Raw field values of ``block`` from its registers (sentinels decode to ``None``)."""
    if len(regs) < block.length:
        raise ValueError(f"{block.name}: need {block.length} registers, got {len(regs)}")
    out: dict[str, int | None] = {}
    for f in block.fields:
        start = f.addr - block.base
        out[f.name] = _field_value(f, regs[start : start + f.kind.width])
    return out


def split_int32(f: Field, start: int, count: int) -> bool:
    """True if the write range ``[start, start + count)`` covers only one word of ``f``."""
    if f.kind.width == 1:
        return False
    end = start + count
    covers_first = start <= f.addr < end
    covers_second = start <= f.addr + 1 < end
    return covers_first != covers_second


def crc16_modbus(registers: Sequence[int]) -> int:
    """CRC-16/MODBUS over registers sent big-endian (poly 0xA001 reflected, init 0xFFFF).

    The check value of the ASCII bytes ``b"123456789"`` is ``0x4B37``. Registers are fed as
    two bytes each, high byte first (the order they travel on the wire).
    """
    return crc16_modbus_bytes(b"".join(int(r).to_bytes(2, "big") for r in registers))


def crc16_modbus_bytes(data: bytes) -> int:
    """CRC-16/MODBUS of raw bytes (reflected poly 0xA001, init 0xFFFF, no final xor)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc
