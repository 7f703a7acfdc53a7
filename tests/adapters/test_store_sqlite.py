"""The SQLite store: idempotent writes, windows, aggregates, retention, export, delete."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.store import (
    StoreError,
    StoreSettings,
    TelemetryStore,
    make_store,
)
from adapters.store.sqlite import MIGRATIONS, SqliteStore
from adapters.store.telemetry import ALL_FIELDS, Sample
from tests.adapters.store_support import MINUTE, NOW, fixed_clock, pv_and_battery, sqlite_store

__all__ = ["sqlite_store"]
QUARTER = timedelta(minutes=15)


def raw_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM raw").fetchone()[0])


def test_resent_five_day_backlog_creates_no_duplicates(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path)
    store = make_store(settings, clock=fixed_clock)
    start = NOW - timedelta(days=5)
    backlog = pv_and_battery("s", start, 5 * 1440)
    # Out of order: newest batch first, each batch reversed.
    batches = [backlog[i : i + 1000] for i in range(0, len(backlog), 1000)]
    for batch in reversed(batches):
        assert store.write(batch[::-1]).accepted == len(batch)
    assert store.write(backlog).accepted == len(backlog)  # the box re-sends everything
    assert raw_rows(settings.sqlite_path) == 2 * 5 * 1440
    window = store.window("s", start, NOW)
    # PV ramps 0.1 kW per minute: the mean of a quarter-hour is its middle minute's power.
    minutes = np.arange(5 * 96) * 15 + 7
    np.testing.assert_allclose(window["pv-power_kw"].to_numpy(), minutes / 10)
    assert (window["battery-power_kw"] == -1.0).all()
    assert window["grid-power_kw"].isna().all()


def test_resent_sample_updates_only_its_fields(sqlite_store: TelemetryStore) -> None:
    ts = NOW - MINUTE
    sqlite_store.write([Sample("s", "battery", ts, {"power_kw": 2.0, "soc": 0.3})])
    sqlite_store.write([Sample("s", "battery", ts, {"power_kw": 2.5})])
    latest = sqlite_store.latest("s")["battery"]
    assert latest.fields == {"power_kw": 2.5, "soc": 0.3}


def test_window_energy_matches_the_samples(sqlite_store: TelemetryStore) -> None:
    start = NOW - timedelta(hours=24)
    samples = [
        Sample("s", "house", start + i * MINUTE, {"power_kw": 0.5 + (i % 60) / 60})
        for i in range(1440)
    ]
    sqlite_store.write(samples)
    energy_kwh = sum(s.fields["power_kw"] for s in samples) / 60
    for step in (timedelta(minutes=5), QUARTER, timedelta(hours=1)):
        window = sqlite_store.window("s", start, NOW, step)
        assert len(window) == timedelta(hours=24) / step
        assert str(window.index.tz) == "UTC"
        hours = step / timedelta(hours=1)
        assert window["house-power_kw"].sum() * hours == pytest.approx(energy_kwh)


def test_window_rejects_odd_step(sqlite_store: TelemetryStore) -> None:
    with pytest.raises(ValueError, match="step"):
        sqlite_store.window("s", NOW - timedelta(hours=1), NOW, timedelta(minutes=7))


def test_aggregates_outlive_raw_retention(tmp_path: Path) -> None:
    clock_now = [NOW - timedelta(days=1)]
    settings = StoreSettings(data_dir=tmp_path, raw_retention=timedelta(days=2))
    store = make_store(settings, clock=lambda: clock_now[0])
    start = NOW - timedelta(days=2)
    store.write(pv_and_battery("s", start, 1440))
    before = store.window("s", start, start + timedelta(days=1), timedelta(hours=1))
    result = store.maintain()
    assert result.aggregated_buckets == 2 * 96
    assert result.deleted_raw == 0
    clock_now[0] = NOW + timedelta(days=2)  # the day is now past retention
    result = store.maintain()
    assert result.deleted_raw == 2 * 1440
    assert store.latest("s") == {}
    after = store.window("s", start, start + timedelta(days=1), timedelta(hours=1))
    pd.testing.assert_frame_equal(before, after)
    # 5-minute means need raw samples, which are gone.
    fine = store.window("s", start, start + timedelta(hours=1), timedelta(minutes=5))
    assert fine.isna().all().all()


def test_late_backlog_updates_aggregates(tmp_path: Path) -> None:
    clock_now = [NOW]
    store = make_store(StoreSettings(data_dir=tmp_path), clock=lambda: clock_now[0])
    start = NOW - timedelta(hours=1)
    store.write([Sample("s", "pv", start, {"power_kw": 4.0})])
    store.maintain()
    # The rest of the quarter-hour arrives after an outage.
    store.write([Sample("s", "pv", start + i * MINUTE, {"power_kw": 1.0}) for i in range(1, 15)])
    store.maintain()
    clock_now[0] = NOW + timedelta(days=40)
    assert store.maintain().deleted_raw == 15
    window = store.window("s", start, start + QUARTER)
    assert window["pv-power_kw"].iloc[0] == pytest.approx((4.0 + 14 * 1.0) / 15)


def test_failed_write_is_not_acknowledged_and_can_be_retried(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path, sqlite_busy_timeout_s=0.05)
    store = make_store(settings, clock=fixed_clock)
    batch = pv_and_battery("s", NOW - timedelta(hours=1), 60)
    blocker = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock
    with pytest.raises(StoreError, match="nothing of this call was stored"):
        store.write(batch)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert raw_rows(settings.sqlite_path) == 0
    assert store.write(batch).accepted == 120
    assert raw_rows(settings.sqlite_path) == 120


def test_schema_is_migrated_once_and_covers_the_vocabulary(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path)
    make_store(settings, clock=fixed_clock).close()
    make_store(settings, clock=fixed_clock).close()  # reopening applies nothing twice
    with sqlite3.connect(settings.sqlite_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {row[1] for row in conn.execute("PRAGMA table_info(raw)")}
    assert set(ALL_FIELDS) <= columns


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path)
    with sqlite3.connect(settings.sqlite_path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(settings, fixed_clock)


def test_unknown_backend_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="influxdb"):
        make_store(StoreSettings(backend="mongo", data_dir=tmp_path))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_contains_all_of_the_site_and_nothing_else(
    sqlite_store: TelemetryStore, tmp_path: Path, fmt: str
) -> None:
    sqlite_store.write(pv_and_battery("s", NOW - timedelta(hours=1), 60))
    sqlite_store.write(pv_and_battery("other", NOW - timedelta(hours=1), 60))
    sqlite_store.maintain()
    files = sqlite_store.export_site("s", tmp_path / "export", fmt)  # type: ignore[arg-type]
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    tables = {f.stem: read(f) for f in files}
    assert len(tables["raw"]) == 120
    assert tables["raw"]["power_kw"].sum() == pytest.approx(sum(i / 10 for i in range(60)) - 60)
    assert len(tables["aggregates_15min"]) == 2 * 4
    assert set(tables) == {"raw", "aggregates_15min"}  # plans live in the service database


def test_delete_site_removes_everything_of_that_site_only(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path)
    store = make_store(settings, clock=fixed_clock)
    for site in ("s", "other"):
        store.write(pv_and_battery(site, NOW - timedelta(hours=1), 60))
    store.maintain()
    store.delete_site("s")
    with sqlite3.connect(settings.sqlite_path) as conn:
        for table in ("raw", "agg15", "dirty", "plans", "setpoints"):
            sites = {r[0] for r in conn.execute(f"SELECT DISTINCT site FROM {table}")}
            assert "s" not in sites, table
    assert store.latest("other")["pv"].fields["power_kw"] == pytest.approx(5.9)
