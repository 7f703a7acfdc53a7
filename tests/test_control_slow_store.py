"""A store held by another connection's lock must not stall the control loop, and a stop must
wait for the writes in flight before the leases go.

Real parts: the control loop (``hbopt.service.ControlLoop``, leases on) in this event loop, two
box simulators (pymodbus servers on 127.0.0.1), the telemetry in a SQLite file, the service
database a SQLite file or a real PostgreSQL. The clock runs x5 with the production timings
(a 60 s watchdog, a 30 s lease renewed every 5 s: a heartbeat every 10 s = 2 s real; x10 left
the lease thread of a loaded 2-core host too little of its 3 s real lease).

The slow store is real: a second connection takes the telemetry file's write lock (then, on
PostgreSQL, the plan table's) and keeps it for seconds. Each controller's write waits for it
on a store thread; before, it waited on the event loop, and every box of the process went
unbeaten.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from api.settings import Settings
from hbopt.failover import START, fleet_accounts, served_boxes
from hbopt.service import ControlLoop, ControlSettings
from scheduler.clock import ScaledRealClock
from scheduler.controller import SiteController
from scheduler.runtime import Supervisor, lease_keep_alive_s
from simulation.box import HeartbeatBox

pytestmark = pytest.mark.anyio
SPEED = 5.0
WATCHDOG_S, LEASE_S = 60, 30.0
#: How long the other connection keeps the telemetry file locked [s, real] (its writers wait
#: up to 5 s for it).
HOLD_S = 4.0


async def test_a_locked_store_neither_stalls_the_loop_nor_loses_a_write_across_stop(
    tmp_path: Path, db_url: str
) -> None:
    clock = ScaledRealClock((START - pd.Timedelta(minutes=2)).timestamp(), SPEED)
    async with served_boxes(clock, 2, WATCHDOG_S) as sims:
        ids = fleet_accounts(db_url, [s.port for s in sims])
        boxes = dict(zip(ids, (s.box for s in sims), strict=True))
        async with _control(tmp_path, db_url, clock) as control:
            sup = await _started(control, ids)
            keep_alive = lease_keep_alive_s(WATCHDOG_S, LEASE_S)  # 10 s simulated
            lags: list[float] = []
            probe = asyncio.create_task(_probe(lags))
            # 1. the telemetry file locked while both sites cycle: their readings wait
            before = {s: len(c.reports) for s, c in sup.running.items()}
            t_hold = clock.now()
            telemetry = tmp_path / "telemetry.sqlite3"
            with _sqlite_locked(telemetry):
                for controller in sup.running.values():
                    controller.trigger("test")
                await asyncio.sleep(HOLD_S)
                t_free = clock.now()
            probe.cancel()
            assert max(lags) < 1.0, f"event loop stalled {max(lags):.2f} s"
            for site_id, box in boxes.items():  # every box beaten on through the hold
                assert _max_gap(box, t_hold, t_free) <= keep_alive + 5.0, site_id
            # the cycles went on once the lock was gone, their readings stored
            await _until(lambda: all(len(c.reports) > before[s] for s, c in sup.running.items()))
            assert all(c.reports[-1].ok for c in sup.running.values())
            # 2. stopped while both sites wait to store what their cycle wrote: on PostgreSQL
            # the plans (the plan table locked, the leases free), on SQLite the readings
            controllers = dict(sup.running)
            plans_before = _plan_counts(db_url, ids)
            commits = {s: len(b.schedule_commits) for s, b in boxes.items()}
            postgres = not db_url.startswith("sqlite")
            with _plans_locked(db_url) if postgres else _sqlite_locked(telemetry):
                for controller in controllers.values():
                    controller.trigger("test")
                if postgres:  # each box got its plan: the cycle now waits to store it
                    await _until(lambda: all(len(b.schedule_commits) > commits[s]
                                             for s, b in boxes.items()))  # fmt: skip
                else:
                    await _until(lambda: all(c._writes for c in controllers.values()))
                await asyncio.sleep(0.2)
                control.stop.cancel()
                await asyncio.sleep(1.0)
                # the stop waits for the writes: the leases are still this process's
                assert not control.stop.done()
                assert _holders(db_url, ids) == {control.holder}
            await asyncio.wait([control.stop], timeout=60)
            assert control.stop.done()
    # every plan of a cycle that reached its box is stored, and every reading polled
    if postgres:
        assert _plan_counts(db_url, ids) == {s: plans_before[s] + 1 for s in ids}
    assert _holders(db_url, ids) == {None}  # released once the writes were in
    stored = _last_reading_ms(telemetry, ids)
    for site_id, controller in controllers.items():
        assert controller._last_stored is not None
        assert stored[site_id] == round(controller._last_stored * 1000), site_id


# ---------------------------------------------------------------------- the rig
class _Control:
    def __init__(self, loop: ControlLoop, task: asyncio.Task[None]) -> None:
        self.loop, self.stop = loop, task

    @property
    def holder(self) -> str:
        sup = self.loop.supervisor
        assert sup is not None and sup.leases is not None
        return sup.leases.holder


@contextlib.asynccontextmanager
async def _control(tmp: Path, db_url: str, clock: ScaledRealClock) -> AsyncIterator[_Control]:
    settings = Settings(
        database_url=db_url,
        database_path=tmp / "accounts.sqlite3",
        telemetry_path=tmp / "telemetry.sqlite3",
        log_requests=False,
        input_jobs=False,
    )
    control = ControlSettings(
        solver_workers=1,
        watchdog_timeout_s=WATCHDOG_S,
        lease_ttl_s=LEASE_S,
        lease_renew_s=5.0,
        horizon_slots=48,
        schedule_slots=48,
        cycle_lead_s=0.0,
    )
    loop = ControlLoop(settings, control, clock)
    task = asyncio.create_task(loop.run())
    try:
        yield _Control(loop, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _started(control: _Control, ids: list[str]) -> Supervisor:
    def ready() -> bool:
        sup = control.loop.supervisor
        running = {} if sup is None else sup.running
        return len(running) == len(ids) and all(_planned(c) for c in running.values())

    await _until(ready, 120.0)
    assert control.loop.supervisor is not None
    return control.loop.supervisor


def _planned(controller: SiteController) -> bool:
    return bool(controller.reports) and controller.reports[-1].ok


async def _until(condition: object, timeout_s: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _probe(lags: list[float]) -> None:
    """How late the event loop wakes a task that sleeps 20 ms [s, real]."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.02)
        lags.append(time.perf_counter() - t - 0.02)


def _max_gap(box: HeartbeatBox, start: float, end: float) -> float:
    """The longest time [s, simulated] in ``[start, end]`` without a heartbeat of the box."""
    beats = [start] + [t for t in box.beat_times if start < t < end] + [end]
    last_before = max((t for t in box.beat_times if t <= start), default=start)
    beats[0] = last_before
    return max(b - a for a, b in itertools.pairwise(beats))


# ---------------------------------------------------------------------- the other connection
@contextmanager
def _sqlite_locked(path: Path) -> Iterator[None]:
    """Another connection holds the file's write lock (WAL: readers go on, writers wait)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@contextmanager
def _plans_locked(db_url: str) -> Iterator[None]:
    """Another PostgreSQL connection holds the ``plans`` table (the leases stay free)."""
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("LOCK TABLE plans IN EXCLUSIVE MODE")
            yield
    finally:
        engine.dispose()


def _plan_counts(db_url: str, ids: list[str]) -> dict[str, int]:
    rows = _query(db_url, "SELECT site_id, count(*) FROM plans GROUP BY site_id")
    counts = {str(site): int(n) for site, n in rows}
    return {s: counts.get(s, 0) for s in ids}


def _holders(db_url: str, ids: list[str]) -> set[str | None]:
    rows = _query(db_url, "SELECT site_id, holder FROM site_leases")
    return {holder for site, holder in rows if site in ids}


def _query(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def _last_reading_ms(path: Path, ids: list[str]) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT site, max(ts) FROM raw GROUP BY site").fetchall()
    finally:
        conn.close()
    return {str(site): int(ts) for site, ts in rows if site in ids}
