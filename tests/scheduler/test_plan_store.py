"""The plan store in the service database, on a SQLite file and on PostgreSQL: round trips,
the plans_since cursor under concurrent writers, setpoints, lease fencing, export, deletion,
the schema upgrade of databases made by earlier releases and the move out of the telemetry file.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.sql import sql_engine
from adapters.store import Plan, PlanSummary, Setpoint, StoreSettings, make_store
from api import migrations
from notifications import store as notification_tables
from scheduler import leases as lease_tables
from scheduler.leases import LeaseManager
from scheduler.plan_store import LeaseFence, SqlPlanStore
from tests.pg_server import database_files
from tests.scheduler.legacy_plans_sqlite import write_legacy

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def make_plan(site: str, hours_ago: float, cost: float) -> Plan:
    created = NOW - timedelta(hours=hours_ago)
    index = pd.date_range(created, periods=96, freq="15min")
    slots = pd.DataFrame(
        {"battery-power_kw": np.linspace(-3.3, 3.3, 96), "battery-soc": np.linspace(0, 1, 96)},
        index=index,
    )
    summary = PlanSummary(status="optimal", objective_eur=cost, import_kwh=12.25)
    return Plan(site, created, slots, summary, {"prices": "2024-06-10T11:00Z", "config": "v3"})


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = sql_engine(db_url, ("busy_timeout=5000", "journal_mode=WAL", "secure_delete=ON"))
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def plans(engine: Engine) -> SqlPlanStore:
    return SqlPlanStore(engine)


def assert_same_plan(got: Plan | None, want: Plan) -> None:
    assert got is not None
    assert (got.site_id, got.created_at) == (want.site_id, want.created_at)
    pd.testing.assert_frame_equal(got.slots, want.slots, check_freq=False)
    assert got.summary.model_dump() == want.summary.model_dump()
    assert dict(got.inputs_versions) == dict(want.inputs_versions)


def test_latest_plan_round_trips_exactly(plans: SqlPlanStore) -> None:
    assert plans.latest_plan("s") is None
    older, newer = make_plan("s", 2, 1.5), make_plan("s", 1, 1.25)
    assert plans.save_plan(newer)
    plans.save_plan(older)  # saved later, created earlier: not the latest
    plans.save_plan(make_plan("other", 0, 9.0))
    assert_same_plan(plans.latest_plan("s"), newer)
    assert plans.latest_plan("s").summary.model_dump()["import_kwh"] == 12.25  # type: ignore[union-attr]


def test_plans_since_names_each_site_saved_after_the_cursor(db_url: str, engine: Engine) -> None:
    writer, reader = SqlPlanStore(engine), SqlPlanStore(sql_engine(db_url))
    writer.save_plan(make_plan("a", 3, 1.0))
    cursor, sites = reader.plans_since(None)
    assert sites == []
    writer.save_plan(make_plan("b", 5, 1.0))
    writer.save_plan(make_plan("a", 2, 1.0))
    cursor, sites = reader.plans_since(cursor)
    assert sites == ["a", "b"]
    assert reader.plans_since(cursor) == (cursor, [])
    writer.save_plan(make_plan("a", 2, 2.0))  # the same plan saved again: replaced, seen again
    cursor, sites = reader.plans_since(cursor)
    assert sites == ["a"]
    assert reader.latest_plan("a").summary.objective_eur == 2.0  # type: ignore[union-attr]
    reader.close()


def test_plans_since_misses_no_save_of_concurrent_writers(db_url: str, engine: Engine) -> None:
    """Six writers (threads with their own connections) save 40 plans each while a reader
    follows the cursor; every save must show up. On PostgreSQL without the insert lock, a
    sequence id taken early but committed late falls behind the reader's cursor."""
    reader = SqlPlanStore(engine)
    cursor, _ = reader.plans_since(None)
    seen: set[str] = set()
    done = threading.Event()
    base = make_plan("x", 1, 1.0)
    small = base.slots.iloc[:4]

    def write(w: int) -> None:
        store = SqlPlanStore(engine)
        for i in range(40):
            store.save_plan(Plan(f"w{w}-{i}", NOW, small, base.summary))

    writers = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in writers:
        t.start()
    while not done.is_set():
        cursor, sites = reader.plans_since(cursor)
        seen.update(sites)
        done.wait(0.001) if any(t.is_alive() for t in writers) else done.set()
    cursor, sites = reader.plans_since(cursor)
    seen.update(sites)
    assert seen == {f"w{w}-{i}" for w in range(6) for i in range(40)}


def test_plan_with_naive_index_is_refused() -> None:
    plan = make_plan("s", 1, 1.0)
    with pytest.raises(ValueError, match="naive"):
        dataclasses.replace(plan, slots=plan.slots.tz_localize(None))


def test_setpoints_pair_sent_and_applied(plans: SqlPlanStore) -> None:
    ts = NOW
    plans.save_setpoints("s", [Setpoint("battery", "power_kw", ts, 3.0)])
    plans.save_setpoints("s", [Setpoint("battery", "power_kw", ts, 2.0)])  # re-sent
    plans.save_applied("s", [Setpoint("battery", "power_kw", ts, 1.8)])
    plans.save_applied("s", [Setpoint("heatpump", "sgready", ts, 3)])
    plans.save_setpoints("s", [Setpoint("battery", "power_kw", ts + QUARTER, 5.0)])  # outside
    frame = plans.setpoints("s", ts, ts + QUARTER)
    assert len(frame) == 2
    battery = frame[frame["device"] == "battery"].iloc[0]
    assert (battery["sent"], battery["applied"]) == (2.0, 1.8)
    assert battery["ts"] == pd.Timestamp(ts)
    assert np.isnan(frame[frame["device"] == "heatpump"]["sent"].iloc[0])
    with pytest.raises(ValueError, match="battery-power_kw"):
        plans.save_setpoints("s", [Setpoint("battery", "power_kw", ts, float("nan"))])


def test_a_process_that_lost_the_lease_overwrites_nothing(engine: Engine) -> None:
    """Process a's lease expires and b takes the site over; a, still running its cycle, tries
    to store its plan and setpoints under its old lease: nothing of it lands."""
    plans = SqlPlanStore(engine)
    a, b = LeaseManager(engine, "a", 30.0), LeaseManager(engine, "b", 30.0)
    a.tick(["s"], NOW)
    old = a.held()["s"]
    fence_a = LeaseFence("s", "a", old.version, round(NOW.timestamp() * 1000))
    assert plans.save_plan(make_plan("s", 1, 1.0), fence_a)  # a's plan while a holds the lease
    later = NOW + timedelta(seconds=31)  # a missed its renewals: the lease expired
    b.tick(["s"], later)
    new = b.held()["s"]
    assert new.version == old.version + 1
    fence_b = LeaseFence("s", "b", new.version, round(later.timestamp() * 1000))
    b_plan = make_plan("s", 0.5, 2.0)
    assert plans.save_plan(b_plan, fence_b)
    a_late = LeaseFence("s", "a", old.version, round(later.timestamp() * 1000))
    stale = make_plan("s", 0, 99.0)  # newer created_at: it would become the latest plan
    assert not plans.save_plan(stale, a_late)
    assert not plans.save_setpoints("s", [Setpoint("battery", "power_kw", later, 9.0)], a_late)
    assert not plans.save_applied("s", [Setpoint("battery", "power_kw", later, 9.0)], a_late)
    expired = LeaseFence(
        "s", "b", new.version, round((later + timedelta(seconds=31)).timestamp() * 1000)
    )
    assert not plans.save_plan(stale, expired)  # b's own lease, but past its expiry
    assert_same_plan(plans.latest_plan("s"), b_plan)
    assert plans.setpoints("s", NOW, later + QUARTER).empty


def test_export_and_deletion_cover_the_site_only(
    db_url: str, plans: SqlPlanStore, request: pytest.FixtureRequest
) -> None:
    for site in ("site_gone_3f2a", "site_kept_77c1"):
        plans.save_plan(make_plan(site, 1, 1.0))
        plans.save_plan(make_plan(site, 2, 1.0))
        plans.save_setpoints(site, [Setpoint("battery", "power_kw", NOW, 3.0)])
        plans.save_applied(site, [Setpoint("battery", "power_kw", NOW, 2.5)])
    frames = plans.site_frames("site_gone_3f2a")
    assert len(frames["plans"]) == 2 and len(frames["plan_slots"]) == 2 * 96
    assert frames["setpoints"][["sent", "applied"]].values.tolist() == [[3.0, 2.5]]
    plans.delete_sites(["site_gone_3f2a"])
    assert plans.latest_plan("site_gone_3f2a") is None
    assert plans.setpoints("site_gone_3f2a", NOW, NOW + QUARTER).empty
    assert plans.latest_plan("site_kept_77c1") is not None
    raw = b"".join(p.read_bytes() for p in database_files(db_url, request))
    assert b"site_kept_77c1" in raw  # the files read are the ones the rows live in
    assert b"site_gone_3f2a" not in raw


def test_an_earlier_release_s_database_upgrades_with_its_lease_and_notification_tables(
    db_url: str,
) -> None:
    """A database at revision 0001 whose lease and notification tables were made by
    ``create_all`` (as processes of earlier releases did) upgrades in place, rows kept."""
    engine = sql_engine(db_url)
    migrations.upgrade(engine, "0001")
    lease_tables.metadata.create_all(engine)
    notification_tables.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(lease_tables.site_leases).values(
                site_id="s", holder="p", expires_at_ms=5, version=3
            )
        )
        conn.execute(
            sa.insert(notification_tables.preferences).values(
                user_id="u", kind="k", channels="feed"
            )
        )
    migrations.upgrade(engine)
    assert migrations.current_revision(engine) == migrations.head_revision() == "0002"
    with engine.connect() as conn:
        lease = conn.execute(sa.select(lease_tables.site_leases)).one()
        pref = conn.execute(sa.select(notification_tables.preferences)).one()
    assert tuple(lease) == ("s", "p", 5, 3)
    assert tuple(pref) == ("u", "k", "feed")
    SqlPlanStore(engine).save_plan(make_plan("s", 1, 1.0))  # and the new tables are there
    engine.dispose()


def test_plans_and_setpoints_move_out_of_the_telemetry_file_once(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    telemetry = tmp_path / "data" / "heartbeat.sqlite3"
    stored = [make_plan("a", 3, 1.0), make_plan("a", 2, 2.0), make_plan("b", 1, 3.0)]
    sent = [("a", Setpoint("battery", "power_kw", NOW - i * QUARTER, float(i))) for i in range(8)]
    applied = [("a", Setpoint("battery", "power_kw", NOW - i * QUARTER, i - 0.5)) for i in range(6)]
    applied.append(("b", Setpoint("heatpump", "sgready", NOW, 3.0)))
    write_legacy(telemetry, stored, sent, applied)
    samples = make_store(StoreSettings(data_dir=telemetry.parent))
    samples.close()
    plans = SqlPlanStore(engine)
    cursor, _ = plans.plans_since(None)
    assert plans.import_legacy(telemetry) == (3, 9)
    assert plans.import_legacy(telemetry) == (0, 0)  # the second start moves nothing
    for site in ("a", "b"):
        frames = plans.site_frames(site)
        mine = [p for p in stored if p.site_id == site]
        assert frames["plans"]["created_at"].tolist() == [p.created_at for p in mine]
    assert_same_plan(plans.latest_plan("a"), stored[1])
    assert_same_plan(plans.latest_plan("b"), stored[2])
    with engine.connect() as conn:
        from scheduler.plan_store import plans as plan_table
        from scheduler.plan_store import row_plan

        every = [
            row_plan(r._mapping)
            for r in conn.execute(sa.select(plan_table).order_by(plan_table.c.id))
        ]
    for got, want in zip(every, stored, strict=True):  # all of them, in their save order
        assert_same_plan(got, want)
    frame = plans.setpoints("a", NOW - 8 * QUARTER, NOW + QUARTER).sort_values("ts")
    want_sent = [float(i) for i in reversed(range(8))]
    assert frame["sent"].tolist() == want_sent
    assert frame["applied"].tolist()[-6:] == [i - 0.5 for i in reversed(range(6))]
    assert frame["applied"].isna().sum() == 2
    assert plans.setpoints("b", NOW, NOW + QUARTER)["applied"].tolist() == [3.0]
    assert plans.plans_since(cursor)[1] == ["a", "b"]  # the API's cache hears of them
    with sqlite3.connect(telemetry) as conn:
        assert conn.execute("SELECT count(*) FROM plans").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM setpoints").fetchone() == (0,)
