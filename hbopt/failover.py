"""Several ``hbopt control`` processes on one database against simulated boxes, and one of them
killed: the fleet behind ``benchmarks/scale_out.py`` and the fail-over test.

What runs is the product: real ``python -m hbopt control`` processes sharing an account
database (SQLite file), a telemetry store and the lease database (PostgreSQL in the test and the
benchmark), each leasing its share of the sites. The boxes are real pymodbus servers on
127.0.0.1 in the calling process (:mod:`simulation.box_sim`), each recording which connection
wrote it (:attr:`~simulation.box.HeartbeatBox.writer_runs`), the lock rejections and the
watchdog expiries. Processes and boxes share an accelerated clock by the same start, anchor and
speed; every duration below is simulated seconds unless it says real.

:func:`run_failover` starts the fleet (one process first, the others join and the leases
rebalance), waits until every box is under remote control, kills one process with SIGKILL and
measures how long its sites take to come back under control, and whether any box fell back or
was written by two processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pandas as pd
import psutil
import sqlalchemy as sa

from adapters.heartbeat.esi_types import ControlState
from api import migrations
from api.accounts_store import AccountStore, EquipmentDoc
from scheduler.clock import ScaledRealClock
from scheduler.leases import make_engine, site_leases
from scheduler.site_model import SiteEquipment
from simulation.box import BoxConfig, HeartbeatBox, interleaved_writers
from simulation.box_sim import BoxSimulator, start_box_simulator
from simulation.twin import SiteParams, Twin, bundled_profiles

ROOT = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2024-06-12T08:00Z")
SLOT_S = 900.0
#: Box times compare within this [s] (a watchdog expiry minus the watchdog is its beat).
EPS_S = 1e-6


@dataclass(frozen=True)
class FleetTiming:
    """Clock speed-up and the control timings [simulated s] the processes and boxes run with."""

    speed: float
    watchdog_s: int = 60
    lease_ttl_s: float = 30.0
    lease_renew_s: float = 5.0
    poll_s: float = 60.0
    horizon_slots: int = 96

    def real(self, sim_s: float) -> float:
        """Simulated seconds as real seconds."""
        return sim_s / self.speed


@dataclass(frozen=True)
class BoxTakeover:
    """One box of the killed process through its take-over [simulated s after the kill].

    ``beat_age_s`` is how old the box's last heartbeat was at the kill; the watchdog expires at
    ``watchdog_s - beat_age_s``; ``slack_s`` is what was left of it at the new owner's first
    heartbeat (negative: the box fell back). None: not seen.
    """

    site_id: str
    beat_age_s: float
    lease_expiry_s: float
    acquired_s: float | None
    first_write_s: float | None
    first_beat_s: float | None
    slack_s: float | None


@dataclass(frozen=True)
class BoxGap:
    """A gap in a box's heartbeats, and what happened to its site in it.

    ``phase`` is what the site went through from the heartbeat before the gap on:
    ``start-up`` (its first controller held the lease throughout), ``held`` (a later
    controller held it throughout), ``rebalance release`` (the holder gave the lease up and no
    process had taken it by the gap's end) or ``rebalance take`` (another process took it
    within the gap); ``take-over`` for a box of the killed process. ``events`` are (what,
    simulated s after the heartbeat before the gap); a watchdog expiry is one of them.
    """

    site_id: str
    phase: str
    at_s: float  # the heartbeat before the gap, simulated s after the processes started
    length_s: float  # to the next heartbeat, or to the watchdog's expiry if that came first
    events: tuple[tuple[str, float], ...]


@dataclass
class FailoverResult:
    """What :func:`run_failover` saw (times in real seconds)."""

    sites_before: dict[str, int]
    sites_after: dict[str, int]
    victim: str
    victim_sites: int
    start_up_s: float
    lease_takeover_s: float
    box_takeover_s: list[float]
    #: Boxes that went to FALLBACK after the kill, and before it (start-up, rebalancing).
    fallback_boxes: int
    fallback_boxes_before: int
    busy_rejections: int
    interleaved_boxes: int
    #: Schedule commits per box per 15-min window before the kill (None: not measured).
    cycles_per_window: float | None = None
    windows: float = 0.0
    #: CPU seconds of each surviving process (and its solver pool) from the kill to the end.
    cpu_after_kill_s: dict[str, float] = field(default_factory=dict)
    after_kill_s: float = 0.0
    #: Real seconds of the start-up phases.
    phases: dict[str, float] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    #: Per box of the killed process: its heartbeat, lease and new owner around the kill.
    timeline: list[BoxTakeover] = field(default_factory=list)
    #: Every watchdog expiry, before and after the kill, with its site's lease history.
    fallbacks: list[BoxGap] = field(default_factory=list)
    #: The longest gap between two heartbeats of one box before the kill (None: no box had
    #: two), and its length [simulated s].
    longest_gap: BoxGap | None = None
    max_gap_before_s: float = 0.0


def fleet_accounts(url: str, ports: list[int]) -> list[str]:
    """One owner's sites, each with a paired box at ``127.0.0.1:port`` and the typical home."""
    accounts = AccountStore(url)
    now = datetime.now(UTC)
    user = accounts.create_user("fleet@example.org", "x", "customer", now, confirmed=True)
    equipment = SiteEquipment().model_dump_json()
    ids = []
    for i, port in enumerate(ports):
        site = accounts.create_site(user.id, f"home {i}", "Europe/Berlin", "default", now)
        serial = f"SN-{i:06d}"
        accounts.register_starter_code(serial, "x", now)
        accounts.pair_box(serial, site.id, f"token-{i}", now)
        accounts.set_equipment(EquipmentDoc(site.id, equipment, now, user.id))
        accounts.set_box_link(serial, "127.0.0.1", port, 1, now)
        ids.append(site.id)
    accounts.close()
    return ids


@contextlib.asynccontextmanager
async def served_boxes(
    clock: ScaledRealClock, n: int, watchdog_s: int
) -> AsyncIterator[list[BoxSimulator]]:
    """``n`` box simulators on ephemeral ports (ticked by their requests, and at the end)."""
    profiles = bundled_profiles(START.floor("D"), 2, SiteParams())
    sims = []
    try:
        for i in range(n):
            config = BoxConfig(f"box-{i}", watchdog_timeout_s=watchdog_s)
            box = HeartbeatBox(Twin(SiteParams(), profiles), clock, config)
            sims.append(await start_box_simulator(box))
        yield sims
    finally:
        for sim in sims:
            await sim.stop()


def control_env(
    tmp: Path, db_url: str, clock: ScaledRealClock, timing: FleetTiming
) -> dict[str, str]:
    """The environment of every control process of the fleet (bundled inputs: no network)."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HBOPT_DATABASE_PATH": str(tmp / "accounts.sqlite3"),
        "HBOPT_TELEMETRY_PATH": str(tmp / "telemetry.sqlite3"),
        "HBOPT_DATABASE_URL": db_url,
        "HBOPT_INPUT_JOBS": "false",
        "HBOPT_CLOCK_SPEED": repr(clock.speed),
        "HBOPT_CLOCK_START": datetime.fromtimestamp(clock.start, UTC).isoformat(),
        "HBOPT_CLOCK_ANCHOR": repr(clock.anchor),
        "HBOPT_SOLVER_WORKERS": "1",
        "HBOPT_WATCHDOG_TIMEOUT_S": str(timing.watchdog_s),
        "HBOPT_POLL_S": repr(timing.poll_s),
        "HBOPT_HORIZON_SLOTS": str(timing.horizon_slots),
        "HBOPT_SCHEDULE_SLOTS": str(timing.horizon_slots),
        "HBOPT_LEASE_TTL_S": repr(timing.lease_ttl_s),
        "HBOPT_LEASE_RENEW_S": repr(timing.lease_renew_s),
        # timer cycles spread over a minute before their slot (not the default two)
        "HBOPT_CYCLE_LEAD_S": "60",
    }


@dataclass
class ControlProcess:
    """One ``hbopt control`` process of the fleet, logging to ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, env: dict[str, str], tmp: Path) -> ControlProcess:
        log = tmp / f"{name}.log"
        with log.open("ab") as out:
            cmd = [sys.executable, "-m", "hbopt", "control", "--log-level", "info"]
            proc = subprocess.Popen(
                cmd,
                env=env | {"HBOPT_PROCESS_NAME": name},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        return cls(name, proc, log)

    def cpu_s(self) -> float:
        """CPU seconds [s] of the process and its children (the solver pool) so far."""
        try:
            proc = psutil.Process(self.proc.pid)
            total = sum(proc.cpu_times()[:2])
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += sum(child.cpu_times()[:2])
        except psutil.Error:
            return float("nan")
        return total

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crashed host."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def lease_holders(engine: sa.Engine, now_s: float) -> dict[str, str]:
    """Site -> the process holding a valid lease at ``now_s`` [UNIX s, simulated]."""
    now_ms = round(now_s * 1000)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(site_leases.c.site_id, site_leases.c.holder).where(
                site_leases.c.holder.is_not(None), site_leases.c.expires_at_ms > now_ms
            )
        ).all()
    return {r.site_id: r.holder for r in rows}


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll ``check`` every 50 ms until true; the real seconds it took."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"not within {timeout_s:.0f} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


async def run_failover(
    tmp: Path,
    db_url: str,
    n_sites: int,
    n_processes: int,
    timing: FleetTiming,
    *,
    measure_windows: float = 0.0,
    join_late: int = 0,
) -> FailoverResult:
    """Start the fleet, let it settle, SIGKILL one process and measure the take-over.

    ``measure_windows`` > 0 also counts the schedules committed per box over that many
    15-minute windows before the kill (the cycles per window). ``join_late`` of the processes
    start only once the others have shared the sites and every box is under remote control
    (a process joining a running fleet: the others hand it its share).
    """
    clock = ScaledRealClock((START - pd.Timedelta(minutes=2)).timestamp(), timing.speed)
    engine = make_engine(db_url)
    migrations.upgrade(engine)  # the lease tables are read before the processes are up
    async with served_boxes(clock, n_sites, timing.watchdog_s) as sims:
        ids = fleet_accounts(db_url, [s.port for s in sims])
        fleet = _Fleet(engine, clock, timing, dict(zip(ids, (s.box for s in sims), strict=True)))
        watcher: asyncio.Task[None] | None = None
        try:
            env = control_env(tmp, db_url, clock, timing)
            # all at once: the first to tick takes every site and hands the others their share
            fleet.procs = [
                ControlProcess.start(f"control-{i}", env, tmp)
                for i in range(n_processes - join_late)
            ]
            watcher = asyncio.create_task(fleet.watch_leases())
            phases = await fleet.start_up()
            if join_late:
                fleet.procs += [
                    ControlProcess.start(f"control-{i}", env, tmp)
                    for i in range(n_processes - join_late, n_processes)
                ]
                joined = await fleet.start_up()
                phases |= {f"joined: {k}": v for k, v in joined.items()}
            cycles = await _cycles_per_window(fleet.box_of, clock, measure_windows)
            result = await fleet.kill_one()
            result.start_up_s, result.phases = sum(phases.values()), phases
            result.cycles_per_window, result.windows = cycles, measure_windows
            result.fallbacks = fleet.fallbacks(result.victim)
            result.longest_gap = fleet.longest_gap(fleet.killed_at, result.victim)
            if result.longest_gap is not None:
                result.max_gap_before_s = result.longest_gap.length_s
            return result
        finally:  # the processes first: without their boxes they would stop slowly
            for p in fleet.procs:
                p.stop()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            engine.dispose()


@dataclass
class _Fleet:
    """The running fleet as :func:`run_failover` watches it."""

    engine: sa.Engine
    clock: ScaledRealClock
    timing: FleetTiming
    box_of: dict[str, HeartbeatBox]
    procs: list[ControlProcess] = field(default_factory=list)
    #: Per site, every change of its lease row seen: (simulated s, holder or None, version).
    history: dict[str, list[tuple[float, str | None, int]]] = field(default_factory=dict)
    started_at: float = 0.0
    killed_at: float = float("inf")

    def holders(self) -> dict[str, str]:
        return lease_holders(self.engine, self.clock.now())

    async def watch_leases(self, every_s: float = 0.1) -> None:
        """Record each site's lease changes (holder, version) every ``every_s`` real seconds."""
        self.started_at = self.clock.now()
        while True:
            now = self.clock.now()
            rows = await asyncio.to_thread(lease_rows, self.engine)
            for site_id, holder, version in rows:
                seen = self.history.setdefault(site_id, [])
                if not seen or seen[-1][1:] != (holder, version):
                    seen.append((now, holder, version))
            await asyncio.sleep(every_s)

    def fallbacks(self, victim: str) -> list[BoxGap]:
        """Every watchdog expiry of the run with its site's phase and gap timeline."""
        gaps = [
            self._gap(site_id, at - self.timing.watchdog_s, victim)
            for site_id, box in self.box_of.items()
            for at in box.fallback_times
        ]
        return sorted(gaps, key=_at)

    def longest_gap(self, until_s: float, victim: str) -> BoxGap | None:
        """The longest time between two heartbeats of one box before ``until_s`` [sim s]."""
        longest: tuple[float, str, float] | None = None
        for site_id, box in self.box_of.items():
            beats = [t for t in box.beat_times if t <= until_s]
            for a, b in pairwise(beats):
                if longest is None or b - a > longest[0]:
                    longest = (b - a, site_id, a)
        return None if longest is None else self._gap(longest[1], longest[2], victim)

    def _gap(self, site_id: str, last: float, victim: str) -> BoxGap:
        history = self.history.get(site_id, [])
        gap = box_gap(site_id, self.box_of[site_id], last, history, timing=self.timing)
        if last + gap.length_s > self.killed_at:  # the kill came in the gap
            held = [h for h in history if h[0] <= last + EPS_S]
            if held and held[-1][1] == victim:
                gap = replace(gap, phase="take-over")
        return replace(gap, at_s=gap.at_s - self.started_at)

    async def start_up(self) -> dict[str, float]:
        """Until the sites are shared fairly and every box is under remote control."""
        n, share = len(self.procs), -(-len(self.box_of) // len(self.procs))

        def balanced() -> bool:
            counts = Counter(self.holders().values())
            return len(counts) == n and max(counts.values()) <= share

        def all_remote() -> bool:
            now = self.clock.now()
            states = (b.control_state(now) for b in self.box_of.values())
            return all(s == ControlState.REMOTE_LIVE for s in states)

        try:
            shared = await until(balanced, 240, "sites shared")
            remote = await until(all_remote, 240, "every box under remote control")
        except TimeoutError as exc:
            logs = "\n".join(f"--- {p.name}\n{p.log.read_text()[-3000:]}" for p in self.procs)
            raise TimeoutError(f"{exc}; leases {Counter(self.holders().values())}\n{logs}") from exc
        await asyncio.sleep(self.timing.real(3 * self.timing.lease_renew_s))
        return {"sites shared": shared, "then every box remote": remote}

    async def kill_one(self) -> FailoverResult:
        """SIGKILL the middle process; until its sites are re-taken and its boxes written."""
        timing, boxes = self.timing, list(self.box_of.values())
        holders = self.holders()
        cpu0 = {p.name: p.cpu_s() for p in self.procs}
        fell_back = {id(b): b.fallback_entries for b in boxes}
        victim = self.procs[len(self.procs) // 2]
        victim_sites = sorted(s for s, h in holders.items() if h == victim.name)
        victim_boxes = [self.box_of[s] for s in victim_sites]
        expiry = lease_expiries(self.engine, victim_sites)
        killed_at, killed_box = time.monotonic(), self.clock.now()
        self.killed_at = killed_box
        victim.kill()
        beats = {s: self.box_of[s].hb_changed_at for s in victim_sites}
        acquired: dict[str, float] = {}

        def taken() -> bool:
            held = self.holders()
            now = self.clock.now()
            for site_id in victim_sites:
                if site_id not in acquired and held.get(site_id, victim.name) != victim.name:
                    acquired[site_id] = now - killed_box
            return len(held) == len(boxes) and victim.name not in held.values()

        def rewritten() -> bool:
            return all(_written_since(b, killed_box) is not None for b in victim_boxes)

        await until(taken, timing.real(3 * timing.lease_ttl_s) + 30, "leases taken over")
        lease_s = time.monotonic() - killed_at
        await until(rewritten, timing.real(3 * timing.lease_ttl_s) + 60, "boxes taken over")
        box_s = [timing.real(_written_since(b, killed_box) or 0.0) for b in victim_boxes]
        # a watchdog period more: a box missed by the take-over would fall back by then
        await asyncio.sleep(timing.real(timing.watchdog_s))
        for box in boxes:
            box.tick()
        return FailoverResult(
            dict(sorted(Counter(holders.values()).items())),
            dict(sorted(Counter(self.holders().values()).items())),
            victim.name,
            len(victim_boxes),
            0.0,
            lease_s,
            box_s,
            sum(b.fallback_entries > fell_back[id(b)] for b in boxes),
            sum(fell_back[id(b)] > 0 for b in boxes),
            sum(b.busy_rejections for b in boxes),
            sum(bool(interleaved_writers(b.writer_runs)) for b in boxes),
            cpu_after_kill_s={
                p.name: p.cpu_s() - cpu0[p.name] for p in self.procs if p is not victim
            },
            after_kill_s=time.monotonic() - killed_at,
            logs={p.name: p.log.read_text(errors="replace")[-3000:] for p in self.procs},
            timeline=[
                _box_takeover(
                    s,
                    self.box_of[s],
                    killed_box,
                    beat=beats[s],
                    expiry=expiry[s],
                    acquired=acquired.get(s),
                    timing=timing,
                )
                for s in victim_sites
            ],
        )


def lease_rows(engine: sa.Engine) -> list[tuple[str, str | None, int]]:
    """Every lease row: (site, holder or None, version)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(site_leases.c.site_id, site_leases.c.holder, site_leases.c.version)
        ).all()
    return [(r.site_id, r.holder, int(r.version)) for r in rows]


def box_gap(
    site_id: str,
    box: HeartbeatBox,
    last: float,
    history: list[tuple[float, str | None, int]],
    *,
    timing: FleetTiming,
) -> BoxGap:
    """The box's heartbeat gap after its heartbeat at ``last`` [sim s] with its site's lease
    from then on (see :class:`BoxGap`), as times after that heartbeat."""
    before = [h for h in history if h[0] <= last + EPS_S]
    giver = before[-1] if before else (last, None, 0)
    after = [h for h in history if h[0] > last + EPS_S]
    events = [(f"lease held by {giver[1]} (version {giver[2]}) since", giver[0] - last)]
    run = next((r for r in reversed(box.writer_runs) if r.first_s <= last + EPS_S), None)
    if run is not None:
        events.append(("holder's last write", run.last_s - last))
    beat = next((t for t in box.beat_times if t > last + EPS_S), None)
    expiry = last + timing.watchdog_s
    end = expiry if beat is None else min(beat, expiry)
    released = next((h for h in after if h[1] is None), None)
    if released is not None:
        events.append(("lease released", released[0] - last))
    taken = next((h for h in after if h[1] is not None and h[1:] != giver[1:]), None)
    if taken is not None:
        events.append((f"lease taken by {taken[1]}", taken[0] - last))
    new_run = next((r for r in box.writer_runs if r.first_s > last + EPS_S), None)
    if new_run is not None:
        events.append(("next connection's first write", new_run.first_s - last))
    if beat is not None:
        events.append(("next heartbeat", beat - last))
    if expiry in box.fallback_times or any(abs(f - expiry) < EPS_S for f in box.fallback_times):
        events.append(("watchdog expired: FALLBACK", float(timing.watchdog_s)))
    if (taken is not None and taken[0] <= end) or (new_run is not None and new_run.first_s <= end):
        phase = "rebalance take"  # (the lease poll may see the take after the new writes)
    elif released is not None and released[0] <= end:
        phase = "rebalance release"
    else:  # the holder kept the lease and did not beat
        phase = "start-up" if giver[2] <= 1 else "held"
    ordered = tuple(sorted(events, key=lambda e: e[1]))
    return BoxGap(site_id, phase, last, end - last, ordered)


def _at(f: BoxGap) -> float:
    return f.at_s


def lease_expiries(engine: sa.Engine, site_ids: list[str]) -> dict[str, float]:
    """Site -> its lease's expiry [UNIX s, simulated]."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(site_leases.c.site_id, site_leases.c.expires_at_ms).where(
                site_leases.c.site_id.in_(site_ids)
            )
        ).all()
    return {r.site_id: r.expires_at_ms / 1000 for r in rows}


def _box_takeover(
    site_id: str,
    box: HeartbeatBox,
    killed: float,
    *,
    beat: float | None,
    expiry: float,
    acquired: float | None,
    timing: FleetTiming,
) -> BoxTakeover:
    runs = [r for r in box.writer_runs if r.first_s > killed]
    first_write = runs[0].first_s - killed if runs else None
    beat_at = next((r.first_beat_s for r in runs if r.first_beat_s is not None), None)
    first_beat = None if beat_at is None else beat_at - killed
    age = float("nan") if beat is None else killed - beat
    slack = None if first_beat is None else timing.watchdog_s - age - first_beat
    return BoxTakeover(site_id, age, expiry - killed, acquired, first_write, first_beat, slack)


def _written_since(box: HeartbeatBox, t: float) -> float | None:
    """Simulated seconds from ``t`` to the first write of a connection that began after ``t``."""
    runs = [r for r in box.writer_runs if r.first_s > t]
    return None if not runs else runs[0].first_s - t


async def _cycles_per_window(
    box_of: dict[str, HeartbeatBox], clock: ScaledRealClock, windows: float
) -> float | None:
    """Schedules committed per box per window over the next ``windows`` 15-minute windows."""
    if windows <= 0:
        return None
    t0 = clock.now()
    end = t0 + windows * SLOT_S
    await clock.sleep_until(end)
    commits = sum(sum(t0 <= c < end for c in b.schedule_commits) for b in box_of.values())
    return commits / len(box_of) / windows
