"""The site runtime: one :class:`Supervisor` runs a :class:`SiteController` per controlled site.

A site is controlled when it has a paired box, equipment, and the owner's optimization switch
on. The supervisor reads what should run from a :class:`SiteSource` (the service implements
it on the account database) and keeps the running controllers equal to it:

* at start and every ``reconcile_s`` it compares every site;
* every ``change_poll_s`` it reads the source's change log and re-reads only the sites that
  changed. A change of settings on the same link is handed to the running controller, which
  replans at once; a changed link (box address, pull <-> push) restarts it; a site that is no
  longer controlled (unpaired, deleted, switched off) is released: the box gets a schedule
  without commands and heartbeat 0, so its own logic takes over at once.

The change log is what lets the control loop run in its own process (``hbopt control``):
everything it needs to know arrives through the database, polled once a second.

Several control processes (``leases``, a :class:`~scheduler.leases.LeaseManager` on a database
they share) divide the sites: the supervisor then runs only the sites it holds a lease on. Its
lease task renews every ``lease_renew_s`` on the controllers' clock, beside the cycles, with the
database calls on a thread of their own; starting and stopping the sites that moved runs apart
from it, so a slow start never delays a renewal. A site lost (taken over after this process
stalled) is stopped at once without a release, a surplus site (a process joined) is stopped
before its lease is released. The sites taken are read at once and their boxes handed on first
(connected, lock claimed, watchdog beaten) before any of them fetches prices or solves; the
lease thread also ticks right when a peer's heartbeat expires, and controllers beat every
``(watchdog - lease) / 3``, so a dead process's boxes are beaten again well inside their
watchdog. A process starting hands on every site it got the same way. A site handed to a
process that joined keeps its heartbeat: the giver beats it until its controller stops and
once more then (its lease still held), and only then releases the lease. Controllers write
their box only while the lease has more than a sixth of its period left, and check the fencing
token in the database before each cycle's write batch. Without ``leases`` it runs every site.

Every controller solves on the executor the supervisor was given (a local process pool or a
Dask executor from :class:`~scheduler.fleet.FleetRunner`), so the event loop only does I/O.
Prices and weather come from the :data:`FeedFactory` the service passes in; the link to each
box from the :data:`LinkFactory`. :meth:`Supervisor.prices_changed` is the hook a price job
calls (from any thread) when new prices arrived.

Status
    :meth:`Supervisor.status` gives each site's :class:`SiteStatus` (the model the status
    route and the dashboard tile show); the supervisor publishes it to the source after every
    cycle and every ``status_refresh_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, NamedTuple, Protocol, TypeVar

from adapters import store as st
from adapters.heartbeat.client import BoxError
from adapters.heartbeat.esi_types import ControlState
from scheduler.clock import LoopClock
from scheduler.controller import CycleReport, NotOwner, SiteConfig, SiteController, cancel_all
from scheduler.feeds import PriceFeed
from scheduler.frame_feeds import WeatherFeed
from scheduler.leases import Lease, LeaseManager
from scheduler.links import BoxLink, PullLink
from scheduler.plan_store import LeaseFence, PlanStore
from scheduler.store_io import StoreIO, store_threads

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Sites a process above its share hands on per renew tick (stopped, then released), so the
#: others take them up steadily while the rest keep running.
HANDOVER_BATCH = 25
#: Renew ticks after which a hand-on that never finished is given up (the sites run again).
STUCK_TICKS = 24
#: A tick for a peer's expiry comes this long after it [s]: a lease is takeable once strictly
#: past its expiry (whole milliseconds in the database).
PEER_EXPIRY_MARGIN_S = 0.01
#: An event loop that has not run for this long [s, real] is hung: its leases are not renewed.
LOOP_STALL_S = 60.0
#: A controller writes only while its lease has more than ttl / this left (clock skew between
#: hosts and a write batch in flight must fit in it).
LEASE_MARGIN_DIVISOR = 6

StateName = Literal["remote", "schedule_only", "fallback", "unreachable", "not_configured", "off"]
LinkKind = Literal["modbus", "pull"]

#: What the owner reads for each state.
STATE_TEXT: dict[str, str] = {
    "remote": "remote control",
    "schedule_only": "following the schedule",
    "fallback": "box on its own fallback logic",
    "unreachable": "box unreachable",
    "not_configured": "not configured",
    "off": "optimization switched off",
}

#: Change-log table -> the reason a replan gives.
CHANGE_REASONS: dict[str, str] = {
    "device_preferences": "owner settings changed",
    "site_equipment": "equipment changed",
    "site_parameters": "trading parameters changed",
    "group_parameters": "trading parameters changed",
    "site_control": "optimization switched on",
    "boxes": "box paired",
    "box_links": "box address changed",
    "sites": "site changed",
    "site_tariffs": "tariff changed",
}


@dataclass(frozen=True)
class LinkSpec:
    """How the service reaches a site's box: Modbus TCP at ``host:port`` (unit), or pull."""

    kind: LinkKind
    host: str = ""
    port: int = 0
    unit: int = 1


@dataclass(frozen=True)
class SiteSpec:
    """A site that should be controlled: its typed configuration and its box link."""

    config: SiteConfig
    link: LinkSpec
    timezone: str = "Europe/Berlin"

    @property
    def site_id(self) -> str:
        return self.config.site_id


@dataclass(frozen=True)
class Idle:
    """A site that should not be controlled, and why (``not_configured`` or ``off``)."""

    site_id: str
    state: Literal["not_configured", "off"]
    why: str
    exists: bool = True


@dataclass(frozen=True)
class SiteStatus:
    """The control state of one site as the owner sees it (times are UTC ISO 8601 or None)."""

    site_id: str
    state: StateName
    state_text: str
    link: LinkKind | None = None
    last_contact: str | None = None
    last_plan_at: str | None = None
    last_error: str | None = None
    updated_at: str | None = None
    triggers: tuple[str, ...] = ()  # why the last cycle ran ("timer", "owner settings changed")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SiteStatus:
        doc = json.loads(text)
        return cls(**doc | {"triggers": tuple(doc.get("triggers", ()))})


class SiteSource(Protocol):
    """Where the supervisor learns what to run and publishes the status (blocking calls)."""

    def site_ids(self) -> list[str]:
        """Every site that exists."""
        ...

    def desired(self, site_id: str) -> SiteSpec | Idle:
        """What should run for ``site_id`` now."""
        ...

    def last_change_id(self) -> int:
        """The newest change-log id."""
        ...

    def changes_since(self, change_id: int) -> list[tuple[int, str | None, str]]:
        """Change-log rows after ``change_id``: (id, site id or None for all sites, what)."""
        ...

    def publish_status(self, statuses: list[SiteStatus]) -> None:
        """Store the statuses (the status route reads them)."""
        ...


class Feeds(NamedTuple):
    """What a controller reads besides its box."""

    prices: PriceFeed
    weather: WeatherFeed


FeedFactory = Callable[[SiteSpec, LoopClock], Feeds]
LinkFactory = Callable[[SiteSpec, LoopClock], BoxLink]


@dataclass(frozen=True)
class RuntimeConfig:
    """Timing of the supervisor (real seconds, independent of an accelerated clock)."""

    change_poll_s: float = 1.0
    reconcile_s: float = 60.0
    retry_s: float = 10.0
    status_refresh_s: float = 15.0
    status_flush_s: float = 0.5
    #: Lease renew period, on the controllers' clock (the boxes' watchdog runs on it too).
    lease_renew_s: float = 5.0
    #: Sites started together (start-up, a take-over) spread their first cycles over this
    #: much per site, at most ``first_cycle_spread_max_s`` (the controllers' clock) [s].
    first_cycle_spacing_s: float = 1.0
    first_cycle_spread_max_s: float = 900.0


@dataclass
class LeaseStats:
    """How the lease thread kept up (times on the controllers' clock) [s]."""

    ticks: int = 0
    #: Ticks that started more than half a renew period after they were due.
    late_ticks: int = 0
    max_late_s: float = 0.0
    #: Leases found expired at a renewal while this process still held them (a renewal came
    #: more than a lease period after the last): another process could have taken the site.
    expired_held: int = 0
    #: Leases taken by another process while this one held them.
    lost: int = 0


@dataclass
class _Managed:
    spec: SiteSpec
    controller: SiteController
    task: asyncio.Task[None] | None = None
    started: bool = False
    last_report: CycleReport | None = None
    last_plan_at: float | None = None
    #: Set once a site taken over has handed its box on (or failed to).
    handed_on: asyncio.Event | None = None


@dataclass
class Supervisor:
    """Keeps one started :class:`SiteController` per controlled site (see the module notes).

    Parameters
    ----------
    source : SiteSource
        Desired sites, change log, status sink.
    clock : LoopClock
        The controllers' clock (real, or accelerated for demos and tests).
    store : TelemetryStore
        Measurements, plans, setpoints of every site.
    executor : Executor
        Where solves run.
    feeds : FeedFactory
        Prices and weather per site (the one place live inputs are plugged in).
    links : LinkFactory
        The box link per site (Modbus client or :class:`~scheduler.links.PullLink`).
    on_plan : callable, optional
        Called with the site id after every stored plan (the API drops its cached plan).
    """

    source: SiteSource
    clock: LoopClock
    store: st.TelemetryStore
    executor: Executor
    feeds: FeedFactory
    links: LinkFactory
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    on_plan: Callable[[str], None] | None = None
    #: Cycle reports and plans each controller keeps in memory (None: all; the demo).
    keep_history: int | None = 8
    #: Called with every published status and the site's controller (owner notifications), on
    #: a thread (it may read the database), one status after another.
    on_status: Callable[[SiteStatus, SiteController | None], None] | None = None
    #: Site leases shared with other control processes; None: this process runs every site.
    leases: LeaseManager | None = None
    #: Where controllers store plans and setpoints (fenced by the lease when there are leases).
    plan_store: PlanStore | None = None
    _sites: dict[str, _Managed] = field(default_factory=dict)
    _held: dict[str, Lease] = field(default_factory=dict)
    #: Every lease this process holds, those being handed on included (beaten until stopped).
    _beatable: dict[str, Lease] = field(default_factory=dict)
    _moves: set[asyncio.Task[None]] = field(default_factory=set)
    _lease_mutex: threading.Lock = field(default_factory=threading.Lock)
    _publish_mutex: threading.Lock = field(default_factory=threading.Lock)
    _leaving: set[str] = field(default_factory=set)
    _pulse: float = 0.0
    _ticked: tuple[float, float] = (0.0, 0.0)
    _stopping: bool = False
    _leaving_ticks: int = 0
    #: Every site id, as the loop last read them (the lease thread leases among these).
    _site_ids: list[str] = field(default_factory=list)
    _reconcile_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _lease_pool: ThreadPoolExecutor | None = None
    _idle: dict[str, Idle] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _change_id: int = 0
    #: Threads of the telemetry and the plan store (None: not opened yet).
    _io: tuple[StoreIO, StoreIO] | None = None
    #: How the lease thread kept up (benchmarks, logs).
    lease_stats: LeaseStats = field(default_factory=LeaseStats)

    # ------------------------------------------------------------------ running
    async def run(self) -> None:
        """Reconcile, then follow the change log until cancelled (controllers are stopped
        without release, as a crash would: the boxes execute the schedule, then fall back)."""
        self._loop = asyncio.get_running_loop()
        self._change_id = await asyncio.to_thread(self.source.last_change_id)
        tasks = []
        stop_renewing, renewer = threading.Event(), None
        taken: set[str] = set()
        if self.leases is not None:
            self._pulse = time.monotonic()
            self._site_ids = await asyncio.to_thread(self.source.site_ids)
            _, _, taken = await self._in_lease_thread(self._lease_tick)
            tasks.append(asyncio.create_task(self._pulse_loop(), name="supervisor-pulse"))
            # renewing from now on: starting many sites below must not let their leases lapse
            renewer = threading.Thread(
                target=self._renewer, args=(stop_renewing,), name="leases", daemon=True
            )
            renewer.start()
        try:
            if taken:  # a restart: every box handed on first, as in a take-over
                await self._take_over(taken)
            await self.reconcile_all()
            tasks += [
                asyncio.create_task(self._follow_changes(), name="supervisor-changes"),
                asyncio.create_task(self._publish_loop(), name="supervisor-status"),
            ]
            await asyncio.gather(*tasks)
        finally:
            self._stopping = True
            stop_renewing.set()
            if renewer is not None:
                await asyncio.to_thread(renewer.join, 10.0)
            await cancel_all([*tasks, *self._moves])
            await self.stop_all(release=False)
            with contextlib.suppress(Exception):
                await self._publish(set(self._dirty))
            if self.leases is not None:  # the controllers are stopped: hand the sites on now
                with contextlib.suppress(Exception):
                    await self._in_lease_thread(self._close_leases)
            if self._lease_pool is not None:
                self._lease_pool.shutdown(wait=False)
            if self._io is not None:  # every controller stopped: nothing is queued any more
                await asyncio.to_thread(_close_io, self._io)
                self._io = None

    async def stop_all(self, release: bool) -> None:
        """Stop every controller (``release``: hand every box back to its own logic; else,
        with leases, beat each box a last time: another process takes it over)."""
        farewell = not release and self.leases is not None
        await self._stop_many(list(self._sites), release, farewell)

    async def reconcile_all(self) -> None:
        """Compare every site with what runs; start, reconfigure or release."""
        ids = set(await asyncio.to_thread(self.source.site_ids))
        self._site_ids = sorted(ids)
        spread = self._first_spread(sum(self.holds(s) and s not in self._sites for s in ids))
        for site_id in sorted(ids | set(self._sites)):
            if self.holds(site_id) or site_id in self._sites or site_id in self._idle:
                await self.reconcile(site_id, "started", spread)
        for site_id in set(self._idle) - ids:
            del self._idle[site_id]

    def holds(self, site_id: str) -> bool:
        """Does this process run ``site_id`` (always, without leases)?"""
        return self.leases is None or site_id in self._held

    async def reconcile(self, site_id: str, reason: str, spread_s: float = 0.0) -> None:
        """Make what runs for ``site_id`` equal to what the source says should run
        (``spread_s``: a site started plans first within it, by its id)."""
        async with self._reconcile_lock:  # the change follower and the lease task both call
            await self._reconcile(site_id, reason, spread_s=spread_s)

    async def _reconcile(
        self,
        site_id: str,
        reason: str,
        desired: SiteSpec | Idle | None = None,
        gate: asyncio.Event | None = None,
        spread_s: float = 0.0,
    ) -> None:
        """``desired``: already read; ``gate``: a site started hands its box on, then waits
        for it before starting (see :meth:`_take_over`)."""
        if not self.holds(site_id):  # another control process runs it
            self._idle.pop(site_id, None)
            if site_id in self._sites:
                await self._stop(site_id, release=False, farewell=site_id in self._leaving)
            return
        if desired is None:
            desired = await asyncio.to_thread(self.source.desired, site_id)
        running = self._sites.get(site_id)
        if isinstance(desired, Idle):
            if running is not None:
                log.info("%s: releasing the box (%s)", site_id, desired.why)
                await self._stop(site_id, release=True, discard=not desired.exists)
            if desired.exists:
                self._idle[site_id] = desired
                self._dirty.add(site_id)
            else:
                self._idle.pop(site_id, None)
            return
        self._idle.pop(site_id, None)
        if running is not None and running.spec.link == desired.link:
            if running.spec != desired:
                running.spec = desired
                running.controller.reconfigure(desired.config, reason)
            return
        if running is not None:
            await self._stop(site_id, release=True)
        self._start(desired, gate, spread_s * _fraction(site_id))

    def prices_changed(self, site_ids: Iterable[str] | None = None) -> None:
        """New prices arrived (callable from any thread): replan the sites (default: all)."""
        loop = self._loop
        if loop is None:
            return
        wanted = None if site_ids is None else set(site_ids)

        def trigger() -> None:
            for site_id, managed in self._sites.items():
                if wanted is None or site_id in wanted:
                    managed.controller.trigger("new prices")

        loop.call_soon_threadsafe(trigger)

    # ------------------------------------------------------------------ status
    def status(self, site_id: str) -> SiteStatus:
        """The site's control state now (see :data:`STATE_TEXT`)."""
        now = _iso(self.clock.now())
        idle = self._idle.get(site_id)
        managed = self._sites.get(site_id)
        if managed is None:
            state: StateName = "not_configured" if idle is None else idle.state
            text = STATE_TEXT[state] if idle is None else f"{STATE_TEXT[state]}: {idle.why}"
            return SiteStatus(site_id, state, text, updated_at=now)
        health = managed.controller.link_health
        report = managed.last_report
        error = health.error or (report.error if report is not None and not report.ok else "")
        if health.unreachable or health.box_state is None:
            state = "unreachable"
        elif health.box_state == ControlState.REMOTE_LIVE:
            state = "remote"
        elif health.box_state == ControlState.SCHEDULE:
            state = "schedule_only"
        else:
            state = "fallback"
        text = STATE_TEXT[state]
        if state == "unreachable" and health.box_state is None and not error:
            text = "connecting to the box"
        return SiteStatus(
            site_id,
            state,
            text,
            managed.spec.link.kind,
            None if health.last_contact is None else _iso(health.last_contact),
            None if managed.last_plan_at is None else _iso(managed.last_plan_at),
            error or None,
            now,
            () if report is None else report.reasons,
        )

    @property
    def running(self) -> dict[str, SiteController]:
        """The controllers by site id."""
        return {k: m.controller for k, m in self._sites.items()}

    # ------------------------------------------------------------------ internals
    def _start(
        self, spec: SiteSpec, gate: asyncio.Event | None = None, first_delay_s: float = 0.0
    ) -> None:
        prices, weather = self.feeds(spec, self.clock)
        controller = SiteController(
            spec.config,
            self.clock,
            self.store,
            prices,
            self.executor,
            weather=weather,
            client=self.links(spec, self.clock),
            plan_store=self.plan_store,
        )
        controller.keep_history = self.keep_history
        controller.store_io, controller.plan_io = self._store_io()
        if isinstance(controller.client, PullLink):
            controller.client.io = controller.store_io
        controller.first_cycle_delay_s = first_delay_s
        if self.leases is not None:
            site_id = spec.site_id
            controller.may_write = lambda: self._may_write(site_id)
            controller.may_beat = lambda: self._may_beat(site_id)
            controller.fence = lambda: self._fence(site_id)
            controller.keep_alive_max_s = lease_keep_alive_s(
                spec.config.watchdog_timeout_s, self.leases.ttl_ms / 1000
            )
            controller.plan_fence = lambda: self._plan_fence(site_id)
        managed = _Managed(spec, controller, handed_on=None if gate is None else asyncio.Event())
        controller.on_report = lambda report: self._reported(managed, report)
        managed.task = asyncio.create_task(
            self._keep_started(managed, gate), name=f"{spec.site_id}-start"
        )
        self._sites[spec.site_id] = managed
        self._dirty.add(spec.site_id)

    async def _keep_started(self, managed: _Managed, gate: asyncio.Event | None) -> None:
        """Start the controller (with a ``gate``: hand the box on, then wait for the gate); a
        box that cannot be reached is retried every ``retry_s``."""
        while True:
            try:
                if gate is not None and managed.handed_on is not None:
                    try:
                        await managed.controller.hand_on()
                    finally:
                        managed.handed_on.set()
                    await gate.wait()
                await managed.controller.start()
                managed.started = True
                return
            except NotOwner:
                return  # the lease went while starting: the site is being handed on
            except BoxError as exc:
                managed.controller.link_health.failed(exc)
                managed.controller.link_health.unreachable = True
                self._dirty.add(managed.spec.site_id)
                with contextlib.suppress(BoxError):
                    await managed.controller.client.close()
                gate = None
                await asyncio.sleep(self.config.retry_s)

    def _first_spread(self, n: int) -> float:
        """How long [s, the controllers' clock] ``n`` sites started at once spread their first
        cycles over: their solves and store writes do not all queue at the same instant."""
        if n <= 1:
            return 0.0
        cfg = self.config
        return min(n * cfg.first_cycle_spacing_s, cfg.first_cycle_spread_max_s)

    def _store_io(self) -> tuple[StoreIO, StoreIO]:
        """The threads of the telemetry and the plan store, shared by every controller."""
        if self._io is None:
            self._io = (
                StoreIO("telemetry", store_threads(self.store)),
                StoreIO("plans", store_threads(self.plan_store)),
            )
        return self._io

    def _reported(self, managed: _Managed, report: CycleReport) -> None:
        managed.last_report = report
        if report.ok:
            managed.last_plan_at = report.time.timestamp()
            if self.on_plan is not None:
                self.on_plan(managed.spec.site_id)
        self._dirty.add(managed.spec.site_id)

    async def _stop(
        self, site_id: str, release: bool, discard: bool = False, farewell: bool = False
    ) -> None:
        """``farewell``: another process takes the box over; beat it once more at the end
        (while this process's lease allows), so its watchdog is fresh for the new owner."""
        managed = self._sites.pop(site_id, None)
        if managed is None:
            return
        if managed.task is not None and not managed.task.done():
            await cancel_all([managed.task])
        if managed.started:
            await managed.controller.stop(release=release, discard=discard, farewell=farewell)
        else:  # maybe handed on and beating, not started: no release of a box never run
            with contextlib.suppress(BoxError):
                await managed.controller.stop(release=False, farewell=farewell)
        self._dirty.add(site_id)

    # ------------------------------------------------------------------ leases
    def _renewer(self, stop: threading.Event) -> None:
        """The lease thread: a tick every ``lease_renew_s`` on the controllers' clock.

        A thread, not a task: a fleet's cycles can keep the event loop busy for seconds (the
        problems are built there), and a late renewal would hand healthy sites around. It stops
        renewing when the event loop has not run for :data:`LOOP_STALL_S`, so a hung process
        loses its sites like a dead one.
        """
        due = self._next_tick()
        while not stop.wait(0.05):
            if self.clock.now() < due:
                continue
            self._count_tick(self.clock.now() - due)
            due = self.clock.now() + self.config.lease_renew_s
            stalled = time.monotonic() - self._pulse
            if stalled > LOOP_STALL_S:
                log.error("event loop stalled for %.0f s: not renewing the leases", stalled)
                continue
            try:
                t0 = time.monotonic()
                moves = self._lease_tick()
                self._ticked = (t0, time.monotonic())
            except Exception:  # the database may be away: the leases then lapse, writes stop
                log.exception("supervisor: lease renewal failed")
                continue
            due = self._next_tick()
            if self._loop is not None and any(moves):
                self._loop.call_soon_threadsafe(self._spawn_moves, *moves)

    def _count_tick(self, late_s: float) -> None:
        stats = self.lease_stats
        stats.ticks += 1
        stats.max_late_s = max(stats.max_late_s, late_s)
        if late_s > self.config.lease_renew_s / 2:
            stats.late_ticks += 1
            log.warning("lease renewal %.1f s late (controllers' clock)", late_s)

    def _next_tick(self) -> float:
        """When the lease thread ticks next [s, the controllers' clock]: a renew period on, or
        just after a peer's heartbeat expires (it stopped renewing: its sites are free then,
        and every second counts against the watchdog of its boxes)."""
        due = self.clock.now() + self.config.lease_renew_s
        peer = None if self.leases is None else self.leases.peer_expiry
        if peer is not None and peer < due:  # past already if it expired during the tick
            return peer + PEER_EXPIRY_MARGIN_S
        return due

    def _lease_tick(self) -> tuple[set[str], set[str], set[str]]:
        """Renew, then take a fair share (blocking). Returns the sites lost, the surplus to
        hand on (not written from now on, released once stopped) and the sites taken."""
        leases = self.leases
        assert leases is not None
        now_s = self.clock.now()
        now = datetime.fromtimestamp(now_s, UTC)
        with self._lease_mutex:
            expired = [s for s, lease in leases.held().items() if lease.expires_at <= now_s]
            if expired:
                self.lease_stats.expired_held += len(expired)
                log.error("%d leases expired while held (renewal too late)", len(expired))
            renewal = leases.renew(now, give_up=False)
            self.lease_stats.lost += len(renewal.lost)
            # a batch at a time, the next once it is handed on: the rest keep running
            hand_on, stuck = set(), set()
            if not self._leaving:
                hand_on = set(sorted(renewal.released)[:HANDOVER_BATCH])
                self._leaving_ticks = 0
            else:
                self._leaving_ticks += 1
                if self._leaving_ticks > STUCK_TICKS:  # never finished: run them again
                    log.error("handing on %s did not finish; keeping them", sorted(self._leaving))
                    stuck, self._leaving = set(self._leaving), set()
            self._leaving |= hand_on
            self._set_held(leases.held())
        with self._lease_mutex:  # the ids the loop last read: no account-database wait here
            taken = leases.acquire(self._site_ids, now)
            self._set_held(leases.held())
        return set(renewal.lost), hand_on, taken | (stuck & set(self._held))

    def _set_held(self, held: dict[str, Lease]) -> None:
        """The leases now held (lease thread, under the mutex): the sites being handed on are
        beaten until they stop but no longer run or written otherwise."""
        self._beatable = held
        self._held = {k: v for k, v in held.items() if k not in self._leaving}

    def _spawn_moves(self, lost: set[str], surplus: set[str], taken: set[str]) -> None:
        if self._stopping:
            return
        for site_id in sorted(lost):
            log.warning("%s: lease lost to another control process; stopping", site_id)
        if taken:
            t0, t1 = self._ticked
            log.info(
                "took the leases of %d sites (tick %.2f s, moves %.2f s later, real)",
                len(taken), t1 - t0, time.monotonic() - t1,
            )  # fmt: skip
        task = asyncio.create_task(self._move_sites(lost, surplus, taken), name="supervisor-moves")
        self._moves.add(task)
        task.add_done_callback(self._moves.discard)

    async def _pulse_loop(self) -> None:
        while True:
            self._pulse = time.monotonic()
            await asyncio.sleep(1.0)

    async def _move_sites(self, lost: set[str], surplus: set[str], taken: set[str]) -> None:
        """Stop the sites lost and the surplus, release the surplus, start the sites taken."""
        released = False
        try:
            await self._drop(lost, farewell=False)
            await self._drop(surplus, farewell=True)
            if surplus:
                await self._in_lease_thread(self._release, surplus)
                released = True
                log.info("handed %d sites to other control processes", len(surplus))
        except Exception:
            log.exception("supervisor: handing sites on failed")
        if surplus and not released:  # still ours: run them again
            await self._in_lease_thread(self._keep, surplus)
            for site_id in sorted(surplus):
                await self.reconcile(site_id, "kept")
        if taken:
            await self._take_over(taken)

    async def _take_over(self, taken: set[str]) -> None:
        """Start the sites taken: every box handed on first, all at once (connected, lock
        claimed, watchdog refreshed: it keeps the last plan), then the controllers start
        (prices, history, the first solve), so no box waits for another site's solve."""
        ids, t0 = sorted(taken), time.monotonic()
        specs = await self._desired_of(ids)
        t_read = time.monotonic() - t0
        gate = asyncio.Event()
        handing: list[asyncio.Event] = []
        spread = self._first_spread(len(ids))
        async with self._reconcile_lock:
            for site_id in ids:
                try:
                    await self._reconcile(site_id, "taken over", specs.get(site_id), gate, spread)
                except Exception:
                    log.exception("%s: starting a site taken over failed", site_id)
                managed = self._sites.get(site_id)
                if managed is not None and managed.handed_on is not None:
                    handing.append(managed.handed_on)
        try:
            if handing:  # a box slow to answer holds the others no longer than a renew tick
                waits = [asyncio.create_task(_all_set(handing)), asyncio.create_task(
                    self.clock.sleep_until(self.clock.now() + self.config.lease_renew_s)
                )]  # fmt: skip
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                await cancel_all(waits)
        finally:
            gate.set()
        done = sum(e.is_set() for e in handing)
        log.info(
            "took over %d sites: read in %.2f s, %d of %d boxes handed on after %.2f s (real)",
            len(ids), t_read, done, len(handing), time.monotonic() - t0,
        )  # fmt: skip

    async def _desired_of(self, site_ids: list[str]) -> dict[str, SiteSpec | Idle]:
        """What should run for each site, read on several threads at once: a busy event loop
        holds the GIL, and each read waits for it at every query; side by side they wait
        together. A site whose read fails is read again when it starts."""
        read = await asyncio.gather(
            *(asyncio.to_thread(self.source.desired, s) for s in site_ids), return_exceptions=True
        )
        desired: dict[str, SiteSpec | Idle] = {}
        for site_id, spec in zip(site_ids, read, strict=True):
            if isinstance(spec, BaseException):
                log.error("%s: reading the site failed: %r", site_id, spec)
            else:
                desired[site_id] = spec
        return desired

    async def _drop(self, site_ids: set[str], farewell: bool) -> None:
        """Stop running sites another process runs now (no release: the boxes are theirs),
        all at once; ``farewell``: the lease is still ours, beat each box a last time."""
        async with self._reconcile_lock:
            for site_id in site_ids:
                self._idle.pop(site_id, None)
            await self._stop_many(sorted(site_ids), False, farewell)
            self._dirty -= site_ids

    async def _stop_many(self, site_ids: list[str], release: bool, farewell: bool) -> None:
        """:meth:`_stop` the sites side by side: each box's last beat comes without waiting
        for the others' stops."""
        stops = [self._stop(s, release, farewell=farewell) for s in site_ids]
        done = await asyncio.gather(*stops, return_exceptions=True)
        for site_id, error in zip(site_ids, done, strict=True):
            if isinstance(error, BaseException):
                log.error("%s: stopping failed: %r", site_id, error)

    def _close_leases(self) -> None:
        assert self.leases is not None
        with self._lease_mutex:
            self.leases.close()

    def _release(self, site_ids: set[str]) -> None:
        assert self.leases is not None
        with self._lease_mutex:
            self.leases.release(site_ids)
            self._leaving -= site_ids
            self._set_held(self.leases.held())

    def _keep(self, site_ids: set[str]) -> None:
        assert self.leases is not None
        with self._lease_mutex:
            self._leaving -= site_ids
            self._set_held(self.leases.held())

    async def _in_lease_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run a lease call on the supervisor's own thread: never queued behind the other
        blocking calls (account reads, status writes) in the default pool."""
        if self._lease_pool is None:
            self._lease_pool = ThreadPoolExecutor(1, thread_name_prefix="leases")
        return await asyncio.get_running_loop().run_in_executor(self._lease_pool, fn, *args)

    def _may_write(self, site_id: str, held: dict[str, Lease] | None = None) -> bool:
        """The lease is ours with a margin left (clock skew, a write batch in flight)."""
        lease = (self._held if held is None else held).get(site_id)
        if lease is None or self.leases is None:
            return False
        margin_s = self.leases.ttl_ms / 1000 / LEASE_MARGIN_DIVISOR
        return lease.expires_at - self.clock.now() > margin_s

    def _may_beat(self, site_id: str) -> bool:
        """:meth:`_may_write` for the heartbeat: also while the site is being handed on."""
        return self._may_write(site_id, self._beatable)

    def _plan_fence(self, site_id: str) -> LeaseFence:
        """The lease a plan or setpoint write of ``site_id`` is made under (version -1, which
        no lease row has, when this process does not hold it)."""
        assert self.leases is not None
        lease = self._held.get(site_id)
        now_ms = round(self.clock.now() * 1000)
        version = -1 if lease is None else lease.version
        return LeaseFence(site_id, self.leases.holder, version, now_ms)

    async def _fence(self, site_id: str) -> bool:
        """:meth:`_may_write`, then the fencing token checked in the database."""
        lease = self._held.get(site_id)
        if lease is None or self.leases is None or not self._may_write(site_id):
            return False
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        return bool(await self._in_lease_thread(self._check, lease, now))

    def _check(self, lease: Lease, now: datetime) -> bool:
        assert self.leases is not None
        with self._lease_mutex:
            return self.leases.check(lease, now)

    async def _follow_changes(self) -> None:
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(self.config.change_poll_s)
            try:
                rows = await asyncio.to_thread(self.source.changes_since, self._change_id)
                if rows:
                    self._change_id = rows[-1][0]
                if any(site is None for _, site, _ in rows) or (
                    time.monotonic() - last_full > self.config.reconcile_s
                ):
                    last_full = time.monotonic()
                    await self.reconcile_all()
                    continue
                reasons: dict[str, str] = {}
                for _, site_id, what in rows:
                    assert site_id is not None
                    reasons.setdefault(site_id, CHANGE_REASONS.get(what, "settings changed"))
                    if site_id not in self._site_ids:  # a new site: leased from the next tick
                        self._site_ids = sorted({*self._site_ids, site_id})
                for site_id, reason in reasons.items():
                    await self.reconcile(site_id, reason)
            except Exception:  # the supervisor must outlive a database hiccup
                log.exception("supervisor: reading changes failed")

    async def _publish_loop(self) -> None:
        last_all = time.monotonic()
        while True:
            await asyncio.sleep(self.config.status_flush_s)
            ids = set(self._dirty)
            if time.monotonic() - last_all > self.config.status_refresh_s:
                ids |= set(self._sites)
                last_all = time.monotonic()
            self._dirty.clear()
            ids = {i for i in ids if self.holds(i)}  # the owner's process publishes the rest
            if not ids:
                continue
            try:
                await self._publish(ids)
            except Exception:
                log.exception("supervisor: publishing the status failed")
                self._dirty |= ids

    async def _publish(self, ids: set[str]) -> None:
        statuses = [self.status(i) for i in sorted(ids)]  # in the loop: it owns the state
        controllers = [self._sites.get(s.site_id) for s in statuses]
        pairs = [
            (s, None if m is None else m.controller)
            for s, m in zip(statuses, controllers, strict=True)
        ]
        await asyncio.to_thread(self._publish_blocking, pairs)

    def _publish_blocking(self, pairs: list[tuple[SiteStatus, SiteController | None]]) -> None:
        """The status hook (account reads, sessions recorded: database calls) and the statuses
        stored, on a thread; one publish at a time (the hook keeps state per site)."""
        with self._publish_mutex:
            if self.on_status is not None:
                for status, controller in pairs:
                    try:
                        self.on_status(status, controller)
                    except Exception:  # owner messages must never stop the control loop
                        log.exception("supervisor: status hook failed for %s", status.site_id)
            self.source.publish_status([status for status, _ in pairs])


def lease_keep_alive_s(watchdog_s: float, lease_ttl_s: float) -> float:
    """The heartbeat period [s] of a controller whose site is leased.

    A box whose process died is beaten next by the process that takes its lease over: up to
    one lease period after the process's last renewal. Its watchdog must outlast that and the
    age of the last heartbeat, so the heartbeat period is a third of what the watchdog
    outlasts the lease by (10 s with a 60 s watchdog and a 30 s lease), at least 1 s.
    """
    return max((watchdog_s - lease_ttl_s) / 3, 1.0)


def _fraction(site_id: str) -> float:
    """A site's place in [0, 1), the same in every process and run."""
    return zlib.crc32(site_id.encode()) / 2**32


def _close_io(io: tuple[StoreIO, StoreIO]) -> None:
    for each in io:
        each.close()


async def _all_set(events: list[asyncio.Event]) -> None:
    for event in events:
        await event.wait()


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat()
