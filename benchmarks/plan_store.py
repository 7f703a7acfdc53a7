"""Plan store benchmark: time per call of saving and reading plans and setpoints, as a table.

``scheduler.plan_store.SqlPlanStore`` on a temporary SQLite file and, with ``--postgres``, on a
throw-away PostgreSQL cluster (the test suite's, ``tests/pg_server.py``) or ``--url``. The
store is first filled with ``--sites`` sites x 4 plans (96 slots x 8 columns, as the
controller stores them) and a day of setpoints each. A fenced save carries a lease checked in
the same transaction. CPU time per call is given besides wall time (the machine may be shared).

    python -m benchmarks.plan_store --postgres
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from adapters.sql import sql_engine
from adapters.store import Plan, PlanSummary, Setpoint
from api import migrations
from benchmarks.accounts_store import per_call
from scheduler.leases import LeaseManager
from scheduler.plan_store import LeaseFence, SqlPlanStore
from scheduler.plan_store import make_engine as make_plan_engine

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
COLUMNS = [
    "battery-power_kw", "battery-soc", "wallbox-power_kw", "wallbox-energy_kwh",
    "heatpump-power_kw", "heatpump-tank_temp_degc", "grid-power_kw", "pv-power_kw",
]  # fmt: skip


def plan(site: str, created: datetime, rng: np.random.Generator) -> Plan:
    index = pd.date_range(created, periods=96, freq="15min").floor("15min")
    slots = pd.DataFrame(rng.uniform(-5, 5, (96, len(COLUMNS))), index=index, columns=COLUMNS)
    summary = PlanSummary(status="optimal", objective_eur=float(rng.uniform(0, 5)))
    return Plan(site, created, slots, summary, {"prices": "2026-06-01T11:00Z"})


def fill(store: SqlPlanStore, sites: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(sites):
        site = f"site-{i:05d}"
        for k in range(4):
            store.save_plan(plan(site, NOW - timedelta(hours=k), rng))
        points = [
            Setpoint("battery", "power_kw", NOW - timedelta(minutes=15 * j), 1.0) for j in range(96)
        ]
        store.save_setpoints(site, points)


def operations(store: SqlPlanStore, sites: int) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(1)
    counter = itertools.count()
    cursor = store.plans_since(None)[0]
    leases = LeaseManager(store.engine, "bench", 3600.0)
    leases.tick(["site-00000"], NOW)
    version = leases.held()["site-00000"].version
    fence = LeaseFence("site-00000", "bench", version, round(NOW.timestamp() * 1000))
    ready = [plan("site-00000", NOW + timedelta(seconds=n), rng) for n in range(20000)]

    def save() -> None:
        store.save_plan(ready[next(counter)])

    def save_fenced() -> None:
        store.save_plan(ready[next(counter)], fence)

    def sent() -> None:
        t = NOW + timedelta(seconds=next(counter))
        names = ("power_kw", "mode", "current_a", "sgready", "budget_kw")
        store.save_setpoints("site-00001", [Setpoint("dev", q, t, 2.0) for q in names])

    return {
        "save_plan": save,
        "save_plan, fenced": save_fenced,
        "latest_plan": lambda: store.latest_plan(f"site-{int(rng.integers(sites)):05d}"),
        "plans_since (nothing new)": lambda: store.plans_since(cursor + 10**9),
        "save_setpoints (5 values)": sent,
        "setpoints (one day)": lambda: store.setpoints("site-00002", NOW - timedelta(days=1), NOW),
    }


@contextlib.contextmanager
def databases(args: argparse.Namespace, folder: Path) -> Iterator[dict[str, str]]:
    urls = {"SQLite": f"sqlite:///{folder / 'service.sqlite3'}"}
    if args.url:
        urls[args.url.split(":")[0]] = args.url
    if not args.postgres:
        yield urls
        return
    from tests.pg_server import running_postgres  # the test suite's cluster, on demand

    with running_postgres() as server:
        urls["PostgreSQL"] = server.url(server.create_database())
        yield urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--calls", type=int, default=50, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--postgres", action="store_true", help="start a throw-away cluster")
    parser.add_argument("--url", help="also time the store on this (empty) database")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hbopt-plan-bench-"))
    print(f"{'database':12} {'operation':28} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>8}")
    with databases(args, folder) as urls:
        for name, url in urls.items():
            engine = make_plan_engine(url) if url.startswith("sqlite") else sql_engine(url)
            migrations.upgrade(engine)
            store = SqlPlanStore(engine)
            fill(store, args.sites)
            for operation, call in operations(store, args.sites).items():
                median, p90, cpu = per_call(call, args.calls, args.rounds, 1e-3)
                print(f"{name:12} {operation:28} {median:10.2f} {p90:8.2f} {cpu:8.2f}")
            store.close()


if __name__ == "__main__":
    main()
