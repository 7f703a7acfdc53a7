"""Async Modbus TCP client for the Heartbeat box (ESI v1 register map).

One :class:`HeartbeatClient` per box: one TCP connection, guarded by an ``asyncio.Lock`` so
concurrent callers never interleave frames. Every operation has a timeout and is retried with
exponential backoff (tenacity) after transport failures, reconnecting first; when the retries
are spent it raises :class:`BoxUnreachable`. Modbus exception replies are not retried: 03
raises :class:`BoxRejected`, 06 :class:`BoxBusy`. A map that is not ESI v1 raises
:class:`BoxMapMismatch`. Nothing here can hang longer than ``attempts x timeout_s`` plus the
backoff.

W -> kW, mA -> A and permille -> 0-1 conversions happen only in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pandas as pd
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from adapters.clock import Clock, SystemClock
from adapters.heartbeat import esi_map as m
from adapters.heartbeat.esi_types import (
    BatteryMode,
    BoxInfo,
    BoxStatus,
    Capability,
    ControlState,
    ExternalLimit,
    FallbackMode,
    FallbackSetpoints,
    LastStatus,
    Measurement,
    SchedStatus,
    Schedule,
    ScheduleSlot,
    ScheduleState,
    Setpoints,
    decode_source_of_control,
)

T = TypeVar("T")


class BoxError(Exception):
    """Base of every error the client raises."""


class BoxUnreachable(BoxError):  # noqa: N818 - names the scheduler reacts to
    """No answer after all retries (connection refused, timeout, box restarting)."""


class BoxRejected(BoxError):  # noqa: N818 - names the scheduler reacts to
    """The box refused a command.

    ``code`` is the Modbus exception code (e.g. 3 ILLEGAL DATA VALUE), or for a command the box
    answered but did not apply, the ``last_status`` / ``sched_status`` value (see ``kind``).
    """

    def __init__(self, code: int, message: str, kind: str = "modbus") -> None:
        super().__init__(f"{message} ({kind} code {code})")
        self.code = code
        self.kind = kind


class ScheduleRejected(BoxRejected):
    """A schedule commit ended in a ``sched_status`` other than ACTIVE (``code``)."""


class BoxBusy(BoxError):  # noqa: N818 - names the scheduler reacts to
    """Exception 06: another controller holds the single-writer lock."""


class BoxMapMismatch(BoxError):  # noqa: N818 - names the scheduler reacts to
    """The device is not an ESI v1 box (magic, major version or capabilities)."""


NO_CAPABILITIES = Capability(0)
_TRANSPORT_ERRORS = (ModbusException, OSError, TimeoutError, asyncio.TimeoutError)


class HeartbeatClient:
    """Client of one Heartbeat box.

    Parameters
    ----------
    host, port : str, int
        Box address.
    device_id : int
        Modbus unit id (default 1).
    controller_id : int, optional
        If set, written to ``controller_id`` on every (re)connect to hold the single-writer lock.
    timeout_s : float
        Per-request timeout [s].
    attempts : int
        Attempts per operation (transport failures only) before :class:`BoxUnreachable`.
    clock : Clock, optional
        Time source for the heartbeat rate limit (tests pass the box's simulated clock).
    """

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        device_id: int = 1,
        controller_id: int | None = None,
        timeout_s: float = 2.0,
        attempts: int = 4,
        backoff_s: float = 0.05,
        backoff_max_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self.host, self.port, self.device_id = host, port, device_id
        self.controller_id = controller_id
        self.timeout_s, self.attempts = timeout_s, attempts
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.clock = clock or SystemClock()
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._hb_value = 0
        self._hb_sent_at: float | None = None
        self._hb_known = False  # _hb_value read from this connection's box
        self._seq: int | None = None
        self.watchdog_timeout_s = 60
        #: The box's ESI minor version (1: it reports EV SOC, session energy, store
        #: temperature); read by :meth:`discover` or at the first measurement read.
        self.esi_minor: int | None = None
        self.reconnects = 0

    async def __aenter__(self) -> HeartbeatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ transport
    async def connect(self) -> None:
        """Open the connection (with retries) and claim the lock if ``controller_id`` is set."""
        await self._run(lambda c: _noop())

    async def close(self) -> None:
        """Close the connection."""
        async with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def _ensure_connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:
            self._client.close()
            self.reconnects += 1
        client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0
        )
        self._client = client
        if not await asyncio.wait_for(client.connect(), self.timeout_s):
            raise ConnectionError(f"cannot connect to {self.host}:{self.port}")
        # a new connection may face a rebooted box: resync heartbeat and command_seq
        self._hb_sent_at, self._seq, self._hb_known = None, None, False
        if self.controller_id is not None:
            await self._write(client, 1015, [self.controller_id])
        return client

    async def _run(self, op: Callable[[AsyncModbusTcpClient], Awaitable[T]]) -> T:
        """Run ``op`` under the connection lock with timeout, reconnect and backoff."""
        async with self._lock:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.attempts),
                    wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_max_s),
                    retry=retry_if_exception_type(_TRANSPORT_ERRORS),
                    reraise=False,
                ):
                    with attempt:
                        try:
                            client = await self._ensure_connected()
                            return await asyncio.wait_for(op(client), self.timeout_s * 2)
                        except _TRANSPORT_ERRORS:
                            if self._client is not None:
                                self._client.close()
                            raise
            except RetryError as exc:
                cause = exc.last_attempt.exception()
                raise BoxUnreachable(
                    f"{self.host}:{self.port} unreachable after {self.attempts} attempts: {cause}"
                ) from cause
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read(self, client: AsyncModbusTcpClient, address: int, count: int) -> list[int]:
        rr = await client.read_holding_registers(address, count=count, device_id=self.device_id)
        _check(rr, f"read {address}+{count}")
        return list(rr.registers)

    async def _read_input(
        self, client: AsyncModbusTcpClient, address: int, count: int
    ) -> list[int]:
        rr = await client.read_input_registers(address, count=count, device_id=self.device_id)
        _check(rr, f"read input {address}+{count}")
        return list(rr.registers)

    async def _write(self, client: AsyncModbusTcpClient, address: int, regs: list[int]) -> None:
        rr = await client.write_registers(address, regs, device_id=self.device_id)
        _check(rr, f"write {address}+{len(regs)}")

    async def read_raw(self, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers from ``address`` (diagnostics, tests)."""
        return await self._run(lambda c: self._read(c, address, count))

    async def write_raw(self, address: int, registers: list[int]) -> None:
        """One FC16 write of raw registers (diagnostics, tests)."""
        await self._run(lambda c: self._write(c, address, list(registers)))

    async def _read_block(self, block: m.Block) -> dict[str, int | None]:
        return m.decode(block, await self.read_raw(block.base, block.length))

    # ------------------------------------------------------------------ identification
    async def discover(self, required: Capability = NO_CAPABILITIES) -> BoxInfo:
        """Read block 0; raise :class:`BoxMapMismatch` unless it is ESI v1 with ``required``."""
        raw = await self._read_block(m.IDENT)
        magic_u32 = raw["magic"] or 0
        magic = magic_u32.to_bytes(4, "big").decode("ascii", errors="replace")
        if magic != m.MAGIC or raw["version_major"] != m.VERSION_MAJOR:
            raise BoxMapMismatch(f"magic {magic!r} v{raw['version_major']}, expected ESI1 v1")
        caps = Capability(raw["capabilities"] or 0)
        self.esi_minor = raw["version_minor"] or 0
        if required & ~caps:
            raise BoxMapMismatch(f"capabilities {caps!r} lack {required & ~caps!r}")
        status = await self.read_status()
        self.watchdog_timeout_s = status.watchdog_timeout_s
        return BoxInfo(magic, raw["version_major"] or 0, raw["version_minor"] or 0,
                       raw["map_length"] or 0, caps)  # fmt: skip

    # ------------------------------------------------------------------ reads
    async def read_status(self) -> BoxStatus:
        """Session/watchdog block: control state, applied_seq, last_status, external limits."""
        s = await self._read_block(m.SESSION)
        if self._hb_sent_at is None:
            self._hb_value, self._hb_known = s["ctrl_heartbeat"] or 0, True
        self.watchdog_timeout_s = s["watchdog_timeout_s"] or self.watchdog_timeout_s
        return BoxStatus(
            ctrl_heartbeat=s["ctrl_heartbeat"] or 0,
            watchdog_timeout_s=s["watchdog_timeout_s"] or 0,
            watchdog_remaining_s=s["watchdog_remaining_s"] or 0,
            control_state=ControlState(s["control_state"] or 0),
            fallback_mode=FallbackMode(s["fallback_mode"] or 0),
            controller_id=s["controller_id"] or 0,
            box_heartbeat=s["box_heartbeat"] or 0,
            box_time=_ts(s["box_time"]),
            applied_seq=s["applied_seq"] or 0,
            last_status=LastStatus(s["last_status"] or 0),
            external_limits=ExternalLimit(s["external_limits"] or 0),
            external_consumption_limit_kw=_kw(s["external_consumption_limit_w"]),
            external_feedin_limit_kw=_kw(s["external_feedin_limit_w"]),
        )

    async def read_measurements(self, input_registers: bool = False) -> Measurement:
        """Measurement and applied-value block [kW, SOC 0-1, A] (FC3, or FC4 mirror)."""
        if input_registers:
            b = m.MEASUREMENTS
            regs = await self._run(lambda c: self._read_input(c, b.base, b.length))
            r = m.decode(b, regs)
        else:
            r = await self._read_block(m.MEASUREMENTS)
        soc = r["battery_soc_permille"]
        return Measurement(
            time=_ts(r["meas_time"]) or pd.Timestamp(0, tz="UTC"),
            pv_kw=_kw(r["pv_power_w"]),
            grid_kw=_kw(r["grid_power_w"]),
            battery_kw=_kw(r["battery_power_w"]),
            battery_soc=None if soc is None else soc / 1000,
            house_load_kw=_kw(r["house_load_w"]),
            wallbox_kw=_kw(r["wallbox_power_w"]),
            wallbox_state=r["wallbox_state"] or 0,
            wallbox_phases_active=r["wallbox_phases_active"] or 0,
            hp_kw=_kw(r["hp_power_w"]),
            hp_sgready_applied=r["hp_sgready_applied"] or 0,
            battery_applied_kw=_kw(r["battery_power_applied_w"]),
            wallbox_applied_a=_kw(r["wallbox_current_applied_ma"]),
            source_of_control=decode_source_of_control(r["source_of_control"] or 0),
            **await self._v1_1(r),
        )

    async def _v1_1(self, r: dict[str, int | None]) -> dict[str, float | None]:
        """The ESI v1.1 measurements, or none from a v1.0 box (its registers are reserved)."""
        if self.esi_minor is None:
            self.esi_minor = (await self._read_block(m.IDENT))["version_minor"] or 0
        if self.esi_minor < 1:
            return {}
        soc, wh, mdegc = (r[name] for name in m.V1_1_FIELDS)
        return {
            "ev_soc": None if soc is None else soc / 1000,
            "ev_session_kwh": None if wh is None else wh / 1000,
            "hp_store_temp_c": None if mdegc is None else mdegc / 1000,
        }

    async def read_setpoints(self) -> tuple[Setpoints, int]:
        """The live block as it stands in the registers, and its ``command_seq``."""
        return raw_to_setpoints(await self._read_block(m.LIVE))

    async def read_fallback(self) -> FallbackSetpoints | None:
        """Block 3, or None if ``fb_valid`` is 0."""
        r = await self._read_block(m.FALLBACK)
        if not r["fb_valid"]:
            return None
        return FallbackSetpoints(
            battery_kw=_kw(r["fb_battery_power_w"]),
            wallbox_current_a=_kw(r["fb_wallbox_current_ma"]),
            hp_sgready_state=r["fb_hp_sgready_state"] or None,
        )

    async def read_schedule_state(self) -> ScheduleState:
        """Active schedule id, valid-until, slot index and ``sched_status``."""
        h = await self._read_block(m.SCHEDULE_HEADER)
        return ScheduleState(
            active_schedule_id=h["active_sched_id"] or 0,
            active_valid_until=_ts(h["active_valid_until"]),
            active_slot_index=h["active_slot_index"],
            status=SchedStatus(h["sched_status"] or 0),
        )

    # ------------------------------------------------------------------ session
    def heartbeat_interval_s(self) -> float:
        """Refresh period [s]: ``watchdog_timeout_s / 3`` (tolerates one lost refresh)."""
        return self.watchdog_timeout_s / 3

    async def heartbeat(self, force: bool = False) -> bool:
        """Write a changed ``ctrl_heartbeat``; skipped (False) if the last is too recent."""
        now = self.clock.now()
        due = self._hb_sent_at is None or now - self._hb_sent_at >= 0.99 * (
            self.heartbeat_interval_s()
        )
        if not (due or force):
            return False
        if self._hb_sent_at is None and not self._hb_known:  # ours must be a change
            await self.read_status()
        value = self._hb_value % 0xFFFF + 1  # 1..65535, wraps to 1
        await self.write_raw(1010, [value])
        self._hb_value, self._hb_sent_at = value, now
        return True

    async def run_heartbeat(self, stop: asyncio.Event, interval_s: float | None = None) -> None:
        """Keeper task: refresh every ``watchdog_timeout_s / 3`` until ``stop`` is set.

        ``interval_s`` overrides the period [s] (only ever shorten it, e.g. in tests).

        Transport errors are swallowed and retried on the next beat: the box's watchdog is
        the safety net, not this loop.
        """
        while not stop.is_set():
            with contextlib.suppress(BoxError):
                await self.heartbeat(force=True)  # the wait below sets the pace
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s or self.heartbeat_interval_s())

    async def release(self) -> None:
        """Give control back to the box (heartbeat 0) and drop the lock."""
        await self.write_raw(1010, [0])
        self._hb_value, self._hb_sent_at = 0, None
        if self.controller_id is not None:
            await self.write_raw(1015, [0])

    async def set_watchdog_timeout(self, seconds: int) -> None:
        """Set ``watchdog_timeout_s`` [s], 10..3600."""
        if not 10 <= seconds <= 3600:
            raise ValueError(f"watchdog_timeout_s: {seconds} not in 10..3600")
        await self.write_raw(1011, [seconds])
        self.watchdog_timeout_s = seconds

    async def set_fallback(
        self, mode: FallbackMode, setpoints: FallbackSetpoints | None = None
    ) -> None:
        """Configure block 3 (if given) and then ``fallback_mode``."""
        if setpoints is not None:
            raw = {
                "fb_battery_power_w": _w(setpoints.battery_kw),
                "fb_wallbox_current_ma": _ma(setpoints.wallbox_current_a, "wallbox_current_a"),
                "fb_hp_sgready_state": setpoints.hp_sgready_state or 0,
                "fb_valid": 1,
            }
            await self.write_raw(m.FALLBACK.base, m.encode(m.FALLBACK, raw))
        await self.write_raw(1014, [int(mode)])

    # ------------------------------------------------------------------ commands
    async def write_setpoints(self, setpoints: Setpoints) -> BoxStatus:
        """Write block 2 in one FC16 with a new ``command_seq`` and confirm ``applied_seq``.

        A due heartbeat is sent first (a fresh heartbeat plus a new command is also what
        takes the box out of FALLBACK).

        Raises
        ------
        BoxRejected
            Exception 03 (structurally invalid), or the box did not apply the command
            (``kind="last_status"``, e.g. watchdog not alive, still in FALLBACK).
        """
        raw = setpoints_to_raw(setpoints)
        await self.heartbeat()
        # after the heartbeat: a reconnect on the way (a box rebooted) resets the sequence
        if self._seq is None:
            self._seq = (await self.read_status()).applied_seq
        seq = self._seq % 0xFFFF + 1
        self._seq = seq
        await self.write_raw(m.LIVE.base, m.encode(m.LIVE, raw | {"command_seq": seq}))
        status = await self.read_status()
        if status.applied_seq != seq:
            raise BoxRejected(
                int(status.last_status),
                f"command_seq {seq} not applied (applied_seq {status.applied_seq}, "
                f"state {status.control_state.name})",
                kind="last_status",
            )
        return status

    async def upload_schedule(self, schedule: Schedule) -> ScheduleState:
        """Stage header and slots (FC16 writes of <= 120 registers), commit, confirm.

        Raises
        ------
        ScheduleRejected
            ``sched_status`` after the commit is not ACTIVE (``code`` = status).
        """
        slot_regs = schedule_registers(schedule)
        header = {
            "sched_id": schedule.schedule_id,
            "sched_start": int(schedule.start.timestamp()),
            "slot_len_s": schedule.slot_len_s,
            "slot_count": len(schedule.slots),
            "sched_crc16": m.crc16_modbus(slot_regs),
        }
        await self.write_raw(m.SCHEDULE_HEADER.base, m.encode(m.SCHEDULE_HEADER, header)[:6])
        for off in range(0, len(slot_regs), m.MAX_WRITE_REGS):
            await self.write_raw(m.SLOT_BASE + off, slot_regs[off : off + m.MAX_WRITE_REGS])
        await self.write_raw(2006, [schedule.schedule_id])
        state = await self.read_schedule_state()
        if state.status != SchedStatus.ACTIVE or state.active_schedule_id != schedule.schedule_id:
            raise ScheduleRejected(
                int(state.status), f"schedule {schedule.schedule_id}: {state.status.name}",
                kind="sched_status",
            )  # fmt: skip
        return state


# ---------------------------------------------------------------------- conversions
def setpoints_to_raw(sp: Setpoints) -> dict[str, int | None]:
    """Block 2 wire values (W, mA, permille) from :class:`Setpoints`; ValueError names fields."""
    if sp.wallbox_phases not in (0, 1, 3):
        raise ValueError(f"wallbox_phases: {sp.wallbox_phases} not in 0, 1, 3")
    if sp.hp_sgready_state is not None and not 1 <= sp.hp_sgready_state <= 4:
        raise ValueError(f"hp_sgready_state: {sp.hp_sgready_state} not in 1..4")
    if sp.battery_mode in (BatteryMode.SETPOINT, BatteryMode.NO_GRID_CHARGE) and (
        sp.battery_kw is None
    ):
        raise ValueError(f"battery_kw: required for battery_mode {sp.battery_mode.name}")
    return {
        "battery_power_w": _w(sp.battery_kw),
        "battery_mode": int(sp.battery_mode),
        "battery_soc_min_permille": _permille(sp.battery_soc_min, "battery_soc_min"),
        "battery_soc_max_permille": _permille(sp.battery_soc_max, "battery_soc_max"),
        "wallbox_current_ma": _ma(sp.wallbox_current_a, "wallbox_current_a"),
        "wallbox_phases": sp.wallbox_phases,
        "hp_sgready_state": sp.hp_sgready_state or 0,
        "hp_power_budget_w": _u16_w(sp.hp_power_budget_kw, "hp_power_budget_kw"),
        "grid_import_limit_w": _w(_nonneg(sp.grid_import_limit_kw, "grid_import_limit_kw")),
    }


def raw_to_setpoints(raw: dict[str, int | None]) -> tuple[Setpoints, int]:
    """Inverse of :func:`setpoints_to_raw`; also returns ``command_seq``."""
    sp = Setpoints(
        battery_kw=_kw(raw["battery_power_w"]),
        battery_mode=BatteryMode(raw["battery_mode"] or 0),
        battery_soc_min=_frac(raw["battery_soc_min_permille"]),
        battery_soc_max=_frac(raw["battery_soc_max_permille"]),
        wallbox_current_a=_kw(raw["wallbox_current_ma"]),
        wallbox_phases=raw["wallbox_phases"] or 0,
        hp_sgready_state=raw["hp_sgready_state"] or None,
        hp_power_budget_kw=_kw(raw["hp_power_budget_w"]),
        grid_import_limit_kw=_kw(raw["grid_import_limit_w"]),
    )
    return sp, raw["command_seq"] or 0


def schedule_registers(schedule: Schedule) -> list[int]:
    """The 6 registers per slot, flags set for devices without a command."""
    regs: list[int] = []
    for i, s in enumerate(schedule.slots):
        flags = (s.battery_kw is None) | (s.wallbox_current_a is None) << 1
        flags |= (s.hp_sgready_state is None) << 2
        try:
            raw = {
                "battery_power_w": _w(s.battery_kw) or 0,
                "wallbox_current_ma": _ma(s.wallbox_current_a, "wallbox_current_a") or 0,
                "hp_sgready_state": s.hp_sgready_state or 0,
                "hp_power_budget_w": _u16_w(s.hp_power_budget_kw, "hp_power_budget_kw"),
                "flags": flags,
            }
            regs += m.encode(m.SLOT, raw)
        except ValueError as exc:
            raise ValueError(f"slot {i}: {exc}") from exc
    return regs


def _check(rr: Any, what: str) -> None:
    if not rr.isError():
        return
    code = int(getattr(rr, "exception_code", 0))
    if code == 6:
        raise BoxBusy(f"{what}: device busy (another controller holds the lock)")
    raise BoxRejected(code, f"{what}: exception {code}")


async def _noop() -> None:
    return None


def _w(kw: float | None) -> int | None:
    return None if kw is None else round(kw * 1000)


def _kw(w: int | None) -> float | None:
    return None if w is None else w / 1000


def _frac(permille: int | None) -> float | None:
    return None if permille is None else permille / 1000


def _ts(unix: int | None) -> pd.Timestamp | None:
    return None if not unix else pd.Timestamp(unix, unit="s", tz="UTC")


def _ma(a: float | None, name: str) -> int | None:
    if a is None:
        return None
    if not (a == 0 or 6 <= a <= 32):
        raise ValueError(f"{name}: {a} A; use 0 (pause) or 6..32 A")
    return round(a * 1000)


def _permille(x: float | None, name: str) -> int | None:
    if x is None:
        return None
    if not 0 <= x <= 1:
        raise ValueError(f"{name}: {x} not in 0..1")
    return round(x * 1000)


def _u16_w(kw: float | None, name: str) -> int | None:
    if kw is None:
        return None
    if not 0 <= kw <= 65.534:
        raise ValueError(f"{name}: {kw} kW not in 0..65.534")
    return round(kw * 1000)


def _nonneg(kw: float | None, name: str) -> float | None:
    if kw is not None and kw < 0:
        raise ValueError(f"{name}: {kw} must be >= 0")
    return kw


__all__ = [
    "BoxBusy",
    "BoxError",
    "BoxMapMismatch",
    "BoxRejected",
    "BoxUnreachable",
    "HeartbeatClient",
    "ScheduleRejected",
    "ScheduleSlot",
    "raw_to_setpoints",
    "schedule_registers",
    "setpoints_to_raw",
]
