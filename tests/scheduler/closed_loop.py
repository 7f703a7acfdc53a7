"""Helpers: a twin with chosen EV sessions, a controller on a served box, minute recording."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from adapters.heartbeat.client import HeartbeatClient
from adapters.heartbeat.esi_types import ControlState
from adapters.store import StoreSettings, TelemetryStore, make_store
from api import migrations
from pricing import load_tariff
from scheduler.clock import SteppedClock
from scheduler.controller import SiteConfig, SiteController, store_clock
from scheduler.feeds import PriceFeed
from scheduler.plan_store import SqlPlanStore
from scheduler.plan_store import make_engine as make_plan_engine
from scheduler.simulate import measured_box
from simulation.box import HeartbeatBox
from simulation.box_sim import BoxSimulator, start_box_simulator
from simulation.twin import Twin


@dataclass
class Rig:
    """A served box on a stepped clock; controllers can be started and killed on it."""

    box: HeartbeatBox
    sim: BoxSimulator
    clock: SteppedClock
    store: TelemetryStore
    executor: Executor
    #: Plans and setpoints, in a service database of their own (a migrated SQLite file).
    plans: SqlPlanStore
    states: list[ControlState] = field(default_factory=list)
    latched: list[bool] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)

    @classmethod
    async def start(cls, twin: Twin, start: str, tmp: Path, executor: Executor) -> Rig:
        box, sim_clock = measured_box(twin, pd.Timestamp(start), "test-site")
        clock = SteppedClock(sim_clock)
        sim = await start_box_simulator(box)
        settings = StoreSettings(data_dir=tmp, sqlite_file="t.sqlite3")
        store = make_store(settings, clock=store_clock(clock))
        return cls(box, sim, clock, store, executor, service_plan_store(tmp / "service.sqlite3"))

    def controller(self, config: SiteConfig) -> SiteController:
        cfg = replace(config, host=self.sim.host, port=self.sim.port)
        feed = PriceFeed.bundled(
            load_tariff(cfg.home.tariff_path),
            cfg.home.export_rules(),
            lambda: pd.Timestamp(self.clock.now(), unit="s", tz="UTC"),
        )
        client = HeartbeatClient(
            cfg.host, cfg.port, controller_id=cfg.controller_id, clock=self.clock.sim
        )
        return SiteController(
            cfg, self.clock, self.store, feed, self.executor, client=client, plan_store=self.plans
        )

    async def run_until(self, end: str | pd.Timestamp) -> None:
        """Advance minute by minute, recording the box's control state after each."""
        t_end = pd.Timestamp(end).timestamp()
        while self.clock.now() < t_end:
            await self.clock.advance_to(min(self.clock.now() + 60, t_end))
            self.box.tick()
            now = self.clock.now()
            self.states.append(self.box.control_state(now))
            self.latched.append(self.box.latched)
            self.applied.append(self.box.applied_seq)

    def steps(self) -> pd.DataFrame:
        s = self.box.steps
        index = pd.DatetimeIndex(pd.to_datetime([x.t for x in s], unit="s", utc=True))
        cols = ["dt_s", "pv_kw", "load_kw", "ev_kw", "hp_kw", "battery_kw", "grid_kw", "soc_end"]
        return pd.DataFrame({c: [getattr(x, c) for x in s] for c in cols}, index=index)

    async def close(self) -> None:
        await self.sim.stop()
        self.store.close()
        self.plans.close()


def service_plan_store(path: Path) -> SqlPlanStore:
    """A plan store on a new, migrated service database file at ``path``."""
    engine = make_plan_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    return SqlPlanStore(engine)
