"""Closed-loop runs in simulated time, the two baselines, and the numbers that compare them.

:func:`run_closed_loop` serves a box simulator (real pymodbus server on 127.0.0.1) with a
physical twin, starts a :class:`~scheduler.controller.SiteController` against it on a
:class:`~scheduler.clock.SteppedClock`, and advances the simulated time minute by
minute. The baselines run on identical twins:

* no control (:func:`run_no_control`): the box's local logic alone -- battery
  self-consumption, the car charging at full power from plug-in, the heat pump's thermostat;
* perfect foresight (:func:`perfect_foresight`): one :func:`~optimizer.optimize` over
  the whole period on what actually happened (PV, load, temperatures, prices, every EV
  session with its real arrival, departure and energy) -- the limit no controller can beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm import tqdm

from adapters.clock import SimClock
from adapters.heartbeat.client import HeartbeatClient
from adapters.store import StoreSettings, TelemetryStore, make_store
from optimizer import (
    ChargingMode,
    EVSession,
    Inputs,
    Plan,
    Problem,
    Site,
    State,
    Wallbox,
    optimize,
)
from pricing import load_tariff, site_prices
from scheduler.backtest_inputs import EV_HISTORY, BacktestInputs
from scheduler.clock import SteppedClock
from scheduler.controller import SiteConfig, SiteController, store_clock
from scheduler.ev_sessions import history_samples
from scheduler.feeds import PriceFeed
from simulation.box import BoxConfig, HeartbeatBox
from simulation.box_inprocess import InProcessClient
from simulation.box_sim import BoxSimulator, start_box_simulator
from simulation.twin import SiteParams, Twin, TwinStep, bundled_profiles

STEP_S = 60


def scripted_twin(
    start: str | pd.Timestamp,
    days: int,
    sessions: Sequence[tuple[str | pd.Timestamp, str | pd.Timestamp, float]],
) -> Twin:
    """A twin on the bundled data whose car arrives and leaves as given.

    ``sessions`` are ``(plug-in, plug-out, energy the car takes [kWh])`` with UTC times.
    """
    profiles = bundled_profiles(pd.Timestamp(start).floor("D"), days, SiteParams())
    ev = pd.DataFrame(
        {
            "location": "scripted",
            "user_id": "scripted",
            "session_id": [f"s{i}" for i in range(len(sessions))],
            "plugin_utc": [pd.Timestamp(a) for a, _, _ in sessions],
            "plugout_utc": [pd.Timestamp(b) for _, b, _ in sessions],
            "energy_kwh": [float(e) for _, _, e in sessions],
        }
    )
    return Twin(SiteParams(), replace(profiles, ev_sessions=ev))


@dataclass
class ClosedLoopRun:
    """A finished closed-loop run: per-minute twin steps, cycle reports, plans, the box."""

    steps: pd.DataFrame
    controller: SiteController
    box: HeartbeatBox
    wall_s: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


def steps_frame(steps: list[TwinStep]) -> pd.DataFrame:
    """Twin steps as a frame on their start times (UTC): powers [kW], SOC, temperatures."""
    cols = ["dt_s", "pv_kw", "load_kw", "ev_kw", "hp_kw", "battery_kw", "grid_kw", "soc_start",
            "soc_end", "t_store_c", "t_out_c", "ev_plugged"]  # fmt: skip
    index = pd.DatetimeIndex(pd.to_datetime([s.t for s in steps], unit="s", utc=True))
    return pd.DataFrame({c: [getattr(s, c) for s in steps] for c in cols}, index=index)


def measured_box(twin: Twin, start: pd.Timestamp, site_id: str) -> tuple[HeartbeatBox, SimClock]:
    """A box whose twin ran its first minute before ``start``, so it has measurements.

    That minute is dropped from ``box.steps`` and the twin's states are restored after it,
    so the box records from ``start`` on from the twin's state at ``start``.
    """
    sim_clock = SimClock(start - pd.Timedelta(minutes=1))
    box = HeartbeatBox(twin, sim_clock, BoxConfig(site_id, watchdog_timeout_s=60))
    sim_clock.set(start)
    state = twin.snapshot()
    box.tick()
    twin.restore(state)
    box.keep_steps = True
    return box, sim_clock


@contextlib.asynccontextmanager
async def simulated_site(
    config: SiteConfig,
    twin: Twin,
    start: pd.Timestamp,
    *,
    transport: Literal["modbus", "inprocess"] = "modbus",
    store: TelemetryStore | None = None,
    executor: Executor | None = None,
    store_dir: str | None = None,
    inputs: BacktestInputs | None = None,
) -> AsyncIterator[tuple[SiteController, HeartbeatBox, SteppedClock]]:
    """A box (served on 127.0.0.1, or in-process), a store and a started controller.

    All share one simulated clock at ``start``; advance it with :func:`drive`. With
    ``inputs`` the controller's prices, CO2, weather and heat demand come from them only;
    without, from the bundled data.
    """
    box, sim_clock = measured_box(twin, start, config.site_id)
    clock = SteppedClock(sim_clock)
    sim: BoxSimulator | None = None
    client: HeartbeatClient
    if transport == "modbus":
        sim = await start_box_simulator(box)
        config = replace(config, host=sim.host, port=sim.port)
        client = HeartbeatClient(
            sim.host, sim.port, controller_id=config.controller_id, clock=sim_clock
        )
    else:
        client = InProcessClient(box, controller_id=config.controller_id)
    own_pool = executor is None
    pool = executor or ProcessPoolExecutor(max_workers=1)
    own_store = store is None
    if store is None:
        settings = StoreSettings(data_dir=Path(store_dir or "."), sqlite_file="scheduler.sqlite3")
        store = make_store(settings, clock=store_clock(clock))

    def now() -> pd.Timestamp:
        return pd.Timestamp(clock.now(), unit="s", tz="UTC")

    if inputs is None:
        feed = PriceFeed.bundled(
            load_tariff(config.home.tariff_path), config.home.export_rules(), now
        )
        controller = SiteController(config, clock, store, feed, pool, client=client)
    else:
        seed_ev_history(store, config, inputs, start)
        controller = SiteController(
            config, clock, store, inputs.price_feed(now), pool, client=client,
            weather=inputs.weather_feed(), heat_demand=inputs.heat_demand_feed(),
            load_forecast=inputs.load_feed(),
        )  # fmt: skip
    try:
        await controller.start()
        yield controller, box, clock
    finally:
        await controller.stop()
        if sim is not None:
            await sim.stop()
        if own_store:
            store.close()
        if own_pool:
            pool.shutdown()


async def drive(
    clock: SteppedClock,
    box: HeartbeatBox,
    end: pd.Timestamp,
    progress: tqdm | None = None,
    on_minute: Callable[[float], None] | None = None,
) -> None:
    """Advance simulated time to ``end`` minute by minute, ticking the box's physics."""
    t_end = end.timestamp()
    while clock.now() < t_end:
        t = min(clock.now() + STEP_S, t_end)
        await clock.advance_to(t)
        box.tick()
        if on_minute is not None:
            on_minute(t)
        if progress is not None:
            progress.update(1)


def seed_ev_history(
    store: TelemetryStore, config: SiteConfig, inputs: BacktestInputs, start: pd.Timestamp
) -> None:
    """Write ``inputs.ev_history`` as the wallbox's telemetry before ``start``, charged at full
    power from plug-in (the box's own logic), so the controller learns from it."""
    wallboxes = config.home.site.wallboxes
    history = inputs.ev_history
    if history is None or history.empty or not wallboxes:
        return
    wb = wallboxes[0]
    index = pd.date_range(start - EV_HISTORY, start, freq="15min", inclusive="left")
    power = wb.max_power_kw
    # a car plugged in across the start: plugged, nothing drawn yet (the twin's session
    # starts whole), so the controller finds its real plug-in as after a restart
    sessions = inputs.ev_sessions
    ongoing = sessions[(sessions["plugin_utc"] < start) & (sessions["plugout_utc"] > start)]
    history = pd.concat([history, ongoing.assign(energy_kwh=0.0)], ignore_index=True)
    store.write(history_samples(config.site_id, history, index, power))


async def run_closed_loop(
    config: SiteConfig,
    twin: Twin,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    transport: Literal["modbus", "inprocess"] = "modbus",
    store_dir: str | None = None,
    progress: bool = False,
    desc: str = "closed loop",
    inputs: BacktestInputs | None = None,
    watch: Callable[[SiteController], None] | None = None,
) -> ClosedLoopRun:
    """Run the controller against the simulated box from ``start`` to ``end`` (UTC).

    ``inputs``: the data the controller sees (default: the bundled feeds); ``watch`` is called
    with the controller after every simulated minute (e.g. to record its problems).
    """
    t0 = time.perf_counter()
    minutes = int((end - start).total_seconds() // STEP_S)
    site = simulated_site(
        config, twin, start, transport=transport, store_dir=store_dir, inputs=inputs
    )
    async with site as (ctl, box, clock):
        with tqdm(total=minutes, desc=desc, unit="sim-min", disable=not progress) as bar:
            on_minute = None if watch is None else (lambda _t: watch(ctl))
            await drive(clock, box, end, bar, on_minute)
    return ClosedLoopRun(steps_frame(box.steps), ctl, box, time.perf_counter() - t0)


def run_no_control(twin: Twin, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The box's local logic alone from ``start`` to ``end``; per-minute twin steps."""
    box, clock = measured_box(twin, start, "no-control")
    while clock.now() < end.timestamp():
        clock.advance(STEP_S)
        box.tick()
    return steps_frame(box.steps)


def perfect_foresight(
    config: SiteConfig,
    twin: Twin,
    start: pd.Timestamp,
    end: pd.Timestamp,
    soc0: float,
    *,
    prices: pd.DataFrame | None = None,
) -> Plan:
    """One plan over the whole period on the actual data (the limit).

    Each EV session gets its own wallbox, available only between its real plug-in and
    plug-out (one optimizer wallbox holds one session), with its real energy as the target.
    PV, load, temperatures and heat demand come from the twin's profiles; ``prices``
    (import/export [EUR/kWh], CO2 [g/kWh] on the period's slots) default to the bundled ones.
    """
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    home = config.home
    if prices is None:
        frame = site_prices(index, load_tariff(home.tariff_path), home.export_rules())
    else:
        frame = prices.reindex(index).copy()
    prof = twin.profiles
    t0 = pd.Timestamp(prof.start, unit="s", tz="UTC")
    pos = np.asarray((index - t0) // pd.Timedelta(minutes=15), dtype=int) % len(prof.pv_kw)
    frame["pv_kw"] = prof.pv_kw[pos]
    frame["load_kw"] = prof.load_kw[pos]
    frame["t_out_c"] = prof.t_out_c[pos]
    wallboxes, sessions = _session_wallboxes(home.site, prof.ev_sessions, start, end)
    site = Site(home.site.grid, home.site.pv, home.site.battery, wallboxes, home.site.heat_pumps)
    temps = {hp.name: config.hp_temp_init_c for hp in site.heat_pumps}
    demand = {}
    if prof.heat_kw is not None and site.heat_pumps:
        demand = {site.heat_pumps[0].name: prof.heat_kw[pos]}
    inputs = Inputs.from_frame(frame, demand)
    problem = Problem(site, inputs, State(soc0, temps, sessions), config.tuning)
    return optimize(problem, config.solver)


def _session_wallboxes(
    site: Site, sessions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[tuple[Wallbox, ...], tuple[EVSession, ...]]:
    if not site.wallboxes:
        return (), ()
    base = replace(site.wallboxes[0], efficiency=1.0)  # the twin's car takes grid kWh 1:1
    boxes, evs = [], []
    rows = zip(sessions["plugin_utc"], sessions["plugout_utc"], sessions["energy_kwh"], strict=True)
    for i, (plugin, plugout, wanted) in enumerate(rows):
        arrive = max(pd.Timestamp(plugin), start).ceil("15min")
        leave = min(pd.Timestamp(plugout), end).floor("15min")
        hours = (leave - arrive) / pd.Timedelta(hours=1)
        if hours <= 0:
            continue
        energy = min(float(wanted), base.power_range_kw(base.phases)[1] * hours)
        name = f"ev{i}"
        boxes.append(replace(base, name=name))
        evs.append(
            EVSession(name, ChargingMode.SMART, capacity_kwh=max(energy, 1.0) + 1.0,
                      energy_kwh=0.0, target_kwh=energy, departure=leave, arrival=arrive)
        )  # fmt: skip
    return tuple(boxes), tuple(evs)


@dataclass(frozen=True)
class Outcome:
    """Money, energy and CO2 of one run over a period.

    ``value_left_eur`` prices what the run stored compared with how it started: battery
    energy [kWh], heat (store temperature change x capacity / COP 3.5) and the energy put into
    cars, all at the period's mean import price; ``net_cost_eur = cost_eur - value_left_eur``
    is what runs that end in different states, or charge cars differently, are compared on.
    """

    cost_eur: float
    import_kwh: float
    export_kwh: float
    pv_kwh: float
    self_consumption: float
    co2_kg: float
    ev_kwh: float
    hp_kwh: float
    soc_end: float
    value_left_eur: float = 0.0

    @property
    def net_cost_eur(self) -> float:
        """Energy cost minus the value of battery energy and heat left over [EUR]."""
        return self.cost_eur - self.value_left_eur


@dataclass(frozen=True)
class Valuation:
    """How :class:`Outcome` prices a change of stored energy."""

    battery_kwh: float
    heat_kwh_per_k: float
    eur_per_kwh: float
    cop: float = 3.5

    def value(self, d_soc: float, d_temp_k: float, ev_kwh: float) -> float:
        """Value of ``d_soc`` [0-1] more battery, a ``d_temp_k`` [K] warmer store and
        ``ev_kwh`` [kWh] charged into cars [EUR]."""
        heat_el_kwh = d_temp_k * self.heat_kwh_per_k / self.cop
        return (d_soc * self.battery_kwh + heat_el_kwh + ev_kwh) * self.eur_per_kwh


def valuation(config: SiteConfig, prices: pd.DataFrame) -> Valuation:
    """Stored energy valued at the period's mean import price (see :class:`Outcome`)."""
    site = config.home.site
    battery = site.battery.capacity_kwh if site.battery is not None else 0.0
    heat = sum(hp.capacity_kwh_per_k for hp in site.heat_pumps)
    return Valuation(battery, heat, float(prices["import_eur_per_kwh"].mean()))


def outcome_from_steps(
    steps: pd.DataFrame, prices: pd.DataFrame, value: Valuation, temp0_c: float
) -> Outcome:
    """Outcome of per-minute twin steps priced with the slot prices of ``prices``."""
    h = steps["dt_s"].to_numpy(float) / 3600
    slot = prices.reindex(pd.DatetimeIndex(steps.index).floor("15min"))
    grid = steps["grid_kw"].to_numpy(float)
    imp, exp = np.clip(grid, 0, None) * h, np.clip(-grid, 0, None) * h
    pv = float((steps["pv_kw"].to_numpy(float) * h).sum())
    d_soc = float(steps["soc_end"].iloc[-1] - steps["soc_start"].iloc[0])
    d_temp = float(steps["t_store_c"].iloc[-1]) - temp0_c
    ev_kwh = float((steps["ev_kw"].to_numpy(float) * h).sum())
    return Outcome(
        cost_eur=float((imp * slot["import_eur_per_kwh"] - exp * slot["export_eur_per_kwh"]).sum()),
        import_kwh=float(imp.sum()),
        export_kwh=float(exp.sum()),
        pv_kwh=pv,
        self_consumption=1 - float(exp.sum()) / pv if pv > 0 else 0.0,
        co2_kg=float((imp * slot["co2_g_per_kwh"]).sum() / 1000),
        ev_kwh=ev_kwh,
        hp_kwh=float((steps["hp_kw"].to_numpy(float) * h).sum()),
        soc_end=float(steps["soc_end"].iloc[-1]),
        value_left_eur=value.value(d_soc, d_temp, ev_kwh),
    )


def outcome_from_plan(plan: Plan, value: Valuation, temp0_c: float) -> Outcome:
    """Outcome of a plan's slots, priced like :func:`outcome_from_steps`."""
    s = plan.slots
    h = plan.problem.inputs.dt_h
    imp, exp = s["grid_import_kw"] * h, s["grid_export_kw"] * h
    pv = float((s["pv_kw"] * h).sum())
    ev_cols = [c for c in map(str, s.columns) if c.startswith("ev") and c.endswith("_kw")]
    d_soc = float(s["battery_soc"].iloc[-1]) - plan.problem.state.battery_soc
    d_temp = float(s["hp_temp_c"].iloc[-1]) - temp0_c if "hp_temp_c" in s else 0.0
    ev_kwh = float(s[ev_cols].sum().sum() * h) if ev_cols else 0.0
    return Outcome(
        cost_eur=float((imp * s["import_eur_per_kwh"] - exp * s["export_eur_per_kwh"]).sum()),
        import_kwh=float(imp.sum()),
        export_kwh=float(exp.sum()),
        pv_kwh=pv,
        self_consumption=1 - float(exp.sum()) / pv if pv > 0 else 0.0,
        co2_kg=float((imp * s["co2_g_per_kwh"]).sum() / 1000),
        ev_kwh=ev_kwh,
        hp_kwh=float(s["hp_kw"].sum() * h) if "hp_kw" in s else 0.0,
        soc_end=float(s["battery_soc"].iloc[-1]) if "battery_soc" in s else 0.0,
        value_left_eur=value.value(d_soc, d_temp, ev_kwh),
    )


def period_prices(config: SiteConfig, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The actual retail prices and CO2 of the period (all known afterwards)."""
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    home = config.home
    return site_prices(index, load_tariff(home.tariff_path), home.export_rules())


def run(coro: object) -> object:
    """``asyncio.run`` for the CLI (kept here so CLI modules stay thin)."""
    return asyncio.run(coro)  # type: ignore[arg-type]
