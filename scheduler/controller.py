"""The closed control loop of one site.

Every 15 minutes, aligned to :00/:15/:30/:45 on the injected clock, and at once on an event
(EV plugged in or out, charging mode or departure changed, new day-ahead prices, the box in
FALLBACK or reconnected, a grid-operator limit), one cycle:

1. reads the box's measurements and status (and stores them);
2. forecasts PV, household load and outdoor temperature, takes prices and CO2 from the
   background-refreshed cache (never waiting on the network);
3. builds the :class:`~optimizer.Problem` from the site's configuration and live state
   (battery SOC, EV plugged in and its estimated energy, heat-store temperature, §14a limit as
   a hard import cap);
4. solves it in a worker process (:func:`scheduler.cycle.plan_cycle`), so the event loop
   keeps serving the heartbeat;
5. writes the current slot as live setpoints and uploads the rest as the box schedule (so an
   outage degrades to "execute the last plan", then to the box's fallback);
6. stores the plan, the setpoints sent and what the box reports as applied.

Three background tasks run beside the cycle loop: the heartbeat keeper (a changed
``ctrl_heartbeat`` every ``watchdog_timeout_s / 3``, or :attr:`SiteController.keep_alive_max_s`
if shorter), the watcher (polls the box every
``poll_s``, stores the readings, integrates EV energy and the heat-store temperature, raises
events) and the price refresher (refreshes the caches in a thread every ``price_refresh_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from adapters import store as st
from adapters.datasets import PvSystem
from adapters.heartbeat.client import BoxError, BoxUnreachable, HeartbeatClient
from adapters.heartbeat.esi_types import (
    ControlState,
    ExternalLimit,
    Measurement,
    Schedule,
    ScheduleSlot,
)
from adapters.store.telemetry import Sample
from core.timeindex import shareable
from optimizer import (
    ChargingMode,
    EVSession,
    HeatPump,
    Inputs,
    PlanSummary,
    Problem,
    Site,
    State,
    Tuning,
)
from optimizer import forecast as fc
from optimizer.forecast_fit import (
    StoreFit,
    apply_pv_bias,
    fit_store_model,
    load_forecast_blend,
    pv_bias_factors,
)
from scheduler.clock import LoopClock, Wakeup
from scheduler.commands import box_setpoints, keeps_room, schedule_slot
from scheduler.cycle import CycleRequest, CycleResult, plan_cycle
from scheduler.end_value import battery_end_value, expected_hp_load_kw
from scheduler.ev_sessions import (
    LEARN_DAYS,
    CarState,
    ChargeGoal,
    SessionModel,
    charge_goal,
    plug_in_from_shares,
    sessions_from_telemetry,
)
from scheduler.feeds import BundledWeather, DayCache, PriceFeed, StandardLoad
from scheduler.frame_feeds import HeatDemandFeed, LoadFeed, WeatherFeed
from scheduler.links import BoxLink
from scheduler.plan_store import LeaseFence, PlanStore
from scheduler.scenario import Home
from scheduler.site_model import WallboxPreference, owner_goal, store_column
from scheduler.slot_memory import SlotMemory
from scheduler.store_io import StoreIO
from scheduler.weather import CLEARSKY

log = logging.getLogger(__name__)
T = TypeVar("T")
SLOT_S = 900


class NotOwner(BoxError):  # noqa: N818 - reads as what happened
    """This control process does not hold the site's lease: it must not write the box."""


@dataclass(frozen=True)
class DepartureTarget:
    """When the car leaves and what it should hold then.

    The box does not report the car's state of charge, so the energy in the car is estimated
    as ``arrival_kwh`` plus what the wallbox delivered since plug-in (x the wallbox efficiency).

    Parameters
    ----------
    time_local : str
        Daily departure time, ``HH:MM`` in ``tz``.
    target_kwh : float
        Energy wanted in the car at departure [kWh].
    arrival_kwh : float
        Assumed energy in the car at plug-in [kWh].
    capacity_kwh : float
        Car battery capacity [kWh].
    tz : str
        Time zone of ``time_local``.
    """

    time_local: str = "07:00"
    target_kwh: float = 45.0
    arrival_kwh: float = 20.0
    capacity_kwh: float = 60.0
    tz: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        if not 0 <= self.arrival_kwh <= self.capacity_kwh:
            raise ValueError("DepartureTarget.arrival_kwh: must be in [0, capacity_kwh]")
        if not 0 <= self.target_kwh <= self.capacity_kwh:
            raise ValueError("DepartureTarget.target_kwh: must be in [0, capacity_kwh]")
        try:
            pd.Timedelta(f"{self.time_local}:00")
        except ValueError as exc:
            raise ValueError(
                f"DepartureTarget.time_local: {self.time_local!r} is not HH:MM"
            ) from exc

    def next_departure(self, now: pd.Timestamp) -> pd.Timestamp:
        """The first departure after ``now`` (UTC).

        A departure inside the current slot or on its end is still today's deadline: the
        optimizer charges in every slot that ends by the departure, so moving such a deadline
        to tomorrow would drop whatever energy the plan had put into the last slots. On the
        days the clocks change, a time that occurs twice is its first (earlier) occurrence and
        a time that does not exist is the first time after the gap.
        """
        local = now.tz_convert(self.tz)
        day = local.normalize().tz_localize(None)
        for k in range(3):
            wall = day + pd.Timedelta(days=k) + pd.Timedelta(f"{self.time_local}:00")
            dep = wall.tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward")
            if dep > now:
                return dep.tz_convert("UTC")
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class SiteConfig:
    """One site under control (typed; built at the API boundary, never an untyped dict).

    Parameters
    ----------
    site_id : str
        Site id (store, logs).
    host, port, device_id : str, int, int
        The box's Modbus TCP address and unit id.
    controller_id : int
        Written to the box's single-writer lock.
    home : Home
        Devices (optimizer :class:`~optimizer.Site`), PV orientation, annual load, tariff.
    tuning : Tuning
        Optimizer parameters.
    charging_mode : ChargingMode
        The owner's EV charging mode.
    departure : DepartureTarget
        Daily departure time and target energy.
    horizon_slots : int
        Shortest plan length [15-min slots]; 36 h by default, so every plan sees tomorrow
        evening (beyond the published prices on their estimate).
    max_horizon_slots : int
        Longest plan length [15-min slots]: the plan reaches to the end of the published
        day-ahead prices (tomorrow's end once they are out, ~13:00 CET) up to this length, so
        what to keep for tomorrow is decided on tomorrow's prices, not on a guess at the
        horizon end. ``horizon_slots`` (or less) = a fixed horizon.
    end_value : {"next-day", "flat"}
        How energy left in the battery at the horizon end is valued: by what it saves the day
        after (:mod:`scheduler.end_value`), or flat (``tuning.terminal_value_eur_per_kwh``,
        default the horizon's median import price). A set flat value always applies.
    schedule_slots : int
        Slots uploaded as the box schedule (1..192; at most the horizon is sent).
    watchdog_timeout_s : int
        The box's watchdog timeout, set at start [s] (10..3600).
    poll_s : float
        Watcher period: measurements stored, events detected [s].
    price_refresh_s : float
        Background price refresh period [s].
    pv_forecast : {"clearsky", "weather"}
        PV from the clear-sky model scaled by recent production, or from the weather feed.
    solver : str
        Optimizer backend.
    hp_temp_init_c : float
        Heat-store temperature assumed at start [degC]; an ESI v1.1 box's measured store
        temperature replaces it (and the observer) from the first poll.
    lead_s : float
        A timer cycle starts this long before its slot and applies the plan when the slot
        begins [s] (0..600): a fleet spreads its solves instead of starting all at once.
    owner_plan : WallboxPreference or None
        The owner's weekly departures and one-off override for the first wallbox; its target
        is the hard minimum (:mod:`scheduler.ev_sessions`).
    learn_ev_sessions : bool
        Learn departures and needs from the site's telemetry (:mod:`scheduler.ev_sessions`).
    learn_heat_loss : bool
        Fit the heat store's loss (and a constant draw) on the site's own store temperature
        (ESI v1.1), heat-pump power and outdoor temperature
        (:func:`optimizer.forecast_fit.fit_store_model`); a v1.0 box keeps the configured loss.
    soc_ceiling : bool
        Send a SOC ceiling (register 1034) at the plan's SOC where the plan exports and keeps
        room that pays later (:func:`scheduler.commands.keeps_room`). Off by default: it closed
        the perfect-foresight plan's AUTO loss in playback but cost 0.36-0.48 EUR in the March
        2024 closed-loop week (room kept for a midday that a car then took) and gained
        0.00-0.03 EUR in June (docs/scheduler.md).
    """

    site_id: str
    host: str = "127.0.0.1"
    port: int = 502
    device_id: int = 1
    controller_id: int = 1
    home: Home = field(default_factory=Home)
    tuning: Tuning = field(default_factory=Tuning)
    charging_mode: ChargingMode = ChargingMode.SMART
    departure: DepartureTarget = field(default_factory=DepartureTarget)
    horizon_slots: int = 144
    max_horizon_slots: int = 144
    end_value: Literal["next-day", "flat"] = "next-day"
    schedule_slots: int = 96
    watchdog_timeout_s: int = 60
    poll_s: float = 60.0
    price_refresh_s: float = 3600.0
    pv_forecast: Literal["clearsky", "weather"] = "clearsky"
    solver: str = "highs"
    hp_temp_init_c: float = 21.0
    lead_s: float = 0.0
    owner_plan: WallboxPreference | None = None
    learn_ev_sessions: bool = True
    learn_heat_loss: bool = True
    soc_ceiling: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "charging_mode", ChargingMode(self.charging_mode))
        if not 1 <= self.schedule_slots <= 192:
            raise ValueError("SiteConfig.schedule_slots: must be in 1..192")
        if self.horizon_slots < 4:
            raise ValueError("SiteConfig.horizon_slots: must be >= 4")
        if not 10 <= self.watchdog_timeout_s <= 3600:
            raise ValueError("SiteConfig.watchdog_timeout_s: must be in 10..3600")
        if self.end_value not in ("next-day", "flat"):
            raise ValueError(f"SiteConfig.end_value: {self.end_value!r}")
        if self.pv_forecast not in ("clearsky", "weather"):
            raise ValueError(f"SiteConfig.pv_forecast: {self.pv_forecast!r}")
        if not 0 <= self.lead_s <= 600:
            raise ValueError("SiteConfig.lead_s: must be in 0..600")
        if self.poll_s <= 0 or self.price_refresh_s <= 0:
            raise ValueError("SiteConfig.poll_s/price_refresh_s: must be > 0")


#: How long the PV forecasts are remembered for the bias correction.
PV_BIAS_HISTORY = pd.Timedelta(days=14)
#: How much of the site's history the heat store's loss is fitted on.
HEAT_FIT_HISTORY = pd.Timedelta(days=14)


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did: when, why, whether it reached the box, and how long it took [ms]."""

    time: pd.Timestamp
    reasons: tuple[str, ...]
    ok: bool
    error: str = ""
    solve_ms: float = 0.0
    cycle_ms: float = 0.0
    applied_seq: int | None = None
    schedule_id: int | None = None
    cost_eur: float | None = None
    slot: pd.Timestamp | None = None  # the plan's first slot


@dataclass
class LinkHealth:
    """What the controller last knew of its box: contact time, control state, last error."""

    last_contact: float | None = None  # UNIX s
    box_state: ControlState | None = None
    unreachable: bool = False
    error: str = ""

    def reached(self, now: float, state: ControlState) -> None:
        """A read or write succeeded at ``now`` [UNIX s]; the box reports ``state``."""
        self.last_contact, self.box_state = now, state
        self.unreachable, self.error = False, ""

    def failed(self, exc: BoxError) -> None:
        """A read or write failed; an unreachable box is marked as such."""
        self.error = str(exc)
        self.unreachable = self.unreachable or isinstance(exc, BoxUnreachable)


@dataclass
class _EvTrack:
    plugged_at: float
    delivered_kwh: float = 0.0
    #: the car's energy at plug-in [kWh], from the first ESI v1.1 SOC reading of the session
    arrival_kwh: float | None = None
    full: bool = False
    asked: bool = False


class SiteController:
    """Runs the control loop of one site (see the module notes).

    Parameters
    ----------
    config : SiteConfig
    clock : LoopClock
        :class:`~scheduler.clock.RealClock` live, a
        :class:`~scheduler.clock.SteppedClock` in backtests and tests.
    store : TelemetryStore
        Measurements.
    prices : PriceFeed
        Cached prices and CO2; refreshed in the background.
    executor : concurrent.futures.Executor
        Where solves run (a process pool).
    weather : WeatherFeed, optional
        Weather feed (temperatures always; PV when ``pv_forecast="weather"``), e.g. the
        service's :meth:`scheduler.weather.WeatherFeed.at`; default the bundled weather.
    heat_demand : HeatDemandFeed, optional
        Heat drawn from the store besides its loss [kW thermal]; default none.
    load_forecast : LoadFeed, optional
        The household-load forecast [kW] (backtests with perfect information); default learned
        from the site's history (:func:`optimizer.forecast_fit.load_forecast_blend`).
    client : BoxLink, optional
        How the box is reached (:mod:`scheduler.links`). Default: a Modbus TCP client for
        ``config.host:port`` on the clock.
    plan_store : PlanStore, optional
        Where plans and sent/applied setpoints are stored (the service database); default
        none: a backtest keeps its plans in :attr:`plans` only.
    """

    _writes: set[asyncio.Task[Any]]
    #: The first cycle waits this long after the start [s, the clock's] unless the owner or new
    #: prices come first: a supervisor starting many sites at once spreads their first solves.
    first_cycle_delay_s: float = 0.0
    _first_pending = False  # the first cycle is waiting: what the box reports joins it

    def __init__(
        self,
        config: SiteConfig,
        clock: LoopClock,
        store: st.TelemetryStore,
        prices: PriceFeed,
        executor: Executor,
        *,
        weather: WeatherFeed | None = None,
        client: BoxLink | None = None,
        heat_demand: HeatDemandFeed | None = None,
        load_forecast: LoadFeed | None = None,
        plan_store: PlanStore | None = None,
    ) -> None:
        self.config = config
        self.plan_store = plan_store
        self.clock = clock
        self.store = store
        self.prices = prices
        self.executor = executor
        self.weather: WeatherFeed = weather or BundledWeather()
        self.heat_demand = heat_demand
        self.load_forecast = load_forecast
        #: the raw PV forecast of each plan's first slot (the PV bias) [kW]
        self._pv_said = SlotMemory(PV_BIAS_HISTORY)
        #: outdoor temperature of each past slot as the weather feed said it last [degC]
        self._t_out_said = SlotMemory(HEAT_FIT_HISTORY)
        self._heat_fit: tuple[pd.Timestamp, StoreFit] | None = None
        #: whether the weather feed has answered the fit's whole window once (a live feed
        #: has nothing before its first fetch, which may come after the first cycle)
        self._t_out_window_read = False
        self.client: BoxLink = client or HeartbeatClient(
            config.host,
            config.port,
            device_id=config.device_id,
            controller_id=config.controller_id,
            clock=clock,
        )
        self.standard_load = StandardLoad(config.home.annual_load_kwh)
        self._clear_sky = DayCache(_clear_sky(config.home.pv_system))
        self.reports: list[CycleReport] = []
        self.plans: list[tuple[pd.Timestamp, pd.DataFrame]] = []
        self.last_problem: Problem | None = None
        self._wakeup = Wakeup()
        self._reasons: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._ev: _EvTrack | None = None
        self._model: tuple[pd.Timestamp, SessionModel] | None = None
        #: The last plan's summary and the grid operator's import limit it kept to [kW].
        self.last_summary: PlanSummary | None = None
        self.last_cap_kw: float | None = None
        self._hp_temp = config.hp_temp_init_c
        self._tail: pd.DataFrame | None = None
        self._end_value: tuple[pd.Timestamp, tuple[tuple[float, float], ...]] | None = None
        self._last_poll: float | None = None
        self._last_stored: float | None = None
        self._unsaved: list[Sample] = []
        self._t_out: tuple[pd.Timestamp | None, float, float] = (None, 0.0, 0.0)
        self._limits: tuple[int, float | None] = (0, None)
        self._sched_id = 0
        self._reconnects = 0
        self.link_health = LinkHealth()
        #: Reports and plans kept in memory (None: all, for backtests and the demo).
        self.keep_history: int | None = None
        #: Called after every cycle with its report (the supervisor publishes the status).
        self.on_report: Callable[[CycleReport], None] | None = None
        self._input_flags: pd.DataFrame | None = None
        #: Whether this process may write the box now; a supervisor sharing the fleet with
        #: other control processes sets it to "the site's lease is current" (cheap, local).
        self.may_write: Callable[[], bool] = _always
        #: Checked before each cycle's write batch; the supervisor's checks the lease's
        #: fencing token in the database. False: the cycle writes nothing.
        self.fence: Callable[[], Awaitable[bool]] | None = None
        #: Whether this process may beat the box's watchdog now (None: :attr:`may_write`). A
        #: site being handed to another process is not written any more but beaten until its
        #: controller stops, so its box waits for the new owner with a fresh watchdog.
        self.may_beat: Callable[[], bool] | None = None
        #: Longest heartbeat period [s] (None: the link's); a fleet sharing sites through
        #: leases beats more often, so a box's watchdog outlives a take-over.
        self.keep_alive_max_s: float | None = None
        self._handed_on = False
        self._beat_at: float | None = None
        self._keeper: asyncio.Task[None] | None = None
        #: The lease that plan and setpoint writes are made under (None: unconditional); a
        #: process whose lease was taken over stores nothing over the new owner's plan.
        self.plan_fence: Callable[[], LeaseFence | None] = _no_fence
        #: Where the telemetry and plan store calls run (a supervisor gives each store threads
        #: of its own); never on the event loop, which beats every box of the process.
        #: Store writes in flight: :meth:`stop` waits for them (a cycle stopped mid-write).
        self.store_io, self.plan_io, self._writes = StoreIO("telemetry"), StoreIO("plans"), set()

    # ------------------------------------------------------------------ lifecycle
    async def hand_on(self) -> None:
        """Connect, check the box, claim its lock and refresh its watchdog at once.

        The box keeps the live setpoints and the schedule it was given (a predecessor's last
        plan) while its watchdog is alive, so one heartbeat hands it on unchanged; taking a
        site over, this comes before anything slower (prices, history, the solve).
        """
        await self.client.discover()
        if not self.may_write():
            raise NotOwner(f"{self.config.site_id}: another control process runs the site")
        await self.client.heartbeat(force=True)
        self._handed_on, self._beat_at = True, self.clock.now()
        # beating from now on: what follows (prices, the first solve) may be slow, and the box
        # may hold a predecessor's live setpoints
        if self._keeper is None or self._keeper.done():
            name = f"{self.config.site_id}-heartbeat"
            self._keeper = self.clock.spawn(self._keep_alive(), name)

    async def start(self) -> None:
        """:meth:`hand_on` (unless done), set the watchdog, fetch prices once, start the tasks."""
        if not self._handed_on:
            await self.hand_on()
        self._handed_on = False  # a start retried after an error hands on again
        try:
            await self.client.set_watchdog_timeout(self.config.watchdog_timeout_s)
            await self._refresh_prices()
            status = await self.client.read_status()
        except BoxError:  # retried (the supervisor's retry_s): the box keeps being beaten
            raise
        except BaseException:  # cancelled: the site is not run
            if self._keeper is not None:
                self._keeper.cancel()
            raise
        self._sched_id = int(self.clock.now()) % 0xFFFF  # differs from a predecessor's ids
        reason = "start" if status.control_state != ControlState.FALLBACK else "fallback"
        if self.first_cycle_delay_s > 0:
            self._first_pending = True
            self._reasons.append(reason)  # the first cycle's reason; its wait in _cycle_loop
        else:
            self.trigger(reason)
        spawn = self.clock.spawn
        assert self._keeper is not None
        self._tasks = [
            self._keeper,
            spawn(self._watch(), f"{self.config.site_id}-watch"),
            spawn(self._price_loop(), f"{self.config.site_id}-prices"),
            spawn(self._cycle_loop(), f"{self.config.site_id}-cycles"),
        ]

    async def stop(
        self, release: bool = False, discard: bool = False, farewell: bool = False
    ) -> None:
        """Stop all tasks; ``release`` hands control back to the box (heartbeat 0).

        Without ``release`` this is what a crash looks like to the box: the heartbeat stops
        and its watchdog takes over. ``farewell`` (another process takes the box over) beats
        the watchdog once more after the tasks stopped, while :attr:`may_beat` allows: the
        new owner then has the whole watchdog to hand the box on.
        """
        await cancel_all([*self._tasks, *([] if self._keeper is None else [self._keeper])])
        self._tasks, self._keeper = [], None
        try:  # the box first: its last beat (or release) does not wait behind store writes
            if release:
                with contextlib.suppress(BoxError):
                    await self._release_box()
            elif farewell and self._beat_at is not None and self._beat_allowed():
                with contextlib.suppress(BoxError):
                    await self.client.heartbeat(force=True)
        finally:
            await self.client.close()
        await self._drain()  # a cycle stopped mid-write: its plan lands before the lease goes
        if discard:  # the site was deleted: its readings must not come back
            self._unsaved = []
        await self.flush()

    def _beat_allowed(self) -> bool:
        return self.may_write() if self.may_beat is None else self.may_beat()

    async def _release_box(self) -> None:
        """Hand the box back to its own logic now: a schedule without commands, heartbeat 0.

        The no-command schedule replaces the uploaded plan (which the box would otherwise keep
        executing); heartbeat 0 drops the live setpoints and the single-writer lock.
        """
        if not self.may_write():
            return  # another process runs the box now; it is not ours to release
        index = self._slot_index(self.config.schedule_slots)
        self._sched_id = self._sched_id % 0xFFFF + 1
        empty = [ScheduleSlot()] * len(index)
        await self.client.upload_schedule(Schedule.from_slots(self._sched_id, index, empty))
        await self.client.release()

    def trigger(self, reason: str) -> None:
        """Run a cycle now (events)."""
        self._reasons.append(reason)
        self.clock.wake(self._wakeup)

    def _event(self, reason: str) -> None:
        """What the box reports: a cycle now, or with the first one while it waits (see
        :attr:`first_cycle_delay_s`; the owner's changes and new prices cut the wait short)."""
        if self._first_pending:
            self._reasons.append(reason)
        else:
            self.trigger(reason)

    def new_prices(self) -> None:
        """New prices were stored (the zone's price job): refresh the cache, then replan.

        Safe to call from the event loop's thread (e.g. a price listener); returns at once.
        """
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(
            self.clock.spawn(self._on_new_prices(), f"{self.config.site_id}-new-prices")
        )

    async def _on_new_prices(self) -> None:
        try:
            await self._refresh_prices()
        except Exception:  # the replan still runs, on the cached prices
            log.warning("%s: price refresh failed", self.config.site_id, exc_info=True)
        self.trigger("new prices")

    def set_charging_mode(self, mode: ChargingMode) -> None:
        """The owner changed the charging mode: replan at once."""
        self.config = replace(self.config, charging_mode=ChargingMode(mode))
        self.trigger("charging mode")

    def set_departure(self, departure: DepartureTarget) -> None:
        """The owner changed the departure time or target: replan at once."""
        self.config = replace(self.config, departure=departure)
        self.trigger("departure")

    def reconfigure(self, config: SiteConfig, reason: str) -> None:
        """New settings of the same site on the same link (owner, trader): replan at once."""
        if config.home != self.config.home:
            self.standard_load = StandardLoad(config.home.annual_load_kwh)
            self._clear_sky = DayCache(_clear_sky(config.home.pv_system))
            self._heat_fit = None  # refit against the new configuration at the next cycle
        self.config = config
        self.trigger(reason)

    # ------------------------------------------------------------------ tasks
    async def _cycle_loop(self) -> None:
        slot_start: float | None = None
        if self.first_cycle_delay_s > 0:  # an event (or a stop) cuts the wait short
            await self.clock.sleep_until(self.clock.now() + self.first_cycle_delay_s, self._wakeup)
        self._first_pending = False
        while True:
            reasons = tuple(dict.fromkeys(self._reasons)) or ("timer",)
            timer = not self._reasons
            self._reasons.clear()
            self._wakeup.pending = False
            try:
                report = await self.cycle(reasons, slot_start if timer else None)
            except Exception as exc:  # the loop must outlive any one cycle
                log.exception("%s: cycle failed", self.config.site_id)
                report = CycleReport(self._now(), reasons, False, f"{type(exc).__name__}: {exc}")
            self.reports.append(report)
            if self.keep_history is not None:  # a long-running service keeps only the last
                del self.reports[: -self.keep_history]
                del self.plans[: -self.keep_history]
            if self.on_report is not None:
                self.on_report(report)
            # a timer cycle starts lead_s before its slot and applies the plan when it begins
            slot_start = (math.floor(self.clock.now() / SLOT_S) + 1) * SLOT_S
            await self.clock.sleep_until(slot_start - self.config.lead_s, self._wakeup)

    def keep_alive_s(self) -> float:
        """Heartbeat period [s]: the link's (``watchdog / 3``), or :attr:`keep_alive_max_s`."""
        interval = self.client.heartbeat_interval_s()
        return interval if self.keep_alive_max_s is None else min(interval, self.keep_alive_max_s)

    async def _keep_alive(self) -> None:
        # client.run_heartbeat on the injected clock, so accelerated runs beat in sim time
        if self._beat_at is not None:  # hand_on beat: the next is one period after it
            await self.clock.sleep_until(self._beat_at + self.keep_alive_s())
        while True:
            interval = self.keep_alive_s()
            try:
                if self._beat_allowed():
                    await self.client.heartbeat(force=True)
                else:  # the lease is being renewed late: beat as soon as it is, not a period on
                    interval /= 10
            except BoxError as exc:
                self.link_health.failed(exc)
            await self.clock.sleep_until(self.clock.now() + interval)

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(BoxError):  # poll() records it in link_health
                await self.poll()
            await self.clock.sleep_until(self.clock.now() + self.config.poll_s)

    @property
    def input_flags(self) -> pd.DataFrame | None:
        """The last plan's per-slot ``price-is_estimate`` / ``weather-is_estimate`` flags."""
        return self._input_flags

    async def _price_loop(self) -> None:
        while True:
            await self.clock.sleep_until(self.clock.now() + self.config.price_refresh_s)
            try:
                if await self._refresh_prices():
                    self.trigger("new prices")
            except Exception:  # a failed refresh keeps the cached prices
                log.warning("%s: price refresh failed", self.config.site_id, exc_info=True)

    async def _refresh_prices(self) -> bool:
        now = self._now().floor("15min")
        return await asyncio.to_thread(self.prices.refresh, now, now + pd.Timedelta(days=2))

    # ------------------------------------------------------------------ watcher
    async def poll(self) -> Measurement:
        """Read the box, store the readings, integrate EV energy and heat, raise events."""
        try:
            meas = await self.client.read_measurements()
            status = await self.client.read_status()
        except BoxError as exc:
            self.link_health.failed(exc)
            raise
        now = self.clock.now()
        was = self.link_health.box_state
        self.link_health.reached(now, status.control_state)
        if was == ControlState.FALLBACK and status.control_state != ControlState.FALLBACK:
            self._event("box back from fallback")
        # the first reading since this start: a car plugged in then may have come before it
        first = self._last_poll is None
        dt_h = 0.0 if self._last_poll is None else (now - self._last_poll) / 3600
        self._last_poll = now
        self._store_measurement(meas)
        since = None
        if first and meas.wallbox_state >= 2 and self._ev is None:
            since = await self.store_io.run(self._plugged_since, now)
        self._track_ev(meas, dt_h, since)
        self._track_heat(meas, dt_h)
        if status.control_state == ControlState.FALLBACK:
            self._event("box in fallback")
        if self.client.reconnects != self._reconnects:
            self._reconnects = self.client.reconnects
            self._event("box reconnected")
        limits = (int(status.external_limits), status.external_consumption_limit_kw)
        if limits != self._limits:
            self._limits = limits
            self._event("grid-operator limit")
        return meas

    def _track_ev(self, meas: Measurement, dt_h: float, since: float | None = None) -> None:
        """``since``: :meth:`_plugged_since`, read for a car plugged in at the first reading."""
        plugged = meas.wallbox_state >= 2
        if plugged and self._ev is None:
            self._ev = _EvTrack(self.clock.now() if since is None else since)
            self._event("ev plugged in")
        elif not plugged and self._ev is not None:
            self._ev = None
            self._event("ev plugged out")
        if self._ev is None:
            return
        power = meas.wallbox_kw or 0.0
        if meas.ev_session_kwh is not None:
            # an ESI v1.1 box counts the session's energy itself: no drift from polling gaps
            self._ev.delivered_kwh = meas.ev_session_kwh
        else:
            self._ev.delivered_kwh += power * dt_h
        if meas.ev_soc is not None and self._ev.arrival_kwh is None:
            self._ev.arrival_kwh = self._measured_arrival(meas.ev_soc)
        asked = (meas.wallbox_applied_a or 0.0) >= 6.0
        # the reading is the last minute's mean: only a car that draws nothing for a whole
        # minute after being offered power in the poll before is full
        drawn = self._ev.delivered_kwh > 0.1
        if asked and self._ev.asked and power < 0.05 and drawn and not self._ev.full:
            self._ev.full = True
            self._event("ev full")
        self._ev.asked = asked

    def _plugged_since(self, now: float) -> float:
        """Plug-in of a car found plugged in at the first reading [UNIX s]: where the box's
        stored plug state last went from unplugged to plugged (a restarted service; the
        learned departure and milestones count from the real plug-in), else ``now``."""
        end = pd.Timestamp(now, unit="s", tz="UTC")
        start = end - pd.Timedelta(days=2)
        share = self.store.field_window(
            self.config.site_id,
            "wallbox",
            "connected",
            start=start.to_pydatetime(),
            end=end.to_pydatetime(),
        )
        found = plug_in_from_shares(share)  # fmt: skip
        return now if found is None else min(found.timestamp(), now)

    def _track_heat(self, meas: Measurement, dt_h: float) -> None:
        """Heat-store temperature observer: the store model driven by measured HP power."""
        hp = self._heat_pump()
        if hp is None:
            return
        if meas.hp_store_temp_c is not None:
            # an ESI v1.1 box measures the store: the model below would only drift from it
            self._hp_temp = meas.hp_store_temp_c
            return
        if dt_h <= 0:
            return
        slot = self._now().floor("15min")
        if self._t_out[0] != slot:  # one weather lookup per slot, not per poll
            index = self._slot_index(1)
            self._t_out = (
                slot,
                float(self.weather.weather(index)["temp_air_c"].iloc[0]),
                float(q[0]) if (q := self._heat_demand(index)) is not None else 0.0,
            )
        t_out, demand = self._t_out[1], self._t_out[2]
        cop = max(1.0, hp.cop_at_7c + hp.cop_slope_per_k * (t_out - 7.0))
        heat = cop * (meas.hp_kw or 0.0) - hp.loss_kw_per_k * (self._hp_temp - t_out) - demand
        self._hp_temp += heat * dt_h / hp.capacity_kwh_per_k

    def _store_measurement(self, meas: Measurement) -> None:
        if getattr(self.client, "measurements_stored", False):
            return  # a pull box posted them to the store itself
        ts = meas.time.timestamp()
        if self._last_stored is not None and ts <= self._last_stored:
            return
        self._last_stored = ts
        when = meas.time.to_pydatetime()
        sid = self.config.site_id
        values = {
            "grid": {"power_kw": meas.grid_kw},
            "pv": {"power_kw": meas.pv_kw},
            "battery": {"power_kw": meas.battery_kw, "soc": meas.battery_soc},
            "house": {"power_kw": meas.house_load_kw},
            "wallbox": {
                "power_kw": meas.wallbox_kw,
                "connected": float(meas.wallbox_state >= 2),
                "state": float(meas.wallbox_state),
            },
            "heatpump": {
                "power_kw": meas.hp_kw,
                "sgready": float(meas.hp_sgready_applied),
                "tank_temp_degc": meas.hp_store_temp_c,  # ESI v1.1: the loss is fitted on it
            },
        }
        self._unsaved += [
            Sample(sid, dev, when, {k: v for k, v in f.items() if v is not None})
            for dev, f in values.items()
            if f["power_kw"] is not None
        ]

    async def flush(self) -> None:
        """Write the buffered readings to the store (one transaction per cycle, not per poll)
        on its threads; readings whose write failed are written with the next."""
        if self._unsaved:
            batch, self._unsaved = self._unsaved, []
            await self._in_background(self._write_readings(batch))

    async def _write_readings(self, batch: list[Sample]) -> None:
        try:
            await self.store_io.run(self.store.write, batch)
        except Exception:
            self._unsaved[:0] = batch  # on the loop: the poll appends to the same list
            raise

    async def _in_background(self, write: Coroutine[Any, Any, T]) -> T:
        """Await a store write that a cancelled caller (a cycle stopped) does not cut off:
        it finishes on its own and :meth:`stop` waits for it."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    async def _drain(self) -> None:
        """Wait for the store writes in flight; log the failed."""
        while self._writes:
            pending = list(self._writes)
            done = await asyncio.gather(*pending, return_exceptions=True)
            for error in done:
                if isinstance(error, Exception):
                    log.error("%s: store write failed: %r", self.config.site_id, error)

    # ------------------------------------------------------------------ the cycle
    async def cycle(
        self, reasons: tuple[str, ...] = ("manual",), slot_start: float | None = None
    ) -> CycleReport:
        """One control cycle (see the module notes); raises only on programming errors.

        With ``slot_start`` [UNIX s] ahead of the clock, the plan starts at that slot and is
        applied when it begins (``cycle_ms`` leaves the wait out).
        """
        t0 = time.perf_counter()
        now = self._now()
        ahead = slot_start is not None and slot_start > self.clock.now()
        try:
            meas = await self.poll()
            status = await self.client.read_status()
        except BoxError as exc:
            return CycleReport(now, reasons, False, f"box: {exc}")
        await self.flush()  # the problem reads the history: the last readings belong in it
        index = self._horizon(slot_start if ahead else None)
        dimmed = bool(status.external_limits & ExternalLimit.DIMMING_14A)
        cap = status.external_consumption_limit_kw if dimmed else None
        # built on a thread: seconds of CPU for a fleet's cycles at once, during which the
        # event loop (every heartbeat of this process) would otherwise wait
        built = await asyncio.to_thread(self._problem, index, meas, cap)
        problem = await self._with_end_value(built)
        self.last_problem = problem
        request = CycleRequest(
            self.config.site_id, problem, self.config.solver, self.config.schedule_slots
        )
        loop = asyncio.get_running_loop()
        result: CycleResult = await loop.run_in_executor(self.executor, plan_cycle, request)
        if not result.ok or result.slots is None:
            return CycleReport(now, reasons, False, result.error, result.cycle_ms)
        self.plans.append((now, result.slots))
        self.last_summary, self.last_cap_kw = result.summary, cap
        waited = 0.0
        if ahead and slot_start is not None:
            w0 = time.perf_counter()
            await self.clock.sleep_until(slot_start)
            waited = time.perf_counter() - w0
        if self.fence is not None and not await self.fence():
            return CycleReport(now, reasons, False, "lease lost: the site moved", result.cycle_ms)
        try:
            applied_seq, sched_id = await self._apply(result, index)
        except BoxError as exc:
            self.link_health.failed(exc)
            return CycleReport(now, reasons, False, f"box: {exc}", result.cycle_ms)
        await self._save(now, result)
        await self._save_applied(now)
        cost = result.summary.cost_eur if result.summary else None
        ms = (time.perf_counter() - t0 - waited) * 1e3
        return CycleReport(
            now, reasons, True, "", result.cycle_ms, ms, applied_seq, sched_id, cost, index[0]
        )

    async def _apply(self, result: CycleResult, index: pd.DatetimeIndex) -> tuple[int, int]:
        """Live setpoints for the current slot, the rest of the plan as the schedule."""
        assert result.slots is not None
        site = self.config.home.site
        grid = result.slots["grid_kw"].to_numpy(float)
        soc = result.slots.get("battery_soc")
        soc_end = None if soc is None else float(soc.iloc[0])
        b = site.battery if self.config.soc_ceiling else None
        room = b is not None and bool(keeps_room(result.slots, b.soc_min, b.soc_max)[0])
        live = box_setpoints(result.setpoints[0], float(grid[0]), site, soc_end, room)
        status = await self.client.write_setpoints(live)
        slots = [
            schedule_slot(sp, float(g), site) for sp, g in zip(result.setpoints, grid, strict=False)
        ]
        self._sched_id = self._sched_id % 0xFFFF + 1
        await self.client.upload_schedule(
            Schedule.from_slots(self._sched_id, index[: len(slots)], slots)
        )
        self._sent = live
        self.link_health.reached(self.clock.now(), status.control_state)
        return status.applied_seq, self._sched_id

    def _problem(self, index: pd.DatetimeIndex, meas: Measurement, cap_kw: float | None) -> Problem:
        n = len(index)
        if self._values_tail():
            # the day after the horizon, forecast with it (for the end value)
            index = pd.DatetimeIndex(
                index.append(pd.date_range(index[-1], periods=97, freq="15min")[1:])
            )
        frame = self.prices.frame(index)
        weather = self.weather.weather(index)
        history = self.store.window(
            self.config.site_id,
            (index[0] - pd.Timedelta(days=14)).to_pydatetime(),
            index[0].to_pydatetime(),
        )
        frame["pv_kw"] = self._pv_forecast(index, weather, history).to_numpy()
        frame["load_kw"] = self._load_forecast(index, history).to_numpy()
        frame["t_out_c"] = weather["temp_air_c"].astype(float).to_numpy()
        self._remember_t_out(weather.iloc[:1])
        self._refit_heat()
        frame["import_cap_kw"] = np.nan if cap_kw is None else cap_kw
        self._tail = frame.iloc[n:] if len(index) > n else None  # the end value's input
        frame, weather, index = frame.iloc[:n], weather.iloc[:n], index[:n]
        self._input_flags = input_flags(frame, weather)
        site = self._site()
        temps = {hp.name: self._hp_temp for hp in site.heat_pumps}
        soc = float(np.clip(meas.battery_soc if meas.battery_soc is not None else 0.5, 0, 1))
        state = State(soc, temps, self._sessions(index))
        demand = {}
        heat = self._heat_demand(index)
        if heat is not None and site.heat_pumps:
            demand = {site.heat_pumps[0].name: heat}
        inputs = Inputs.from_frame(frame, heat_demand_kw=demand)
        return Problem(site, inputs, state, self.config.tuning)

    def _site(self) -> Site:
        """The configured site with its first heat pump's loss as learned (if it was)."""
        site = self.config.home.site
        hp = self._heat_pump()
        if hp is None or hp is site.heat_pumps[0]:
            return site
        return replace(site, heat_pumps=(hp, *site.heat_pumps[1:]))

    def _values_tail(self) -> bool:
        cfg = self.config
        flat = cfg.end_value == "flat" or cfg.tuning.terminal_value_eur_per_kwh is not None
        return not flat and cfg.home.site.battery is not None

    def _tail_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The day after the horizon as :func:`scheduler.end_value.battery_end_value` takes
        it: the heat pump's expected consumption added to the household load."""
        tail = frame[["import_eur_per_kwh", "export_eur_per_kwh", "pv_kw", "load_kw"]].copy()
        hp = self._heat_pump()
        if hp is not None:
            t_out = frame["t_out_c"].to_numpy(float)
            demand = self._heat_demand(pd.DatetimeIndex(frame.index))
            demand = 0.0 * t_out if demand is None else demand
            tail["load_kw"] += expected_hp_load_kw(hp, t_out, demand)
        return tail

    async def _with_end_value(self, problem: Problem) -> Problem:
        """The problem with the battery's end value from the day after the horizon, solved in
        the executor once per hour of the horizon's end (the tail moves little within it)."""
        if self._tail is None or self._tail.empty:
            return problem
        key = pd.Timestamp(self._tail.index[0]).floor("h")
        if self._end_value is None or self._end_value[0] != key:
            loop = asyncio.get_running_loop()
            site, tuning = self._site(), self.config.tuning
            tail = self._tail_frame(self._tail)  # only when it is solved: once an hour
            try:
                segments = await loop.run_in_executor(
                    self.executor, battery_end_value, site, tail, tuning
                )
            except Exception:  # the flat end value is a worse plan, not a failed cycle
                log.warning("%s: end value failed", self.config.site_id, exc_info=True)
                return problem
            self._end_value = (key, segments)
        return replace(problem, battery_end_value=self._end_value[1])

    def _heat_demand(self, index: pd.DatetimeIndex) -> np.ndarray | None:
        """Heat drawn from the store besides its loss [kW thermal]: the feed's, plus the
        learned constant draw; None without either."""
        fit = self.heat_fit
        draw = fit.draw_kw if fit is not None and fit.draw_fitted else 0.0
        if self.heat_demand is None:
            return None if draw == 0.0 else np.full(len(index), draw)
        return self.heat_demand.demand(index).to_numpy(float) + draw

    # ------------------------------------------------------------------ heat-store model
    @property
    def heat_fit(self) -> StoreFit | None:
        """The heat store's loss in use (learned or configured); None before the first cycle
        or without a heat pump."""
        return None if self._heat_fit is None else self._heat_fit[1]

    def _remember_t_out(self, weather: pd.DataFrame) -> None:
        """Keep the outdoor temperatures of ``weather``'s slots for the loss fit (the newest
        word on a slot wins); the live feed's fallback (climatology) is no measurement."""
        said = weather if "source" not in weather else weather[weather["source"] != CLEARSKY]
        self._t_out_said.update(pd.DatetimeIndex(said.index), said["temp_air_c"].to_numpy(float))

    def _refit_heat(self) -> None:
        """Fit the store's loss at most once an hour (:func:`fit_store_model`) on the
        complete slots of the last :data:`HEAT_FIT_HISTORY`; a failed fit keeps the last."""
        hp = self._configured_heat_pump()
        key = self._now().floor("h")
        if hp is None or (self._heat_fit is not None and self._heat_fit[0] == key):
            return
        fit = StoreFit(hp.loss_kw_per_k)
        if self.config.learn_heat_loss:
            try:
                fit = fit_store_model(self._heat_history(), hp)
            except Exception:  # a worse plan, not a failed cycle
                log.warning("%s: heat-store fit failed", self.config.site_id, exc_info=True)
                fit = fit if self._heat_fit is None else self._heat_fit[1]
        self._heat_fit = (key, fit)

    def _heat_history(self) -> pd.DataFrame:
        """The store's temperature, the heat pump's power, the outdoor temperature and the
        demand feed's draw on the complete slots of the last :data:`HEAT_FIT_HISTORY`."""
        end = self._now().floor("15min")
        # what the feed says of the past (the live provider's past_days, a backtest's data):
        # the whole window at the first fit and once more when a live feed that had nothing
        # then (fetched after the first cycle) first answers; else the last day (pvlib's
        # fallback for two weeks costs ~0.3 s, so an offline feed is not asked for them)
        window = self._heat_fit is None
        past = self._feed_past(HEAT_FIT_HISTORY if window else pd.Timedelta(days=1), end)
        if not window and not self._t_out_window_read and _answered(past):
            past, window = self._feed_past(HEAT_FIT_HISTORY, end), True
        self._remember_t_out(past)
        self._t_out_window_read |= window and _answered(past)
        span = (end - HEAT_FIT_HISTORY).to_pydatetime(), end.to_pydatetime()
        sid = self.config.site_id
        temp = self.store.field_window(sid, "heatpump", "tank_temp_degc",
                                       start=span[0], end=span[1])  # fmt: skip
        index = pd.DatetimeIndex(temp.index)
        history = pd.DataFrame({
            "temp_c": temp.to_numpy(float),
            "hp_kw": self.store.window(sid, *span)["heatpump-power_kw"].reindex(index),
            "t_out_c": self._t_out_said.on(index),
        }, index=index)  # fmt: skip
        if self.heat_demand is not None:
            history["demand_kw"] = self.heat_demand.demand(index).to_numpy(float)
        return history

    def _feed_past(self, back: pd.Timedelta, end: pd.Timestamp) -> pd.DataFrame:
        return self.weather.weather(pd.date_range(end - back, end, freq="15min", inclusive="left"))

    def _sessions(self, index: pd.DatetimeIndex) -> tuple[EVSession, ...]:
        site, ev = self.config.home.site, self._ev  # the poll may replace it meanwhile
        if ev is None or not site.wallboxes:
            return ()
        dep = self.config.departure
        eff = site.wallboxes[0].efficiency
        energy = min(self._arrival_kwh() + ev.delivered_kwh * eff, dep.capacity_kwh)
        goal = self.charge_goal(index[0])
        target = energy if ev.full else min(max(goal.target_kwh, energy), dep.capacity_kwh)
        mode = ChargingMode.OFF if ev.full else self.config.charging_mode
        return (
            EVSession(
                wallbox=site.wallboxes[0].name,
                mode=mode,
                capacity_kwh=dep.capacity_kwh,
                energy_kwh=energy,
                target_kwh=target,
                departure=goal.departure,
                min_kwh=None if goal.min_kwh is None else min(goal.min_kwh, dep.capacity_kwh),
                milestones=() if ev.full else goal.milestones,
            ),
        )

    def charge_goal(self, now: pd.Timestamp) -> ChargeGoal:
        """Departure, target and minimum of the car plugged in now (see
        :func:`scheduler.ev_sessions.charge_goal`)."""
        assert self._ev is not None
        dep = self.config.departure
        site = self.config.home.site
        plugged_at = pd.Timestamp(self._ev.plugged_at, unit="s", tz="UTC")
        car = CarState(plugged_at, self._ev.delivered_kwh, self._arrival_kwh(), dep.capacity_kwh,
                       site.wallboxes[0].efficiency)  # fmt: skip
        plan = self.config.owner_plan
        owner = None if plan is None else owner_goal(plan, now, dep.tz, dep.capacity_kwh)
        expected = None
        if self.config.learn_ev_sessions:
            expected = self._session_model(plugged_at).expect(
                plugged_at, now, self._ev.delivered_kwh
            )
        configured = (dep.next_departure(now), dep.target_kwh)
        return charge_goal(car, now, configured, owner, expected)

    def _arrival_kwh(self) -> float:
        """The car's energy at plug-in [kWh]: measured (ESI v1.1 SOC) or the configured one."""
        measured = None if self._ev is None else self._ev.arrival_kwh
        return self.config.departure.arrival_kwh if measured is None else measured

    def _measured_arrival(self, soc: float) -> float:
        """The car's energy at plug-in [kWh] from its SOC now and what was delivered since."""
        assert self._ev is not None
        dep, wb = self.config.departure, self.config.home.site.wallboxes[0]
        now_kwh = soc * dep.capacity_kwh
        return float(np.clip(now_kwh - self._ev.delivered_kwh * wb.efficiency, 0, now_kwh))

    def _session_model(self, plugged_at: pd.Timestamp) -> SessionModel:
        """The sessions completed before this plug-in, learned once per plug-in."""
        if self._model is None or self._model[0] != plugged_at:
            start = plugged_at - pd.Timedelta(days=LEARN_DAYS)
            sid, window = self.config.site_id, (start.to_pydatetime(), plugged_at.to_pydatetime())
            connected = self.store.field_window(
                sid, "wallbox", "connected", start=window[0], end=window[1]
            )
            charged = self.store.window(sid, *window)["wallbox-power_kw"]
            sessions = sessions_from_telemetry(connected, charged)
            wb = self.config.home.site.wallboxes[0]
            power = wb.max_power_kw
            model = SessionModel(sessions, self.config.departure.tz, power)
            self._model = (plugged_at, model)
        return self._model[1]

    def _pv_forecast(
        self, index: pd.DatetimeIndex, weather: pd.DataFrame, history: pd.DataFrame
    ) -> pd.Series:
        system = self.config.home.pv_system
        if self.config.pv_forecast == "weather":
            pv = fc.pv_power(weather, system)
            forecast = _forecast_slots(weather)
            if not forecast.all():
                # where the feed had no forecast (source "clearsky"): clear sky x measured scale
                clear = self._clear_sky_scaled(index, history).to_numpy(float)
                pv = pd.Series(np.where(forecast, pv.to_numpy(float), clear), index=index)
            return self._pv_corrected(pv, history)
        return self._clear_sky_scaled(index, history)

    def _pv_corrected(self, raw: pd.Series, history: pd.DataFrame) -> pd.Series:
        """The weather-based forecast times the bias learned from what it said before.

        Remembers the raw forecast of the plan's first slot (the freshest), 14 days of them;
        the site's measured production over the same slots gives the per-hour factors.
        """
        said = self._pv_said
        said.update(pd.DatetimeIndex(raw.index[:1]), raw.to_numpy(float)[:1])
        if len(said) < 2:
            return raw
        forecast = said.known()
        measured = history["pv-power_kw"].astype(float).reindex(forecast.index)
        factors = pv_bias_factors(forecast, measured)
        return apply_pv_bias(raw, factors)

    def _clear_sky_scaled(self, index: pd.DatetimeIndex, history: pd.DataFrame) -> pd.Series:
        system = self.config.home.pv_system
        past = history["pv-power_kw"].astype(float).iloc[-192:]  # the last two days
        model = self._clear_sky.get(pd.DatetimeIndex(past.index))["pv_kw"]
        scale = fc.clear_sky_scale(past, system, clear_sky_kw=model)
        return self._clear_sky.get(index)["pv_kw"] * scale

    def _load_forecast(self, index: pd.DatetimeIndex, history: pd.DataFrame) -> pd.Series:
        if self.load_forecast is not None:
            return self.load_forecast.load(index)
        past = history["house-power_kw"].astype(float)
        return load_forecast_blend(past, index, self.standard_load.load(index))

    # ------------------------------------------------------------------ storing
    async def _save(self, now: pd.Timestamp, result: CycleResult) -> None:
        assert result.slots is not None and result.summary is not None
        created = now.to_pydatetime()
        slots = result.slots.rename(columns=store_column)
        flags = self._input_flags
        inputs: dict[str, object] = {}
        if flags is not None:
            slots = slots.join(flags.astype(float))
            inputs = inputs_summary(flags)
        inputs |= heat_loss_summary(self.heat_fit, self._configured_heat_pump())
        summary = st.PlanSummary.model_validate(
            {
                "status": result.summary.status,
                "objective_eur": result.summary.objective_eur,
                "cost_eur": result.summary.cost_eur,
                "solve_ms": result.summary.solve_ms,
                "violations": {v.name: v.amount for v in result.summary.violations},
                **inputs,
            }
        )
        if self.plan_store is None:
            return
        plan = st.Plan(self.config.site_id, created, slots, summary)
        sent = self._sent
        values: dict[tuple[str, str], float | None] = {
            ("battery", "power_kw"): sent.battery_kw,
            ("battery", "mode"): float(sent.battery_mode),
            ("wallbox", "current_a"): sent.wallbox_current_a,
            ("heatpump", "sgready"): _opt_float(sent.hp_sgready_state),
            ("heatpump", "budget_kw"): sent.hp_power_budget_kw,
        }
        points = [
            st.Setpoint(d, q, created, float(v)) for (d, q), v in values.items() if v is not None
        ]
        await self._in_background(self.plan_io.run(self._store_plan, plan, points))

    def _store_plan(self, plan: st.Plan, sent: list[st.Setpoint]) -> None:
        """The plan, then the setpoints sent with it, each under the lease (a store thread)."""
        assert self.plan_store is not None
        if not self.plan_store.save_plan(plan, self.plan_fence()):
            log.info("%s: plan not stored, the site's lease moved on", self.config.site_id)
            return
        self.plan_store.save_setpoints(self.config.site_id, sent, self.plan_fence())

    async def _save_applied(self, now: pd.Timestamp) -> None:
        meas = await self.client.read_measurements()
        created = now.to_pydatetime()
        values = {
            ("battery", "power_kw"): meas.battery_applied_kw,
            ("wallbox", "current_a"): meas.wallbox_applied_a,
            ("heatpump", "sgready"): float(meas.hp_sgready_applied),
        }
        if self.plan_store is None:
            return
        points = [
            st.Setpoint(d, q, created, float(v)) for (d, q), v in values.items() if v is not None
        ]
        await self._in_background(self.plan_io.run(self._store_applied, points))

    def _store_applied(self, points: list[st.Setpoint]) -> None:
        assert self.plan_store is not None
        self.plan_store.save_applied(self.config.site_id, points, self.plan_fence())

    # ------------------------------------------------------------------ helpers
    def _now(self) -> pd.Timestamp:
        # whole milliseconds: an accelerated clock's float time has no meaningful nanoseconds
        return pd.Timestamp(round(self.clock.now(), 3), unit="s", tz="UTC").floor("ms")

    def _slot_index(self, n: int, start: float | None = None) -> pd.DatetimeIndex:
        first = self._now() if start is None else pd.Timestamp(start, unit="s", tz="UTC")
        return pd.date_range(first.floor("15min"), periods=n, freq="15min")

    def _horizon(self, start: float | None = None) -> pd.DatetimeIndex:
        """The plan's slots: at least ``horizon_slots``, on to the end of the published prices
        (at most ``max_horizon_slots``)."""
        cfg = self.config
        longest = self._slot_index(max(cfg.horizon_slots, cfg.max_horizon_slots), start)
        if cfg.max_horizon_slots <= cfg.horizon_slots:
            return longest
        known = ~self.prices.frame(longest)["price_is_estimate"].to_numpy(bool)
        n = int(np.flatnonzero(known)[-1]) + 1 if known.any() else 0
        return longest[: max(n, cfg.horizon_slots)]

    def _configured_heat_pump(self) -> HeatPump | None:
        hps = self.config.home.site.heat_pumps
        return hps[0] if hps else None

    def _heat_pump(self) -> HeatPump | None:
        """The first heat pump, with its store's loss as learned."""
        hp, fit = self._configured_heat_pump(), self.heat_fit
        if hp is None or fit is None or not fit.learned:
            return hp
        return replace(hp, loss_kw_per_k=fit.loss_kw_per_k)

    @property
    def hp_temp_c(self) -> float:
        """The observer's heat-store temperature [degC]."""
        return self._hp_temp


def _always() -> bool:
    return True


def _no_fence() -> LeaseFence | None:
    return None


def _clear_sky(system: PvSystem) -> Callable[[pd.DatetimeIndex], pd.DataFrame]:
    """Clear-sky PV [kW] of ``system`` on an index, shared by the sites with the same system."""
    return lambda index: _clear_sky_days(system, index[0], len(index)).copy()


@functools.lru_cache(maxsize=256)
def _clear_sky_days(system: PvSystem, start: pd.Timestamp, periods: int) -> pd.DataFrame:
    index = pd.date_range(start, periods=periods, freq="15min")
    return shareable(fc.pv_clear_sky(index, system).to_frame())


def input_flags(frame: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Per slot, which inputs were estimates: ``price-is_estimate`` (the price feed's flag) and
    ``weather-is_estimate`` (no provider forecast: clear sky and climatology)."""
    price = frame.get("price_is_estimate")
    return pd.DataFrame(
        {
            "price-is_estimate": np.zeros(len(frame), bool)
            if price is None
            else price.to_numpy(bool),
            "weather-is_estimate": ~_forecast_slots(weather),
        },
        index=frame.index,
    )


def inputs_summary(flags: pd.DataFrame) -> dict[str, object]:
    """The plan summary's ``inputs``: how many slots ran on estimates, and a sentence."""
    prices = int(flags["price-is_estimate"].sum())
    weather = int(flags["weather-is_estimate"].sum())
    parts = []
    if prices:
        parts.append(f"estimated prices in {prices} of {len(flags)} slots")
    if weather:
        parts.append(f"clear-sky weather in {weather} of {len(flags)} slots")
    return {
        "price_estimate_slots": prices,
        "weather_estimate_slots": weather,
        "inputs": "; ".join(parts) or "published prices and a weather forecast",
    }


def _answered(weather: pd.DataFrame) -> bool:
    """Whether a weather feed's frame holds anything but its fallback (a live feed flags
    clear-sky/climatology slots in ``source``; a backtest's data has no such column)."""
    return "source" not in weather or bool((weather["source"] != CLEARSKY).any())


def heat_loss_summary(fit: StoreFit | None, configured: HeatPump | None) -> dict[str, object]:
    """The plan summary's heat-store loss: the value used [kW/K], ``learned`` or
    ``configured``, and a sentence (see :meth:`StoreFit.describe`)."""
    if fit is None or configured is None:
        return {}
    return {
        "heat_loss_kw_per_k": round(fit.loss_kw_per_k, 4),
        "heat_loss_source": "learned" if fit.learned else "configured",
        "heat_draw_kw": round(fit.draw_kw, 3),
        "heat_loss": fit.describe(configured.loss_kw_per_k),
    }


def _forecast_slots(weather: pd.DataFrame) -> np.ndarray:
    """Per slot: is the weather a provider's forecast (feeds without a ``source`` column are)."""
    if "source" not in weather:
        return np.ones(len(weather), dtype=bool)
    return (weather["source"] == "forecast").to_numpy(bool)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def store_clock(clock: LoopClock) -> Any:
    """A ``() -> datetime`` for :func:`adapters.store.make_store` on the loop's clock."""
    return lambda: datetime.fromtimestamp(clock.now(), tz=UTC)


async def cancel_all(tasks: Sequence[asyncio.Task[Any]], every_s: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again every ``every_s``.

    Python 3.11's ``asyncio.wait_for`` can lose a cancellation that arrives as its inner
    awaitable finishes; the task then carries on (a heartbeat loop would run forever), and a
    plain ``await task`` after one ``cancel()`` would hang the hand-on of a site.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)
    for task in tasks:
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not isinstance(exc, BoxError):  # a box gone while stopping is not
            log.error("%s ended with %r while stopping", task.get_name(), exc)
