"""The Heartbeat box's control logic (ESI v1), independent of the Modbus transport.

:class:`HeartbeatBox` owns the box state (session, watchdog, live setpoints, schedule, lock),
decides which control layer is in force per device, and steps the physical twin on the box
clock. :mod:`simulation.box_sim` puts it behind a pymodbus server: every request calls
:meth:`HeartbeatBox.on_request` with the register image, which validates and applies writes and
refreshes the read-only registers.

Semantics beyond the map's wording (the project's reading, documented in
docs/heartbeat-esi-v1.md): a live battery command exists when ``battery_mode != AUTO``; a
commit while the watchdog is not alive is rejected (``last_status = 2``); a rejected schedule
commit leaves the previously active schedule running; the single-writer lock binds to the
TCP connection that wrote ``controller_id`` and lapses after ``watchdog_timeout_s`` without a
write from its holder.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

from adapters.clock import Clock
from adapters.heartbeat import esi_map as m
from adapters.heartbeat.backlog import BacklogSink, MeasurementBuffer, MinuteRecord
from adapters.heartbeat.esi_types import (
    BatteryMode,
    Capability,
    ControlState,
    ExternalLimit,
    FallbackMode,
    LastStatus,
    Layer,
    SchedStatus,
    encode_source_of_control,
)
from simulation.twin import DeviceCommand, Twin, TwinStep

ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
DEVICE_BUSY = 6
REG_BASE = 1000
REG_END = m.SLOT_BASE + m.MAX_SLOTS * m.SLOT_REGS
MAX_FUTURE_S = 48 * 3600
#: How many applied command sequence numbers the box remembers to recognise retried frames.
RECENT_SEQS = 16
_Raw = dict[str, int | None]
ALL_CAPABILITIES = Capability(0xFF)


class BoxRequestError(Exception):
    """A request the box answers with a Modbus exception ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class BoxConfig:
    """Static configuration of a simulated box."""

    site_id: str = "site-1"
    capabilities: Capability = ALL_CAPABILITIES
    watchdog_timeout_s: int = 60
    #: ESI minor version: 1 reports EV SOC, session energy and store temperature; 0 is a v1.0
    #: box (those registers reserved, reading 0).
    esi_minor: int = m.VERSION_MINOR


@dataclass(frozen=True)
class ActiveSchedule:
    """A committed schedule: raw slot values per slot."""

    sched_id: int
    start: int
    slot_len_s: int
    slots: tuple[dict[str, int | None], ...]

    @property
    def valid_until(self) -> int:
        """End of the last slot [UNIX s]."""
        return self.start + self.slot_len_s * len(self.slots)

    def slot_at(self, t: float) -> int | None:
        """Index of the slot covering ``t`` or None."""
        if self.start <= t < self.valid_until:
            return int((t - self.start) // self.slot_len_s)
        return None


@dataclass
class Persistent:
    """State that survives a reboot (the box's flash)."""

    watchdog_timeout_s: int
    fallback_mode: FallbackMode = FallbackMode.SELF_CONSUMPTION
    fallback: dict[str, int | None] | None = None
    schedule: ActiveSchedule | None = None
    sched_status: SchedStatus = SchedStatus.NONE
    sched_expired: bool = False


@dataclass
class WriterRun:
    """Consecutive writes the lock let through from one TCP connection (one controller).

    ``first``/``last`` number the box's accepted writes (1, 2, ...), so runs order exactly even
    when the clock does not move between requests; ``first_s``/``last_s`` are box times [s].
    """

    peer: object
    controller_id: int
    first: int
    last: int
    first_s: float
    last_s: float
    writes: int = 1
    #: Box time [s] of the run's first heartbeat change (what refreshes the watchdog).
    first_beat_s: float | None = None


@dataclass(frozen=True)
class Resolution:
    """Outcome of precedence for one instant."""

    command: DeviceCommand
    layers: dict[str, Layer]
    battery_applied_w: int | None
    wallbox_applied_ma: int
    clamped: bool
    overridden: bool


class HeartbeatBox:
    """One simulated Heartbeat box: ESI v1 logic + physical twin + measurement buffer."""

    def __init__(
        self,
        twin: Twin,
        clock: Clock,
        config: BoxConfig | None = None,
        sink: BacklogSink | None = None,
    ) -> None:
        self.twin = twin
        self.clock = clock
        self.config = config or BoxConfig()
        self.sink = sink
        self.buffer = MeasurementBuffer(self.config.site_id)
        self.persistent = Persistent(self.config.watchdog_timeout_s)
        self.clock_valid = True
        self.external_limits = ExternalLimit(0)
        self.external_consumption_limit_w: int | None = None
        self.external_feedin_limit_w: int | None = None
        self.steps: list[TwinStep] = []
        self.keep_steps = False
        self._t = clock.now()
        self._minute: list[TwinStep] = []
        #: Who wrote, in order: a new run whenever another connection writes (see
        #: :func:`interleaved_writers`); kept across reboots, like the counters below.
        self.writer_runs: list[WriterRun] = []
        self.accepted_writes = 0
        #: Writes answered with exception 06 (another connection holds the lock).
        self.busy_rejections = 0
        #: Times the watchdog expired with live setpoints in force (the box went to FALLBACK).
        self.fallback_entries = 0
        #: Box times [s] of every heartbeat change and of every watchdog expiry (the heartbeat
        #: history a fleet test reads each box's gaps from).
        self.beat_times: list[float] = []
        self.fallback_times: list[float] = []
        #: Box times [s] of the schedules committed (one per control cycle that reached it).
        self.schedule_commits: list[float] = []
        self.reboot()

    # ------------------------------------------------------------------ lifecycle
    def reboot(self) -> None:
        """Restart: live setpoints are never resumed; a valid schedule may resume."""
        self.boot_time = self.clock.now()
        self.hb_value = 0
        self.hb_changed_at: float | None = None
        self.live: dict[str, int | None] | None = None
        self.applied_seq = 0
        #: The last sequence numbers applied since boot; a frame carrying one is a duplicate.
        self.recent_seqs: deque[int] = deque(maxlen=RECENT_SEQS)
        self.commit_rejected = False
        self.latched = False
        self.latch_seq = 0
        self.pending: dict[str, int | None] | None = None
        self.pending_hb = False
        self.lock_id = 0
        self.lock_peer: object = None
        self.lock_until = 0.0
        self.reset_live_registers = True

    def set_external_limits(
        self,
        consumption_limit_kw: float | None = None,
        feedin_limit_kw: float | None = None,
        hp_utility_lock: bool = False,
    ) -> None:
        """Grid-operator input: §14a consumption limit [kW], feed-in limit [kW], HP lock."""
        flags = ExternalLimit(0)
        if consumption_limit_kw is not None:
            flags |= ExternalLimit.DIMMING_14A
        if feedin_limit_kw is not None:
            flags |= ExternalLimit.FEEDIN_LIMIT
        if hp_utility_lock:
            flags |= ExternalLimit.HP_UTILITY_LOCK
        self.external_limits = flags
        self.external_consumption_limit_w = _w(consumption_limit_kw)
        self.external_feedin_limit_w = _w(feedin_limit_kw)

    # ------------------------------------------------------------------ state queries
    def watchdog_alive(self, now: float) -> bool:
        """A changed heartbeat arrived less than ``watchdog_timeout_s`` ago."""
        return (
            self.hb_changed_at is not None
            and now - self.hb_changed_at < self.persistent.watchdog_timeout_s
        )

    def active_slot(self, now: float) -> dict[str, int | None] | None:
        """Raw values of the schedule slot in force, if the clock is valid."""
        sch = self.persistent.schedule
        if sch is None or not self.clock_valid:
            return None
        i = sch.slot_at(now)
        return None if i is None else sch.slots[i]

    def control_state(self, now: float) -> ControlState:
        """LOCAL, REMOTE_LIVE, SCHEDULE or FALLBACK at ``now``."""
        if self.live is not None:
            return ControlState.REMOTE_LIVE
        if self.active_slot(now) is not None:
            return ControlState.SCHEDULE
        if self.latched or self.persistent.sched_expired:
            return ControlState.FALLBACK
        return ControlState.LOCAL

    # ------------------------------------------------------------------ time
    def tick(self) -> None:
        """Advance the twin and all timers to the clock's now, in steps of at most 60 s."""
        now = self.clock.now()
        while self._t < now:
            end = min(now, (math.floor(self._t / 60) + 1) * 60)
            if self.live is not None and self.hb_changed_at is not None:
                expiry = self.hb_changed_at + self.persistent.watchdog_timeout_s
                if self._t < expiry < end:
                    end = expiry
            self._expire(self._t)
            step = self.twin.step(self._t, end - self._t, self.resolve(self._t).command)
            self._record(step)
            self._t = end
        self._expire(now)

    def _expire(self, now: float) -> None:
        if self.live is not None and not self.watchdog_alive(now):
            self.fallback_entries += 1
            beat = now if self.hb_changed_at is None else self.hb_changed_at
            self.fallback_times.append(beat + self.persistent.watchdog_timeout_s)
            self.live = None
            self.latched = True
            self.latch_seq = self.applied_seq
            self.pending, self.pending_hb = None, False
            self.reset_live_registers = True
        sch = self.persistent.schedule
        if sch is not None and now >= sch.valid_until:
            self.persistent.schedule = None
            self.persistent.sched_status = SchedStatus.EXPIRED
            self.persistent.sched_expired = True
        if self.lock_id and now >= self.lock_until:
            self.lock_id, self.lock_peer = 0, None

    def _record(self, step: TwinStep) -> None:
        if self.keep_steps:
            self.steps.append(step)
        minute = int(step.t // 60) * 60
        if self._minute and int(self._minute[0].t // 60) * 60 != minute:
            self._close_minute()
        self._minute.append(step)
        if step.t + step.dt_s >= minute + 60:
            self._close_minute()

    def _close_minute(self) -> None:
        steps, self._minute = self._minute, []
        total = sum(s.dt_s for s in steps)

        def mean(attr: str) -> float:
            return sum(getattr(s, attr) * s.dt_s for s in steps) / total

        self.buffer.append(
            MinuteRecord(
                t=int(steps[0].t // 60) * 60,
                pv_kw=mean("pv_kw"),
                grid_kw=mean("grid_kw"),
                battery_kw=mean("battery_kw"),
                battery_soc=steps[-1].soc_end,
                house_load_kw=mean("load_kw"),
                wallbox_kw=mean("ev_kw"),
                hp_kw=mean("hp_kw"),
            )
        )

    def upload_backlog(self, batch_size: int = 360) -> int:
        """Try to upload the buffered minutes (oldest first); returns records delivered."""
        return 0 if self.sink is None else self.buffer.flush(self.sink, batch_size)

    # ------------------------------------------------------------------ precedence
    def resolve(self, now: float) -> Resolution:
        """Commands per device after precedence, device limits and grid-operator limits."""
        live, slot = self.live, self.active_slot(now)
        fb = self.control_state(now) == ControlState.FALLBACK
        bat_mode, bat_kw, bat_layer, bat_clamped = self._battery_layer(live, slot, fb)
        cur_a, phases, wb_layer, wb_clamped = self._wallbox_layer(live, slot, fb)
        sg, budget, hp_layer, hp_clamped = self._hp_layer(live, slot, fb)
        layers = {"battery": bat_layer, "wallbox": wb_layer, "hp": hp_layer}
        commanded = {k for k, v in layers.items() if v in (Layer.LIVE, Layer.SCHEDULE)}
        b = self.twin.site.battery
        feedin = self.external_limits & ExternalLimit.FEEDIN_LIMIT
        cmd = DeviceCommand(
            battery_kw=bat_kw,
            battery_mode=bat_mode,
            soc_min=_permille(live, "battery_soc_min_permille", b.soc_min),
            soc_max=_permille(live, "battery_soc_max_permille", b.soc_max),
            wallbox_current_a=cur_a,
            wallbox_phases=phases,
            hp_sgready=sg,
            hp_budget_kw=budget,
            grid_import_limit_kw=_kw(live["grid_import_limit_w"]) if live else None,
            feedin_limit_kw=_kw(self.external_feedin_limit_w) if feedin else None,
        )
        cmd = self._grid_operator(cmd, layers)
        overridden = any(layers[k] == Layer.GRID_OPERATOR for k in commanded)
        applied_bat = round(cmd.battery_kw * 1000) if cmd.battery_mode != BatteryMode.AUTO else None
        clamped = bat_clamped or wb_clamped or hp_clamped
        return Resolution(
            cmd, layers, applied_bat, round(cmd.wallbox_current_a * 1000), clamped, overridden
        )

    def _battery_layer(
        self, live: _Raw | None, slot: _Raw | None, fb: bool
    ) -> tuple[BatteryMode, float, Layer, bool]:
        """Battery mode, power [kW], layer in force, clamped to the inverter limits?"""
        mode, kw, layer = BatteryMode.AUTO, 0.0, Layer.LOCAL
        if live is not None and live["battery_mode"] != BatteryMode.AUTO:
            mode, layer = BatteryMode(live["battery_mode"] or 0), Layer.LIVE
            kw = (live["battery_power_w"] or 0) / 1000
        elif slot is not None and not (slot["flags"] or 0) & 1:
            mode, kw, layer = (
                BatteryMode.SETPOINT,
                (slot["battery_power_w"] or 0) / 1000,
                (Layer.SCHEDULE),
            )
        elif fb:
            mode, kw, layer = self._fallback_battery()
        b = self.twin.site.battery
        limited = min(max(kw, -b.charge_max_kw), b.discharge_max_kw)
        return mode, limited, layer, limited != kw

    def _wallbox_layer(
        self, live: _Raw | None, slot: _Raw | None, fb: bool
    ) -> tuple[float, int, Layer, bool]:
        """Wallbox current [A], phases, layer in force, clamped to the installed maximum?"""
        wb = self.twin.site.wallbox
        cur_a, phases, layer = wb.max_current_a, wb.phases, Layer.LOCAL
        if live is not None and live["wallbox_current_ma"] is not None:
            cur_a, layer = live["wallbox_current_ma"] / 1000, Layer.LIVE
        elif slot is not None and not (slot["flags"] or 0) & 2:
            cur_a, layer = (slot["wallbox_current_ma"] or 0) / 1000, Layer.SCHEDULE
        elif fb:
            cur_a, layer = self._fallback_wallbox(cur_a)
        if live is not None and live["wallbox_phases"] in (1, 3):
            phases = int(live["wallbox_phases"] or 3)
        return min(cur_a, wb.max_current_a), phases, layer, cur_a > wb.max_current_a

    def _hp_layer(
        self, live: _Raw | None, slot: _Raw | None, fb: bool
    ) -> tuple[int, float | None, Layer, bool]:
        """SG-Ready state, power budget [kW], layer in force, budget clamped to the HP?"""
        sg, budget, layer = 2, None, Layer.LOCAL
        if live is not None and (live["hp_sgready_state"] or live["hp_power_budget_w"] is not None):
            sg, layer = live["hp_sgready_state"] or 2, Layer.LIVE
            budget = _kw(live["hp_power_budget_w"])
        elif slot is not None and not (slot["flags"] or 0) & 4:
            sg, layer = slot["hp_sgready_state"] or 2, Layer.SCHEDULE
            budget = _kw(slot["hp_power_budget_w"])
        elif fb:
            sg, layer = self._fallback_hp()
        el_max = self.twin.site.heat_pump.el_max_kw
        if budget is not None and budget > el_max:
            return sg, el_max, layer, True
        return sg, budget, layer, False

    def _fallback_battery(self) -> tuple[BatteryMode, float, Layer]:
        mode, fb = self.persistent.fallback_mode, self.persistent.fallback
        if mode == FallbackMode.SAFE_HOLD:
            return BatteryMode.SETPOINT, 0.0, Layer.FALLBACK
        if mode == FallbackMode.FALLBACK_SETPOINTS and fb and fb["fb_valid"]:
            p = fb["fb_battery_power_w"]
            if p is not None:
                return BatteryMode.SETPOINT, p / 1000, Layer.FALLBACK
        return BatteryMode.AUTO, 0.0, Layer.FALLBACK

    def _fallback_wallbox(self, local_a: float) -> tuple[float, Layer]:
        mode, fb = self.persistent.fallback_mode, self.persistent.fallback
        fb_ma = fb["fb_wallbox_current_ma"] if fb and fb["fb_valid"] else None
        if mode == FallbackMode.SAFE_HOLD:
            return (fb_ma if fb_ma is not None else 6000) / 1000, Layer.FALLBACK
        if mode == FallbackMode.FALLBACK_SETPOINTS and fb_ma is not None:
            return fb_ma / 1000, Layer.FALLBACK
        return local_a, Layer.FALLBACK

    def _fallback_hp(self) -> tuple[int, Layer]:
        mode, fb = self.persistent.fallback_mode, self.persistent.fallback
        if mode == FallbackMode.FALLBACK_SETPOINTS and fb and fb["fb_valid"]:
            return int(fb["fb_hp_sgready_state"] or 2), Layer.FALLBACK
        return 2, Layer.FALLBACK

    def _grid_operator(self, cmd: DeviceCommand, layers: dict[str, Layer]) -> DeviceCommand:
        """Grid-operator limits override every layer below device protection."""
        lim = self.external_limits
        if lim & ExternalLimit.HP_UTILITY_LOCK and cmd.hp_sgready != 1:
            cmd, layers["hp"] = replace(cmd, hp_sgready=1), Layer.GRID_OPERATOR
        if not lim & ExternalLimit.DIMMING_14A or self.external_consumption_limit_w is None:
            return cmd
        limit_kw = self.external_consumption_limit_w / 1000
        cmd = replace(cmd, consumption_limit_kw=limit_kw)
        wb = self.twin.site.wallbox
        cap_a = limit_kw * 1000 / (cmd.wallbox_phases * wb.voltage_v)
        if cmd.wallbox_current_a > cap_a:
            cur = math.floor(cap_a) if cap_a >= 6 else 0.0
            cmd, layers["wallbox"] = replace(cmd, wallbox_current_a=cur), Layer.GRID_OPERATOR
        if self.twin.site.heat_pump.el_max_kw > limit_kw and (
            cmd.hp_budget_kw is None or cmd.hp_budget_kw > limit_kw
        ):
            cmd, layers["hp"] = replace(cmd, hp_budget_kw=limit_kw), Layer.GRID_OPERATOR
        charging = cmd.battery_mode != BatteryMode.AUTO and cmd.battery_kw < -limit_kw
        if charging:
            cmd, layers["battery"] = replace(cmd, battery_kw=-limit_kw), Layer.GRID_OPERATOR
        return cmd

    def last_status(self, now: float) -> LastStatus:
        """Register 1021."""
        if self.commit_rejected:
            return LastStatus.REJECTED
        res = self.resolve(now)
        if res.overridden:
            return LastStatus.GRID_OPERATOR
        if res.clamped and self.control_state(now) in (
            ControlState.REMOTE_LIVE,
            ControlState.SCHEDULE,
        ):
            return LastStatus.CLAMPED
        return LastStatus.OK

    # ------------------------------------------------------------------ Modbus requests
    def on_request(
        self, address: int, values: list[int] | None, regs: list[int], peer: object = None
    ) -> int | None:
        """Handle one request on the register image ``regs`` (index 0 = address 1000).

        Returns a Modbus exception code or None. On None, pymodbus then stores ``values``.
        """
        self.tick()
        now = self.clock.now()
        try:
            if values is not None:
                self._on_write(address, values, regs, peer, now)
        except BoxRequestError as exc:
            if exc.code == DEVICE_BUSY:
                self.busy_rejections += 1
            return exc.code
        finally:
            self.render(regs, now)
        return None

    def _on_write(
        self, address: int, values: list[int], regs: list[int], peer: object, now: float
    ) -> None:
        end = address + len(values)
        for f in (*m.ALL_FIELDS, *_slot_int32_fields()):
            if m.split_int32(f, address, len(values)):
                raise BoxRequestError(ILLEGAL_VALUE, f"{f.name}: partial int32 write")
        if _overlaps(address, end, 1015, 1016):
            self._claim(values[1015 - address], peer, now)
        elif self.lock_id and peer is not self.lock_peer:
            raise BoxRequestError(DEVICE_BUSY, f"controller {self.lock_id} holds the lock")
        if self.lock_id:
            self.lock_until = now + self.persistent.watchdog_timeout_s
        self._log_writer(peer, now)
        image = list(regs)
        image[address - REG_BASE : end - REG_BASE] = values
        if _overlaps(address, end, m.SESSION.base, m.SESSION.base + m.SESSION.length):
            self._write_session(address, end, image, now)
        if _overlaps(address, end, m.LIVE.base, m.LIVE.base + m.LIVE.length):
            self._write_live(address, end, image, now)
        if _overlaps(address, end, m.FALLBACK.base, m.FALLBACK.base + m.FALLBACK.length):
            self.persistent.fallback = _validated_fallback(_decode(m.FALLBACK, image))
        if _overlaps(address, end, 2006, 2007):
            self._commit_schedule(image, now)

    def _log_writer(self, peer: object, now: float) -> None:
        self.accepted_writes += 1
        n, last = self.accepted_writes, self.writer_runs[-1] if self.writer_runs else None
        if last is not None and last.peer is peer:
            last.last, last.last_s, last.writes = n, now, last.writes + 1
        else:
            self.writer_runs.append(WriterRun(peer, self.lock_id, n, n, now, now))

    def _claim(self, cid: int, peer: object, now: float) -> None:
        if cid == 0 and self.lock_id and peer is self.lock_peer:
            self.lock_id, self.lock_peer = 0, None
            return
        if self.lock_id and cid != self.lock_id:
            raise BoxRequestError(DEVICE_BUSY, f"controller {self.lock_id} holds the lock")
        if cid == 0:
            self.lock_id, self.lock_peer = 0, None
            return
        self.lock_id, self.lock_peer = cid, peer
        self.lock_until = now + self.persistent.watchdog_timeout_s

    def _write_session(self, address: int, end: int, image: list[int], now: float) -> None:
        s = _decode(m.SESSION, image)
        timeout, mode = s["watchdog_timeout_s"] or 0, s["fallback_mode"] or 0
        if _overlaps(address, end, 1011, 1012) and not 10 <= timeout <= 3600:
            raise BoxRequestError(ILLEGAL_VALUE, f"watchdog_timeout_s: {timeout} not in 10..3600")
        if _overlaps(address, end, 1014, 1015) and mode not in (0, 1, 2):
            raise BoxRequestError(ILLEGAL_VALUE, f"fallback_mode: {mode} not in 0..2")
        if _overlaps(address, end, 1011, 1012):
            self.persistent.watchdog_timeout_s = timeout
        if _overlaps(address, end, 1014, 1015):
            self.persistent.fallback_mode = FallbackMode(mode)
        if _overlaps(address, end, 1010, 1011):
            self._heartbeat(s["ctrl_heartbeat"] or 0, now)

    def _heartbeat(self, value: int, now: float) -> None:
        if value == 0:  # release control: live setpoints go, local logic resumes
            self.live, self.hb_value, self.hb_changed_at = None, 0, None
            self.reset_live_registers = True
            return
        if value == self.hb_value:
            return  # a stuck retransmit does not refresh the watchdog
        self.hb_value, self.hb_changed_at = value, now
        self.beat_times.append(now)
        run = self.writer_runs[-1] if self.writer_runs else None
        if run is not None and run.first_beat_s is None:
            run.first_beat_s = now
        if self.latched:
            self.pending_hb = True
            self._leave_fallback()

    def _write_live(self, address: int, end: int, image: list[int], now: float) -> None:
        live = _decode(m.LIVE, image)
        _validate_live(live, full=end > 1041 >= address)
        if not end > 1041 >= address:
            return  # staged only; applied when command_seq is written
        seq = live["command_seq"] or 0
        if seq and seq in self.recent_seqs:
            # A frame retried after a lost reply (or overtaken by a newer one) carries a
            # sequence number already applied: applying it again would move applied_seq back.
            return
        if self.latched:
            if seq != self.latch_seq:
                self.pending = live
                self._leave_fallback()
            return
        if not self.watchdog_alive(now):
            self.commit_rejected = True
            return
        self.live, self.applied_seq, self.commit_rejected = live, seq, False
        self.recent_seqs.append(seq)
        self.persistent.sched_expired = False

    def _leave_fallback(self) -> None:
        if self.pending is not None and self.pending_hb:
            self.live, self.applied_seq = self.pending, self.pending["command_seq"] or 0
            self.recent_seqs.append(self.applied_seq)
            self.latched, self.pending, self.pending_hb = False, None, False
            self.commit_rejected = False
            self.persistent.sched_expired = False

    def _commit_schedule(self, image: list[int], now: float) -> None:
        h = _decode(m.SCHEDULE_HEADER, image)
        if not h["sched_commit"] or h["sched_commit"] != h["sched_id"]:
            raise BoxRequestError(ILLEGAL_VALUE, "sched_commit: must equal the staged sched_id")
        count, slot_len, start = h["slot_count"] or 0, h["slot_len_s"] or 0, h["sched_start"] or 0
        status = _check_schedule(image, h, now if self.clock_valid else None)
        self.persistent.sched_status = status
        if status != SchedStatus.ACTIVE:
            return
        slots = tuple(
            m.decode(m.SLOT, image[_slot_off(i) : _slot_off(i) + m.SLOT_REGS]) for i in range(count)
        )
        self.persistent.schedule = ActiveSchedule(h["sched_id"] or 0, start, slot_len, slots)
        self.persistent.sched_expired = False
        self.schedule_commits.append(now)

    # ------------------------------------------------------------------ register image
    def render(self, regs: list[int], now: float) -> None:
        """Write every box-owned register into ``regs`` (index 0 = address 1000)."""
        self._put(regs, m.IDENT, self._ident())
        self._put(regs, m.SESSION, self._session(now))
        fb = self.persistent.fallback
        if fb is not None:
            self._put(regs, m.FALLBACK, fb)
        if self.reset_live_registers:
            self._put(regs, m.LIVE, _LIVE_EMPTY | {"command_seq": self.applied_seq})
            self.reset_live_registers = False
        self._put(regs, m.MEASUREMENTS, self._measurements(now))
        sch = self.persistent.schedule
        slot_i = sch.slot_at(now) if sch else None
        ro = {
            "active_sched_id": sch.sched_id if sch else 0,
            "active_valid_until": sch.valid_until if sch else 0,
            "active_slot_index": slot_i,
            "sched_status": int(self.persistent.sched_status),
        }
        self._put(regs, m.SCHEDULE_HEADER, ro, only=set(ro))

    @staticmethod
    def _put(
        regs: list[int], block: m.Block, values: dict[str, int | None], only: set[str] | None = None
    ) -> None:
        enc = m.encode(block, values)
        for f in block.fields:
            if f.name in values and (only is None or f.name in only):
                off = f.addr - block.base
                regs[f.addr - REG_BASE : f.end - REG_BASE] = enc[off : off + f.kind.width]

    def _ident(self) -> dict[str, int | None]:
        return {
            "magic": m.MAGIC_U32,
            "version_major": m.VERSION_MAJOR,
            "version_minor": self.config.esi_minor,
            "map_length": m.MAP_LENGTH,
            "capabilities": int(self.config.capabilities),
        }

    def _session(self, now: float) -> dict[str, int | None]:
        remaining = 0
        if self.hb_changed_at is not None:
            left = self.hb_changed_at + self.persistent.watchdog_timeout_s - now
            remaining = max(0, math.ceil(left))
        return {
            "ctrl_heartbeat": self.hb_value,
            "watchdog_timeout_s": self.persistent.watchdog_timeout_s,
            "watchdog_remaining_s": remaining,
            "control_state": int(self.control_state(now)),
            "fallback_mode": int(self.persistent.fallback_mode),
            "controller_id": self.lock_id,
            "box_heartbeat": int(now - self.boot_time) & 0xFFFFFFFF,
            "box_time": int(now) if self.clock_valid else 0,
            "applied_seq": self.applied_seq,
            "last_status": int(self.last_status(now)),
            "external_limits": int(self.external_limits),
            "external_consumption_limit_w": self.external_consumption_limit_w,
            "external_feedin_limit_w": self.external_feedin_limit_w,
        }

    def _measurements(self, now: float) -> dict[str, int | None]:
        res = self.resolve(now)
        s = self.twin.last
        wb_state = 0 if s is None else (3 if s.ev_kw > 0 else 2) if s.ev_plugged else 1
        meas: dict[str, int | None] = {
            "meas_time": int(s.t + s.dt_s) if s else int(now),
            "wallbox_state": wb_state,
            "wallbox_phases_active": s.wallbox_phases if s and s.ev_kw > 0 else 0,
            "hp_sgready_applied": res.command.hp_sgready,
            "battery_power_applied_w": res.battery_applied_w,
            "wallbox_current_applied_ma": res.wallbox_applied_ma,
            "source_of_control": encode_source_of_control(res.layers),
        }
        if s is not None:
            meas |= {
                "pv_power_w": _w(s.pv_kw),
                "grid_power_w": _w(s.grid_kw),
                "battery_power_w": _w(s.battery_kw),
                "battery_soc_permille": round(s.soc_end * 1000),
                "house_load_w": _w(s.load_kw),
                "wallbox_power_w": _w(s.ev_kw),
                "hp_power_w": _w(s.hp_kw),
            }
        return meas | self._v1_1(s)

    def _v1_1(self, s: TwinStep | None) -> dict[str, int | None]:
        """ESI v1.1 registers; a v1.0 box leaves them reserved (0)."""
        if self.config.esi_minor < 1:
            return dict.fromkeys(m.V1_1_FIELDS, 0)
        soc, kwh = self.twin.ev_now(self.clock.now()) if s is not None else (None, None)
        return {
            "ev_soc_permille": None if soc is None else round(soc * 1000),
            "ev_session_energy_wh": None if kwh is None else round(kwh * 1000),
            "hp_store_temp_mdegc": None if s is None else round(s.t_store_c * 1000),
        }


_LIVE_EMPTY: dict[str, int | None] = {
    "battery_power_w": None,
    "battery_mode": 0,
    "battery_soc_min_permille": None,
    "battery_soc_max_permille": None,
    "wallbox_current_ma": None,
    "wallbox_phases": 0,
    "hp_sgready_state": 0,
    "hp_power_budget_w": None,
    "grid_import_limit_w": None,
}


def _decode(block: m.Block, image: list[int]) -> dict[str, int | None]:
    off = block.base - REG_BASE
    return m.decode(block, image[off : off + block.length])


def _slot_off(i: int) -> int:
    return m.SLOT_BASE - REG_BASE + i * m.SLOT_REGS


def _slot_int32_fields() -> tuple[m.Field, ...]:
    return _SLOT_I32


_SLOT_I32 = tuple(
    m.Field(f"slot{i}.battery_power_w", m.SLOT_BASE + i * m.SLOT_REGS, m.Kind.I32)
    for i in range(m.MAX_SLOTS)
)


def _overlaps(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def _current_ok(ma: int | None) -> bool:
    return ma is None or ma == 0 or 6000 <= ma <= 32000


def _validate_live(live: dict[str, int | None], full: bool) -> None:
    """Structural checks of block 2; violations are exception 03."""
    checks = {
        "battery_mode": (live["battery_mode"] or 0) <= 3,
        "battery_soc_min_permille": (live["battery_soc_min_permille"] or 0) <= 1000,
        "battery_soc_max_permille": (live["battery_soc_max_permille"] or 0) <= 1000,
        "wallbox_current_ma": _current_ok(live["wallbox_current_ma"]),
        "wallbox_phases": live["wallbox_phases"] in (0, 1, 3),
        "hp_sgready_state": (live["hp_sgready_state"] or 0) <= 4,
        "grid_import_limit_w": (live["grid_import_limit_w"] or 0) >= 0,
    }
    if full:
        lo, hi = live["battery_soc_min_permille"], live["battery_soc_max_permille"]
        checks["battery_soc_max_permille"] &= lo is None or hi is None or lo <= hi
        checks["battery_power_w"] = not (
            live["battery_mode"] in (BatteryMode.SETPOINT, BatteryMode.NO_GRID_CHARGE)
            and live["battery_power_w"] is None
        )
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise BoxRequestError(ILLEGAL_VALUE, f"invalid {', '.join(bad)}")


def _validated_fallback(fb: dict[str, int | None]) -> dict[str, int | None]:
    if not _current_ok(fb["fb_wallbox_current_ma"]):
        raise BoxRequestError(ILLEGAL_VALUE, "fb_wallbox_current_ma out of range")
    if (fb["fb_hp_sgready_state"] or 0) > 4 or fb["fb_valid"] not in (0, 1):
        raise BoxRequestError(ILLEGAL_VALUE, "fb_hp_sgready_state/fb_valid out of range")
    return fb


def _check_schedule(image: list[int], h: dict[str, int | None], now: float | None) -> SchedStatus:
    count, slot_len, start = h["slot_count"] or 0, h["slot_len_s"] or 0, h["sched_start"] or 0
    if not 1 <= count <= m.MAX_SLOTS:
        return SchedStatus.REJECTED_RANGE
    slot_regs = image[_slot_off(0) : _slot_off(count)]
    if m.crc16_modbus(slot_regs) != h["sched_crc16"]:
        return SchedStatus.REJECTED_CRC
    if not (60 <= slot_len <= 3600 and slot_len % 60 == 0 and start % slot_len == 0):
        return SchedStatus.REJECTED_RANGE
    for i in range(count):
        s = m.decode(m.SLOT, slot_regs[i * m.SLOT_REGS : (i + 1) * m.SLOT_REGS])
        flags = s["flags"] or 0
        current_ok = flags & 2 or _current_ok(s["wallbox_current_ma"])
        if flags > 7 or not current_ok or (s["hp_sgready_state"] or 0) > 4:
            return SchedStatus.REJECTED_RANGE
    if now is None or start + slot_len * count <= now or start > now + MAX_FUTURE_S:
        return SchedStatus.REJECTED_TIME
    return SchedStatus.ACTIVE


def _w(kw: float | None) -> int | None:
    return None if kw is None else round(kw * 1000)


def _kw(w: int | None) -> float | None:
    return None if w is None else w / 1000


def _permille(live: dict[str, int | None] | None, name: str, default: float) -> float:
    v = live.get(name) if live else None
    return default if v is None else v / 1000


def interleaved_writers(runs: list[WriterRun]) -> list[tuple[WriterRun, WriterRun]]:
    """Pairs of runs of the same connection with another connection's writes in between: a box
    written by two controllers at once. Empty when every hand-over was clean (each connection
    wrote in one uninterrupted run, then never again)."""
    seen: dict[int, WriterRun] = {}
    pairs = []
    for run in runs:
        earlier = seen.get(id(run.peer))
        if earlier is not None and earlier.peer is run.peer:
            pairs.append((earlier, run))
        seen[id(run.peer)] = run
    return pairs
