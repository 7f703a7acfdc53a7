"""The embedded store: one SQLite file (stdlib ``sqlite3``), WAL, migrations in code.

Raw samples are one row per (site, device, ts) with one nullable column per known field, so a
re-sent sample lands on the same row (``INSERT ... ON CONFLICT DO UPDATE``) and a re-sent
partial sample only overwrites the fields it carries, as InfluxDB does. Times are integer
milliseconds since the Unix epoch, UTC. Each call runs in one transaction with
``synchronous=FULL``, so what :meth:`SqliteStore.write` acknowledged survives a crash.

Aggregation is incremental: a write marks the 15-minute buckets it touched as dirty;
:meth:`SqliteStore.maintain` recomputes those buckets, then drops raw rows older than the
retention. A late backlog therefore updates its buckets' aggregates too.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from adapters.store import (
    ExportFormat,
    MaintenanceResult,
    StoreError,
    StoreSettings,
    register_store,
)
from adapters.store.telemetry import (
    ALL_FIELDS,
    DEVICE_FIELDS,
    Sample,
    WriteResult,
    check_field_window,
    split_valid,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
QUARTER_MS = 15 * 60 * 1000

#: Schema versions; ``PRAGMA user_version`` records how many have been applied. Never edit a
#: released entry: add a new one (a new telemetry field is an ``ALTER TABLE raw ADD COLUMN``).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE raw (
        site TEXT NOT NULL, device TEXT NOT NULL, ts INTEGER NOT NULL,
        power_kw REAL, soc REAL, connected REAL, state REAL, sgready REAL,
        tank_temp_degc REAL, indoor_temp_degc REAL,
        PRIMARY KEY (site, device, ts)
    ) WITHOUT ROWID;
    CREATE TABLE agg15 (
        site TEXT NOT NULL, device TEXT NOT NULL, ts INTEGER NOT NULL,
        power_kw REAL, soc REAL, n INTEGER NOT NULL,
        PRIMARY KEY (site, device, ts)
    ) WITHOUT ROWID;
    CREATE TABLE dirty (
        site TEXT NOT NULL, device TEXT NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (site, device, ts)
    ) WITHOUT ROWID;
    CREATE TABLE plans (
        site TEXT NOT NULL, created_at INTEGER NOT NULL,
        summary TEXT NOT NULL, inputs TEXT NOT NULL, slots BLOB NOT NULL,
        PRIMARY KEY (site, created_at)
    );
    CREATE TABLE setpoints (
        site TEXT NOT NULL, device TEXT NOT NULL, quantity TEXT NOT NULL, ts INTEGER NOT NULL,
        sent REAL, applied REAL,
        PRIMARY KEY (site, device, quantity, ts)
    ) WITHOUT ROWID;
    """,
)
SITE_TABLES = ("raw", "agg15", "dirty", "plans", "setpoints")

_UPSERT_RAW = (
    f"INSERT INTO raw (site, device, ts, {', '.join(ALL_FIELDS)}) "
    f"VALUES ({', '.join('?' * (3 + len(ALL_FIELDS)))}) "
    "ON CONFLICT (site, device, ts) DO UPDATE SET "
    + ", ".join(f"{name} = coalesce(excluded.{name}, {name})" for name in ALL_FIELDS)
)
_AGGREGATE_DIRTY = f"""
    INSERT INTO agg15 (site, device, ts, power_kw, soc, n)
    SELECT d.site, d.device, d.ts, avg(r.power_kw), avg(r.soc), count(r.power_kw)
    FROM dirty d JOIN raw r
      ON r.site = d.site AND r.device = d.device AND r.ts >= d.ts AND r.ts < d.ts + {QUARTER_MS}
    WHERE d.ts + {QUARTER_MS} <= :now
    GROUP BY d.site, d.device, d.ts
    ON CONFLICT (site, device, ts) DO UPDATE SET
        power_kw = excluded.power_kw, soc = excluded.soc, n = excluded.n
"""


def to_ms(ts: datetime) -> int:
    """Milliseconds since the Unix epoch of a tz-aware time."""
    if ts.tzinfo is None:
        raise ValueError("ts: naive timestamp; use tz-aware UTC")
    return (ts - EPOCH) // MS


def from_ms(ms: int) -> datetime:
    """The UTC datetime of epoch milliseconds."""
    return EPOCH + ms * MS


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the pending :data:`MIGRATIONS`, each in its own transaction; return the version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(f"database schema v{version} is newer than this code (v{len(MIGRATIONS)})")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)


@register_store("sqlite")
class SqliteStore:
    """:class:`~adapters.store.TelemetryStore` on one SQLite file.

    Parameters
    ----------
    settings : StoreSettings
        Uses ``sqlite_path``, ``raw_retention``, ``future_tolerance``, ``sqlite_busy_timeout_s``.
    clock : callable
        Current tz-aware time (future-timestamp check, retention).
    """

    def __init__(self, settings: StoreSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly, one per call.
        self._conn = sqlite3.connect(
            settings.sqlite_path,
            isolation_level=None,
            timeout=settings.sqlite_busy_timeout_s,
            check_same_thread=False,
        )
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before write() returns, also across a power cut.
        self._conn.execute("PRAGMA synchronous = FULL")
        # Deleted rows are overwritten with zeros rather than left in free pages, so a site's
        # deletion leaves nothing readable in the file (cheaper than a VACUUM of the store).
        self._conn.execute("PRAGMA secure_delete = ON")
        migrate(self._conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StoreError(f"sqlite: {exc}; nothing of this call was stored") from exc
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Sequence[object] | dict[str, object]) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- telemetry ---------------------------------------------------------------------------

    def write(self, samples: Sequence[Sample]) -> WriteResult:
        """Store the valid samples in one transaction; reject the rest with reasons."""
        now = self.clock()
        good, rejected = split_valid(
            list(samples), now, self.settings.future_tolerance, now - self.settings.raw_retention
        )
        rows = [
            (s.site_id, s.device, to_ms(s.ts), *(_as_float(s.fields.get(f)) for f in ALL_FIELDS))
            for s in good
        ]
        buckets = {(s.site_id, s.device, to_ms(s.ts) // QUARTER_MS * QUARTER_MS) for s in good}
        with self._transaction() as conn:
            conn.executemany(_UPSERT_RAW, rows)
            conn.executemany("INSERT OR IGNORE INTO dirty VALUES (?, ?, ?)", sorted(buckets))
        return WriteResult(accepted=len(good), rejected=rejected)

    def latest(self, site_id: str) -> dict[str, Sample]:
        """Per device, the newest raw sample of ``site_id`` (fields that were reported)."""
        rows = self._read(
            f"SELECT r.device, r.ts, {', '.join('r.' + f for f in ALL_FIELDS)} FROM raw r "
            "JOIN (SELECT device, max(ts) AS ts FROM raw WHERE site = ? GROUP BY device) m "
            "ON r.device = m.device AND r.ts = m.ts WHERE r.site = ?",
            (site_id, site_id),
        )
        return {
            device: Sample(
                site_id,
                device,
                from_ms(ms),
                {f: v for f, v in zip(ALL_FIELDS, values, strict=True) if v is not None},
            )
            for device, ms, *values in rows
        }

    def window(
        self, site_id: str, start: datetime, end: datetime, step: timedelta = timedelta(minutes=15)
    ) -> pd.DataFrame:
        """Mean power per device [kW] on a UTC index ``[start, end)``, start floored to ``step``.

        Steps that divide 15 minutes come from raw samples only; multiples of 15 minutes use
        raw samples where they are still kept and the 15-minute aggregates before that (a
        bucket's mean is weighted by its sample count). Columns are ``{device}-power_kw`` for
        every known device; slots without data are NaN.
        """
        step_ms = step // MS
        if step_ms <= 0 or (QUARTER_MS % step_ms and step_ms % QUARTER_MS):
            raise ValueError(f"step: {step} must divide or be a multiple of 15 minutes")
        start_ms, end_ms = to_ms(start) // step_ms * step_ms, to_ms(end)
        parts = self._window_sums(site_id, start_ms, end_ms, min(step_ms, QUARTER_MS))
        index = pd.date_range(from_ms(start_ms), from_ms(end_ms), freq=step, inclusive="left")
        columns = [f"{device}-power_kw" for device in DEVICE_FIELDS]
        if parts.empty:
            return pd.DataFrame(float("nan"), index=index, columns=columns)
        parts["slot"] = parts["bucket"] // step_ms * step_ms
        sums = parts.groupby(["slot", "device"])[["total", "n"]].sum()
        means = (sums["total"] / sums["n"]).unstack("device")
        means.index = pd.to_datetime(means.index, unit="ms", utc=True)
        means.columns = [f"{device}-power_kw" for device in means.columns]
        return means.reindex(index=index, columns=columns)

    def field_window(
        self,
        site_id: str,
        device: str,
        field: str,
        *,
        start: datetime,
        end: datetime,
        step: timedelta = timedelta(minutes=15),
    ) -> pd.Series:
        """Mean of the raw ``field`` of ``device`` per ``step`` on ``[start, end)``; NaN where
        no raw sample holds it (start floored to ``step``)."""
        check_field_window(device, field, step)
        step_ms = step // MS
        start_ms, end_ms = to_ms(start) // step_ms * step_ms, to_ms(end)
        rows = self._read(
            f"SELECT ts / :b * :b AS bucket, avg({field}) FROM raw WHERE site = :site "
            f"AND device = :device AND ts >= :start AND ts < :end AND {field} IS NOT NULL "
            "GROUP BY bucket",
            {"site": site_id, "device": device, "start": start_ms, "end": end_ms, "b": step_ms},
        )
        index = pd.date_range(from_ms(start_ms), from_ms(end_ms), freq=step, inclusive="left")
        values = pd.Series(
            [v for _, v in rows],
            index=pd.to_datetime([b for b, _ in rows], unit="ms", utc=True),
            dtype=float,
        )
        return values.reindex(index).rename(f"{device}-{field}")

    def _window_sums(
        self, site_id: str, start_ms: int, end_ms: int, bucket_ms: int
    ) -> pd.DataFrame:
        params = {"site": site_id, "start": start_ms, "end": end_ms, "b": bucket_ms}
        raw_sums = (
            "SELECT device, ts / :b * :b AS bucket, sum(power_kw) AS total, count(power_kw) AS n "
            "FROM raw WHERE site = :site AND ts >= :start AND ts < :end GROUP BY device, bucket"
        )
        sql = raw_sums
        if bucket_ms == QUARTER_MS:
            sql = (
                f"WITH r AS ({raw_sums}) SELECT * FROM r UNION ALL "
                "SELECT a.device, a.ts, a.power_kw * a.n, a.n FROM agg15 a "
                "WHERE a.site = :site AND a.ts >= :start AND a.ts < :end AND a.n > 0 "
                "AND NOT EXISTS (SELECT 1 FROM r WHERE r.device = a.device AND r.bucket = a.ts)"
            )
        rows = self._read(sql, params)
        return pd.DataFrame(rows, columns=["device", "bucket", "total", "n"])

    def maintain(self, now: datetime | None = None) -> MaintenanceResult:
        """Recompute touched, complete 15-minute buckets; then drop raw rows past retention."""
        now_ms = to_ms(now or self.clock())
        retention_ms = self.settings.raw_retention // MS
        cutoff = (now_ms - retention_ms) // QUARTER_MS * QUARTER_MS
        with self._transaction() as conn:
            aggregated = conn.execute(_AGGREGATE_DIRTY, {"now": now_ms}).rowcount
            conn.execute("DELETE FROM dirty WHERE ts + ? <= ?", (QUARTER_MS, now_ms))
            deleted = conn.execute("DELETE FROM raw WHERE ts < ?", (cutoff,)).rowcount
        return MaintenanceResult(aggregated_buckets=aggregated, deleted_raw=deleted)

    # -- data subject rights -----------------------------------------------------------------

    def export_site(self, site_id: str, path: Path, fmt: ExportFormat = "csv") -> list[Path]:
        """Write raw samples and aggregates as ``path/<table>.<fmt>``."""
        return write_frames(self.site_frames(site_id), Path(path), fmt)

    def site_frames(self, site_id: str) -> dict[str, pd.DataFrame]:
        """All of a site's rows, one frame per table (times as UTC datetimes)."""
        queries = {
            "raw": f"SELECT device, ts, {', '.join(ALL_FIELDS)} FROM raw",
            "aggregates_15min": "SELECT device, ts, power_kw, soc, n FROM agg15",
        }
        frames = {}
        with self._lock:
            for name, sql in queries.items():
                cursor = self._conn.execute(f"{sql} WHERE site = ? ORDER BY ts", (site_id,))
                frame = pd.DataFrame(cursor.fetchall(), columns=[d[0] for d in cursor.description])
                frame["ts"] = pd.to_datetime(frame["ts"], unit="ms", utc=True)
                frames[name] = frame
        return frames

    def delete_site(self, site_id: str) -> None:
        """Delete every row of the site from every table, in one transaction."""
        with self._transaction() as conn:
            for table in SITE_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE site = ?", (site_id,))
        with self._lock:
            # The WAL still holds the pages as they were before; fold it in and truncate it.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close the connection (checkpoints the WAL)."""
        with self._lock:
            self._conn.close()


def write_frames(frames: dict[str, pd.DataFrame], path: Path, fmt: ExportFormat) -> list[Path]:
    """Write each frame as ``path/<name>.<fmt>`` (CSV or Parquet); return the paths."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt: {fmt!r} is not 'csv' or 'parquet'")
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in frames.items():
        target = path / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(target, index=False)
        else:
            frame.to_parquet(target, index=False)
        written.append(target)
    return written


def _as_float(value: float | None) -> float | None:
    return None if value is None else float(value)
