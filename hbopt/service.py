"""The service: the API and the control loop of every paired site, wired together.

``hbopt serve``
    The API (uvicorn) and the control loop in one process: the control loop runs on its own
    event loop in a thread, so the API's event loop never waits for it; solves run in a local
    process pool (default) or on Dask (``HBOPT_SOLVER_BACKEND=dask``).
``hbopt serve --no-api`` / ``hbopt control``
    The control loop alone, on the same database as an API process started elsewhere; it sees
    every change through the account database's change log (polled every second).

This module is the composition root: the only place that knows the account database, the
telemetry store, the feeds, the box links and the solver pool at once. Prices and weather are
built by :class:`FeedBook` (swap :func:`build_feeds` to plug in live sources); the price job
below refreshes them and replans the sites whose prices grew.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.config
import os
import signal
import socket
import sqlite3
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
import uvicorn
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.heartbeat.client import HeartbeatClient
from adapters.store import TelemetryStore
from api.accounts_store import AccountStore
from api.cli import check_data_dirs
from api.connections import uvicorn_config
from api.logging_config import service_log_config
from api.main import create_app, mailer_from_settings, open_plan_store, store_from_settings
from api.notify import notifier_for
from api.routers.dashboard import DASHBOARD_PATH
from api.schemas import TradingParameters
from api.settings import Settings
from api.site_problem import stored_preferences, stored_tariff
from core.errors import CliError
from notifications import (
    Event,
    NotificationStore,
    Notifier,
    SiteRef,
    SiteSnapshot,
    SiteWatch,
    negative_prices_event,
)
from pricing import SiteExportRules, Tariff
from scheduler.clock import LoopClock, RealClock, ScaledRealClock
from scheduler.controller import DepartureTarget, SiteConfig, SiteController
from scheduler.feeds import BundledWeather, PriceFeed
from scheduler.fleet import FleetConfig, FleetRunner, RenewingExecutor
from scheduler.frame_feeds import WeatherFeed
from scheduler.inputs import LiveInputs
from scheduler.leases import LeaseManager
from scheduler.leases import make_engine as make_lease_engine
from scheduler.links import BoxLink, PullLink
from scheduler.runtime import (
    Feeds,
    Idle,
    LinkSpec,
    RuntimeConfig,
    SiteSpec,
    SiteStatus,
    Supervisor,
)
from scheduler.site_model import SiteEquipment, configured_target_kwh, has_owner_plan, site_home

log = logging.getLogger("hbopt.service")


class ControlSettings(BaseSettings):
    """Settings of the control loop (environment, prefix ``HBOPT_``; durations in seconds)."""

    model_config = SettingsConfigDict(env_prefix="HBOPT_", env_file=None, extra="ignore")

    solver_backend: Literal["process", "dask"] = Field(
        default="process", description="Local process pool, or a Dask cluster"
    )
    solver_workers: int = Field(default=2, ge=1, description="Pool size (or LocalCluster workers)")
    dask_scheduler: str | None = Field(
        default=None, description="tcp://host:8786 of a Dask scheduler; unset: a LocalCluster"
    )
    watchdog_timeout_s: int = Field(default=60, ge=10, le=3600)
    poll_s: float = Field(default=60.0, gt=0, description="Box reads between cycles")
    horizon_slots: int = Field(
        default=144, ge=4, le=192, description="Plan length [15 min]: 36 h sees tomorrow evening"
    )
    schedule_slots: int = Field(default=96, ge=1, le=192, description="Slots sent to the box")
    pull_offline_after_s: float = Field(
        default=900.0, gt=0, description="A pull box without telemetry this long is unreachable"
    )
    controller_id: int = Field(default=1, ge=1, le=65535, description="Single-writer lock id")
    cycle_lead_s: float = Field(
        default=120.0,
        ge=0,
        le=600,
        description="Timer cycles start up to this long before their slot (spread by site) and "
        "apply the plan when it begins, so the fleet's solves do not all start at once",
    )
    change_poll_s: float = Field(default=1.0, gt=0, le=60, description="Change-log polling")
    price_refresh_s: float = Field(default=900.0, gt=0, description="Price job period")
    telemetry_maintenance_s: float = Field(default=3600.0, gt=0, description="Retention job")
    clock_speed: float = Field(
        default=1.0, gt=0, description="Accelerated clock for demos and tests (1 = real time)"
    )
    clock_start: datetime | None = Field(
        default=None, description="Simulated time at clock_anchor (UTC); unset: now"
    )
    clock_anchor: float | None = Field(
        default=None, description="Wall-clock UNIX time at which the clock reads clock_start"
    )
    leases: bool = Field(
        default=True,
        description="Share the sites with other control processes through leases in the "
        "database; off: this process runs every site (the demo on its stepped clock)",
    )
    lease_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="Lease period: the sites of a control process that stopped renewing are "
        "taken over after at most this plus one renew period (keep it under 2/3 of the watchdog)",
    )
    lease_renew_s: float = Field(
        default=5.0, gt=0, description="Lease renew (and take-over) period, at most a third of it"
    )
    process_name: str | None = Field(
        default=None, description="This control process's name in the lease table; unset: host:pid"
    )

    @model_validator(mode="after")
    def _lease_timing(self) -> ControlSettings:
        if self.lease_renew_s > self.lease_ttl_s / 3:
            raise ValueError(
                f"HBOPT_LEASE_RENEW_S: {self.lease_renew_s} s is more than a third of "
                f"HBOPT_LEASE_TTL_S ({self.lease_ttl_s} s): a lease could lapse between renewals"
            )
        return self


def loop_clock(settings: ControlSettings) -> LoopClock:
    """The control loop's clock: the wall clock, or an accelerated one."""
    if settings.clock_speed == 1.0 and settings.clock_start is None:
        return RealClock()
    start = (settings.clock_start or datetime.now(UTC)).timestamp()
    return ScaledRealClock(start, settings.clock_speed, settings.clock_anchor)


def utc_clock(clock: LoopClock) -> Callable[[], datetime]:
    """The API's ``() -> datetime`` on the control loop's clock."""
    return lambda: datetime.fromtimestamp(clock.now(), UTC)


# ---------------------------------------------------------------------- feeds
@dataclass
class SharedPriceFeed(PriceFeed):
    """A :class:`PriceFeed` many sites share: one refresh at a time, and none again for
    ``min_interval_s`` real seconds (every controller refreshes once when it starts)."""

    min_interval_s: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last: tuple[float, pd.Timestamp, pd.Timestamp] | None = field(default=None, repr=False)

    def refresh(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        with self._lock:
            last = self._last
            fresh = last is not None and time.monotonic() - last[0] < self.min_interval_s
            if fresh and last is not None and last[1] <= start and end <= last[2]:
                return False
            self._last = (time.monotonic(), start, end)
            return super().refresh(start, end)


@dataclass
class FeedBook:
    """Prices per tariff and the weather, shared by the sites that use them.

    The one place the control loop's inputs are built: :meth:`factory` is the
    :data:`~scheduler.runtime.FeedFactory` the supervisor calls per site; :meth:`refresh`
    is the price job (it returns the sites whose known prices grew, to replan). This book plans
    on the bundled prices and measured weather (demo, tests, backtests);
    :class:`LiveFeedBook` on live prices and forecasts.
    """

    clock: LoopClock
    _prices: dict[Hashable, PriceFeed] = field(default_factory=dict)
    _sites: dict[Hashable, set[str]] = field(default_factory=dict)
    _weather: BundledWeather = field(default_factory=BundledWeather)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def factory(self, spec: SiteSpec, clock: LoopClock) -> Feeds:
        home = spec.config.home
        tariff, rules = home.retail_tariff(), home.export_rules()
        # sites on the same tariff, rules and zone share one feed (repr: tariffs are frozen
        # dataclasses, equal by value)
        key = (tariff.bidding_zone, repr(tariff), rules)
        with self._lock:
            feed = self._prices.get(key)
            if feed is None:
                feed = self._prices[key] = self.price_feed(tariff, rules)
            self._sites.setdefault(key, set()).add(spec.site_id)
        return Feeds(feed, self.weather_for(spec))

    def price_feed(self, tariff: Tariff, rules: SiteExportRules) -> PriceFeed:
        """Prices of one tariff (bundled day-ahead prices as published by the clock's time)."""
        clock = self.clock
        feed = PriceFeed.bundled(
            tariff, rules, lambda: pd.Timestamp(clock.now(), unit="s", tz="UTC")
        )
        return SharedPriceFeed(feed.spot, feed.carbon, feed.tariff, feed.rules)

    def weather_for(self, spec: SiteSpec) -> WeatherFeed:
        """Weather at the site (the bundled measured series for every site)."""
        return self._weather

    def refresh(self) -> list[str]:
        """Refresh every price feed (blocking); the sites whose known prices grew."""
        now = pd.Timestamp(self.clock.now(), unit="s", tz="UTC").floor("15min")
        grown: list[str] = []
        with self._lock:
            items = list(self._prices.items())
        for key, feed in items:
            try:
                if feed.refresh(now, now + pd.Timedelta(days=2)):
                    grown += sorted(self._sites.get(key, ()))
            except Exception:  # the cached prices stay in use
                log.warning("price refresh failed for %s", key, exc_info=True)
        return grown


@dataclass
class LiveFeedBook(FeedBook):
    """Live inputs: the zone's stored day-ahead prices (ENTSO-E, SMARD, bundled history; flagged
    estimates where none is known) and the Open-Meteo forecast at each site's location
    (clear sky and climatology, flagged, without one). :meth:`ControlLoop.run` runs the
    price jobs and the weather refresh of :attr:`inputs`."""

    inputs: LiveInputs | None = None

    def price_feed(self, tariff: Tariff, rules: SiteExportRules) -> PriceFeed:
        assert self.inputs is not None
        return self.inputs.price_feed(tariff.bidding_zone, tariff, rules)

    def weather_for(self, spec: SiteSpec) -> WeatherFeed:
        assert self.inputs is not None
        system = spec.config.home.pv_system
        return self.inputs.site_weather(system.latitude, system.longitude)


def build_feeds(clock: LoopClock, settings: Settings | None = None) -> FeedBook:
    """The service's feeds: live prices and weather when ``settings.input_jobs`` is on (the
    default), else the bundled data only."""
    if settings is None or not settings.input_jobs:
        return FeedBook(clock)
    inputs = LiveInputs(
        settings.input_settings(),
        clock=lambda: pd.Timestamp(clock.now(), unit="s", tz="UTC"),
        sleep=lambda seconds: clock.sleep_until(clock.now() + seconds),
    )
    return LiveFeedBook(clock, inputs=inputs)


# ---------------------------------------------------------------------- the site source
@dataclass
class AccountsSource:
    """The supervisor's :class:`~scheduler.runtime.SiteSource` on the account database."""

    accounts: AccountStore
    settings: ControlSettings
    #: PV from the weather feed (live forecasts); else clear sky scaled by recent production
    live_weather: bool = False

    def site_ids(self) -> list[str]:
        return [s.id for s in self.accounts.all_sites()]

    def last_change_id(self) -> int:
        return self.accounts.last_change_id()

    def changes_since(self, change_id: int) -> list[tuple[int, str | None, str]]:
        return self.accounts.changes_since(change_id)

    def publish_status(self, statuses: list[SiteStatus]) -> None:
        now = datetime.now(UTC)
        for status in statuses:
            self.accounts.set_site_status(status.site_id, status.to_json(), now)

    def desired(self, site_id: str) -> SiteSpec | Idle:
        accounts = self.accounts
        site = accounts.get_site(site_id)
        if site is None:
            return Idle(site_id, "not_configured", "the site was deleted", exists=False)
        if not accounts.optimization_enabled(site_id):
            return Idle(site_id, "off", "the owner switched optimization off")
        boxes = [b for b in accounts.boxes_of_site(site_id) if b.revoked_at is None]
        if not boxes:
            return Idle(site_id, "not_configured", "no box is paired")
        doc = accounts.get_equipment(site_id)
        if doc is None:
            return Idle(site_id, "not_configured", "the equipment is not entered yet")
        equipment = SiteEquipment.model_validate_json(doc.equipment_json)
        preferences = stored_preferences(accounts, site_id)
        link_doc = accounts.box_link(boxes[-1].serial)
        link = (
            LinkSpec("pull")
            if link_doc is None
            else LinkSpec("modbus", link_doc.host, link_doc.port, link_doc.unit)
        )
        config = self._config(site_id, site.timezone, site.fleet_group, equipment, preferences)
        config = replace(config, host=link.host, port=link.port, device_id=link.unit)
        return SiteSpec(config, link, site.timezone)

    def _config(
        self, site_id: str, tz: str, group: str, equipment: SiteEquipment, preferences: Any
    ) -> SiteConfig:
        s = self.settings
        home = site_home(equipment, preferences, stored_tariff(self.accounts, site_id).tariff)
        doc = self.accounts.get_site_parameters(site_id) or self.accounts.get_group_parameters(
            group
        )
        params = (
            TradingParameters()
            if doc is None
            else TradingParameters.model_validate_json(doc.parameters_json)
        )
        departure, mode = DepartureTarget(tz=tz), SiteConfig(site_id).charging_mode
        owner_plan = None
        if equipment.wallboxes:
            w = equipment.wallboxes[0]
            pref = preferences.wallboxes.get(w.name)
            local = "07:00"
            if pref is not None and pref.departure is not None:
                local = pd.Timestamp(pref.departure).tz_convert(tz).strftime("%H:%M")
            departure = DepartureTarget(
                local,
                configured_target_kwh(w, pref),
                min(w.car_arrival_kwh, w.car_capacity_kwh),
                w.car_capacity_kwh,
                tz,
            )
            mode = pref.mode if pref is not None else mode
            if has_owner_plan(pref):
                owner_plan = pref
        return SiteConfig(
            site_id,
            controller_id=s.controller_id,
            home=home,
            tuning=params.to_tuning(),
            charging_mode=mode,
            departure=departure,
            horizon_slots=s.horizon_slots,
            schedule_slots=min(s.schedule_slots, s.horizon_slots),
            watchdog_timeout_s=s.watchdog_timeout_s,
            poll_s=s.poll_s,
            lead_s=s.cycle_lead_s * (zlib.crc32(site_id.encode()) / 2**32),
            # the service's price job refreshes the shared feeds and replans; not each site
            price_refresh_s=365 * 86400.0,
            pv_forecast="weather" if self.live_weather else "clearsky",
            owner_plan=owner_plan,
        )


def open_stores(
    settings: Settings, clock: LoopClock, attempts: int = 5
) -> tuple[AccountStore, TelemetryStore]:
    """The account database and the telemetry store, migrated.

    An API process starting at the same moment migrates the same fresh files; the loser of
    that race sees a table the winner just created and simply opens again.
    """
    for attempt in range(attempts):
        try:
            accounts = AccountStore(settings.accounts_url())
            store = store_from_settings(settings, utc_clock(clock))
            break
        except (sqlite3.OperationalError, sa.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    if store is None:
        accounts.close()
        raise CliError("HBOPT_TELEMETRY_BACKEND=none: the control loop needs a store")
    return accounts, store


def open_leases(settings: Settings, control: ControlSettings) -> LeaseManager:
    """This process's side of the site leases (tables created if missing).

    Every control process of a fleet writes the same ``controller_id``: the lease decides which
    process runs a box, and the box binds its single-writer lock to the connection that
    claimed it last, so a taken-over process that still writes on its old connection is
    refused (exception 06) -- the last line of defence behind the fencing token.
    """
    name = control.process_name or f"{socket.gethostname()}:{os.getpid()}"
    ttl = control.lease_ttl_s
    if ttl + control.lease_renew_s >= control.watchdog_timeout_s * 2 / 3:
        log.warning(
            "lease %.0f s + renew %.0f s is not under 2/3 of the %d s watchdog: boxes may fall "
            "back while their sites are taken over",
            ttl,
            control.lease_renew_s,
            control.watchdog_timeout_s,
        )
    return LeaseManager(make_lease_engine(settings.accounts_url()), name, ttl)


def box_links(
    store: TelemetryStore, settings: ControlSettings
) -> Callable[[SiteSpec, LoopClock], BoxLink]:
    """The link factory: a Modbus TCP client at the recorded address, else a pull link."""

    def make(spec: SiteSpec, clock: LoopClock) -> BoxLink:
        link = spec.link
        if link.kind == "modbus":
            return HeartbeatClient(
                link.host,
                link.port,
                device_id=link.unit,
                controller_id=settings.controller_id,
                clock=clock,
            )
        return PullLink(spec.site_id, store, clock, settings.pull_offline_after_s)

    return make


# ---------------------------------------------------------------------- the control loop
@dataclass
class SiteNotices:
    """Owner notifications from the control loop: each published status (and the site's
    controller) becomes a :class:`~notifications.SiteSnapshot`; a :class:`SiteWatch` per site
    finds the events, the notifier sends them once, ended car sessions are recorded."""

    accounts: AccountStore
    store: NotificationStore
    notifier: Notifier
    clock: LoopClock
    _watches: dict[str, tuple[SiteWatch, str, str]] = field(default_factory=dict)

    def __call__(self, status: SiteStatus, controller: SiteController | None) -> None:
        if status.state in ("not_configured", "off"):
            self._watches.pop(status.site_id, None)
            return
        entry = self._watches.get(status.site_id)
        if entry is None:
            site = self.accounts.get_site(status.site_id)
            if site is None:
                return
            minutes = self.store.settings(site.owner_id).offline_minutes
            entry = (SiteWatch(timedelta(minutes=minutes)), site.name, site.timezone)
            self._watches[status.site_id] = entry
        watch, name, tz = entry
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        for event in watch.observe(site_snapshot(status, controller, name, tz, now)):
            self.notifier.publish(event)
        for outcome in watch.ended_sessions:
            self.store.record_session(outcome)
        watch.ended_sessions.clear()
        if controller is not None:
            negative = tomorrow_negative_prices(controller, SiteRef(status.site_id, name, tz), now)
            if negative is not None:  # its key is the day: told once
                self.notifier.publish(negative)


def tomorrow_negative_prices(
    controller: SiteController, site: SiteRef, now: datetime
) -> Event | None:
    """The event for negative published (not estimated) spot prices tomorrow in the site's
    last plan, with what that plan does in those slots."""
    problem = controller.last_problem
    if problem is None or problem.inputs.spot_eur_per_kwh is None:
        return None
    index = problem.inputs.index
    spot = pd.Series(np.asarray(problem.inputs.spot_eur_per_kwh, dtype=float), index=index)
    flags = controller.input_flags
    if flags is not None and "price-is_estimate" in flags:
        estimated = flags["price-is_estimate"].reindex(index, fill_value=True).to_numpy(bool)
        spot = spot[~estimated]
    local_days = pd.DatetimeIndex(spot.index).tz_convert(site.tz).date
    tomorrow = (pd.Timestamp(now).tz_convert(site.tz).normalize() + pd.Timedelta(days=1)).date()
    day = spot[local_days == tomorrow]
    if len(day) < 4:  # tomorrow's prices are not published yet
        return None
    plan = controller.plans[-1][1] if controller.plans else None
    return negative_prices_event(site, now, day, plan)


def site_snapshot(
    status: SiteStatus, controller: SiteController | None, name: str, tz: str, now: datetime
) -> SiteSnapshot:
    """What the notifications need to know of a site right now."""
    ok = status.state in ("remote", "schedule_only")
    problem = {"unreachable": "unreachable", "fallback": "in fallback"}.get(status.state, "")
    snap = SiteSnapshot(status.site_id, name, tz, now, ok, problem)
    if controller is None:
        return snap
    planned = controller.last_problem
    sessions = () if planned is None else planned.state.ev_sessions
    summary = controller.last_summary
    short = [
        v for v in (summary.violations if summary else ()) if v.name.endswith("-target_energy")
    ]
    if sessions:
        s = sessions[0]
        snap = replace(
            snap,
            ev_connected=True,
            ev_energy_kwh=s.energy_kwh,
            ev_target_kwh=s.target_kwh,
            ev_departure=None
            if s.departure is None
            else pd.Timestamp(str(s.departure)).to_pydatetime(),
            ev_shortfall_kwh=sum(v.amount for v in short),
            ev_shortfall_reason="the charging power and the time until departure are not enough",
        )
    return replace(snap, grid_limit_kw=controller.last_cap_kw)


@dataclass
class ControlLoop:
    """The supervisor with its pool, feeds, price job and telemetry retention.

    ``feeds`` and ``links`` may be replaced before :meth:`run` (tests, the demo, benchmarks).
    """

    settings: Settings
    control: ControlSettings
    clock: LoopClock
    on_plan: Callable[[str], None] | None = None
    feeds: FeedBook | None = None
    links: Callable[[SiteSpec, LoopClock], BoxLink] | None = None
    supervisor: Supervisor | None = None
    runtime: RuntimeConfig | None = None
    keep_history: int | None = 8

    async def run(self) -> None:
        """Run until cancelled; stops the controllers without release (see the supervisor)."""
        accounts, store = await asyncio.to_thread(open_stores, self.settings, self.clock)
        plans = await asyncio.to_thread(open_plan_store, self.settings, accounts.engine)
        c = self.control
        leases = await asyncio.to_thread(open_leases, self.settings, c) if c.leases else None
        runner = FleetRunner(
            FleetConfig(c.solver_backend, c.solver_workers, scheduler_address=c.dask_scheduler)
        )
        await asyncio.to_thread(runner.open)
        feeds = self.feeds or build_feeds(self.clock, self.settings)
        inputs = feeds.inputs if isinstance(feeds, LiveFeedBook) else None
        runtime = self.runtime or RuntimeConfig(
            change_poll_s=c.change_poll_s, lease_renew_s=c.lease_renew_s
        )
        self.supervisor = Supervisor(
            AccountsSource(accounts, c, live_weather=inputs is not None),
            self.clock,
            store,
            RenewingExecutor(runner),
            feeds.factory,
            self.links or box_links(store, c),
            runtime,
            self.on_plan,
            self.keep_history,
            leases=leases,
            plan_store=plans,
        )
        store_n = NotificationStore(accounts.engine)  # one pool for the service database
        notifier = notifier_for(
            store_n,
            self.settings,
            mailer_from_settings(self.settings),
            accounts,
            lambda: datetime.fromtimestamp(self.clock.now(), UTC),
        )
        self.supervisor.on_status = SiteNotices(accounts, store_n, notifier, self.clock)
        new_prices = asyncio.Event()
        jobs = [
            asyncio.create_task(self._price_job(feeds, new_prices)),
            asyncio.create_task(self._retention_job(store, accounts)),
        ]
        if inputs is not None:
            # the zone's new prices are in the store: refresh the feeds and replan at once
            inputs.add_price_listener(lambda zone: new_prices.set())
            jobs.append(asyncio.create_task(inputs.run()))
        try:
            await self.supervisor.run()
        finally:
            for job in jobs:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await asyncio.to_thread(runner.close)
            await asyncio.to_thread(notifier.close)
            if inputs is not None:
                inputs.close()
            store.close()
            accounts.close()
            if leases is not None:
                leases.engine.dispose()

    def prices_changed(self, site_ids: Iterable[str] | None = None) -> None:
        """Hook for a price job elsewhere: replan these sites (default: all); any thread."""
        if self.supervisor is not None:
            self.supervisor.prices_changed(site_ids)

    async def _price_job(self, feeds: FeedBook, new_prices: asyncio.Event) -> None:
        while True:
            timer = asyncio.ensure_future(
                self.clock.sleep_until(self.clock.now() + self.control.price_refresh_s)
            )
            event = asyncio.ensure_future(new_prices.wait())
            await asyncio.wait({timer, event}, return_when=asyncio.FIRST_COMPLETED)
            for waiting in (timer, event):
                waiting.cancel()
            new_prices.clear()
            grown = await asyncio.to_thread(feeds.refresh)
            if grown:
                self.prices_changed(grown)

    async def _retention_job(self, store: TelemetryStore, accounts: AccountStore) -> None:
        while True:
            try:
                now = datetime.fromtimestamp(self.clock.now(), UTC)
                result = await asyncio.to_thread(store.maintain, now)
                dropped = await asyncio.to_thread(accounts.purge_control_changes)
                log.info("telemetry maintenance: %s; %d change-log rows dropped", result, dropped)
            except Exception:
                log.exception("telemetry maintenance failed")
            await self.clock.sleep_until(self.clock.now() + self.control.telemetry_maintenance_s)


class LoopThread:
    """A coroutine on its own event loop in a daemon thread, cancelled by :meth:`stop`."""

    def __init__(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._run = run
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = asyncio.ensure_future(self._run(), loop=self._loop)
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        # what the coroutine left behind (timers it cancelled) finishes before the loop closes
        left = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
        for task in left:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        self._loop.close()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout_s)


# ---------------------------------------------------------------------- the commands


def run_serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CliError(f"--workers: {args.workers}; give 1 or more API worker processes")
    if args.no_api:
        if args.workers != 1:
            raise CliError("--workers: --no-api runs no API workers")
        return run_control(args)
    if not 0 < args.port < 65536:
        raise CliError(f"--port: {args.port} is not a TCP port")
    _log_to_stderr(args.log_level)
    settings, control = Settings(), ControlSettings()
    check_data_dirs(settings)
    if args.workers != 1:
        from hbopt.workers import serve_workers  # noqa: PLC0415 - the workers' own wiring

        return serve_workers(args, settings)
    clock = loop_clock(control)
    if not args.no_control:
        for opened in open_stores(settings, clock):  # migrate once, before two parts open them
            opened.close()
    # With the control loop in this process it runs the price and weather jobs; the API only
    # reads what they store.
    api_settings = (
        settings if args.no_control else settings.model_copy(update={"input_jobs": False})
    )
    app = create_app(api_settings, clock=utc_clock(clock))

    def forget_plan(site_id: str) -> None:
        services = getattr(app.state, "services", None)
        if services is not None:
            services.plan_cache.forget(site_id)

    thread = None
    if not args.no_control:
        thread = LoopThread("hbopt-control", ControlLoop(settings, control, clock, forget_plan).run)
        thread.start()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"hbopt: dashboard at http://{host}:{args.port}{DASHBOARD_PATH}", flush=True)
    config = uvicorn_config(
        app,
        settings,
        args.host,
        args.port,
        args.log_level,
        log_config=service_log_config(args.log_level),
    )
    try:
        uvicorn.Server(config).run()
    finally:
        if thread is not None:
            thread.stop()
    return 0


def _log_to_stderr(level: str) -> None:
    """The service's own log lines (control loop, mail links without SMTP) on stderr: the same
    configuration uvicorn applies in ``serve``, so ``control`` logs exactly alike."""
    logging.config.dictConfig(service_log_config(level))


def run_control(args: argparse.Namespace) -> int:
    _log_to_stderr(args.log_level)
    settings, control = Settings(), ControlSettings()
    check_data_dirs(settings)
    loop_ = ControlLoop(settings, control, loop_clock(control))
    print("hbopt: control loop running (Ctrl-C to stop)", flush=True)

    async def main() -> None:
        task = asyncio.create_task(loop_.run())
        stop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            stop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0
