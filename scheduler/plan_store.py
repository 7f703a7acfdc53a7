"""Plans and setpoints in the service database (SQLAlchemy Core, SQLite or PostgreSQL).

The control processes write a plan per solve and the setpoints they sent; the API (on other
hosts, maybe) reads them back, and its plan cache follows :meth:`SqlPlanStore.plans_since`.
They live next to the accounts and the site leases, on ``HBOPT_DATABASE_URL``, so a write can
be fenced by the lease in the same transaction, and API and control hosts share nothing but
the database. The tables are Alembic's (:mod:`api.migrations`, revision 0002); the composition
root migrates before it opens this store.

Times are epoch milliseconds (integers compare the same on both databases); a plan's slots
are one Parquet blob, read and written whole.
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.sql import sql_engine, upsert_insert, write_transaction
from adapters.store import Plan, PlanSummary, Setpoint
from adapters.store.sqlite import EPOCH, from_ms, to_ms
from scheduler.leases import site_leases

metadata = sa.MetaData()

#: SQLite makes only an ``INTEGER PRIMARY KEY`` (not BIGINT) the rowid that counts up by itself.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),  # the plans_since cursor
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),  # epoch [ms]
    sa.Column("summary_json", sa.Text, nullable=False),
    sa.Column("inputs_json", sa.Text, nullable=False),
    sa.Column("slots", sa.LargeBinary, nullable=False),  # Parquet
    sa.UniqueConstraint("site_id", "created_at_ms", name="plans_site_created"),
    # never reuse an id (SQLite would reuse the highest after a delete): it is a cursor
    sqlite_autoincrement=True,
)
setpoints = sa.Table(
    "setpoints",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("ts_ms", sa.BigInteger, primary_key=True),  # epoch [ms]
    sa.Column("device", sa.String(40), primary_key=True),
    sa.Column("quantity", sa.String(40), primary_key=True),
    sa.Column("sent", sa.Float),
    sa.Column("applied", sa.Float),
)

#: Any constant key, different from the migration's and the change log's.
_PLAN_ORDER_LOCK = 4242017002


@dataclass(frozen=True)
class LeaseFence:
    """The lease a write is made under: it lands only while the site's lease row still has
    this holder and version and has not expired at ``now_ms`` [epoch ms]."""

    site_id: str
    holder: str
    version: int
    now_ms: int


class PlanStore(Protocol):
    """Where plans and sent/applied setpoints live (see module docstring)."""

    def save_plan(self, plan: Plan, fence: LeaseFence | None = None) -> bool:
        """Store a plan (replaces one of the same site and ``created_at``); False if fenced off."""
        ...

    def latest_plan(self, site_id: str) -> Plan | None:
        """The plan with the latest ``created_at`` of the site, or ``None``."""
        ...

    def plans_since(self, cursor: int | None) -> tuple[int, list[str]]:
        """The sites with a plan saved after ``cursor`` and the cursor to pass next time;
        ``None`` gives the current cursor and no sites."""
        ...

    def save_setpoints(
        self, site_id: str, sent: Sequence[Setpoint], fence: LeaseFence | None = None
    ) -> bool:
        """Record setpoints as sent to the box; False if fenced off."""
        ...

    def save_applied(
        self, site_id: str, applied: Sequence[Setpoint], fence: LeaseFence | None = None
    ) -> bool:
        """Record the values the box reports as applied; False if fenced off."""
        ...

    def setpoints(self, site_id: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Sent and applied values in ``[start, end)``: columns ts, device, quantity, sent,
        applied."""
        ...

    def site_frames(self, site_id: str) -> dict[str, pd.DataFrame]:
        """All of a site's rows: ``plans``, ``plan_slots`` and ``setpoints`` frames."""
        ...

    def delete_sites(self, site_ids: Sequence[str]) -> None:
        """Remove every plan and setpoint of the sites, leaving no bytes readable."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def make_engine(url: str) -> Engine:
    """An engine for the plan tables (SQLite: WAL, a busy timeout, zeroed deleted rows)."""
    return sql_engine(url, ("busy_timeout=5000", "journal_mode=WAL", "secure_delete=ON"))


class SqlPlanStore:
    """:class:`PlanStore` on a SQLAlchemy engine (tables made by the migrations).

    Parameters
    ----------
    engine : Engine
        The service database (migrated to revision 0002 or later).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite: this process's writers queue here instead of spinning on the file lock
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def open(cls, url: str) -> SqlPlanStore:
        return cls(make_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with write_transaction(self.engine, self._write_lock) as conn:
            yield conn

    def _insert(self, table: sa.Table) -> Any:
        return upsert_insert(self.dialect, table)

    # -- plans ---------------------------------------------------------------------------------
    def save_plan(self, plan: Plan, fence: LeaseFence | None = None) -> bool:
        """Store ``plan`` (replacing one of the same site and ``created_at``, under a new id).

        Returns False, storing nothing, when ``fence`` no longer holds the site's lease.
        """
        row = plan_row(plan)
        with self._tx() as conn:
            if not _fence_holds(conn, fence):
                return False
            if self.dialect == "postgresql":
                # The id is the cursor of plans_since, so ids must become visible in id order.
                # A sequence hands them out at insert, not at commit: writer A takes 7, B takes
                # 8 and commits first, a reader moves its cursor to 8 and never sees 7. Taking
                # this lock before the insert makes the writers take ids one after another,
                # each after the previous commit (held to the commit; taken last, so briefly).
                # SQLite has one writer at a time anyway (BEGIN IMMEDIATE).
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PLAN_ORDER_LOCK)))
            conn.execute(
                plans.delete().where(
                    plans.c.site_id == row["site_id"], plans.c.created_at_ms == row["created_at_ms"]
                )
            )
            conn.execute(plans.insert().values(**row))
        return True

    def latest_plan(self, site_id: str) -> Plan | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(plans)
                .where(plans.c.site_id == site_id)
                .order_by(plans.c.created_at_ms.desc())
                .limit(1)
            ).first()
        return None if row is None else row_plan(row._mapping)

    def plans_since(self, cursor: int | None) -> tuple[int, list[str]]:
        with self.engine.connect() as conn:
            if cursor is None:
                newest = conn.execute(sa.select(sa.func.max(plans.c.id))).scalar_one()
                return int(newest or 0), []
            rows = conn.execute(
                sa.select(plans.c.site_id, plans.c.id)
                .where(plans.c.id > cursor)
                .order_by(plans.c.id)
            ).all()
        if not rows:
            return cursor, []
        return int(rows[-1].id), sorted({str(r.site_id) for r in rows})

    # -- setpoints -----------------------------------------------------------------------------
    def save_setpoints(
        self, site_id: str, sent: Sequence[Setpoint], fence: LeaseFence | None = None
    ) -> bool:
        return self._upsert_setpoints(site_id, sent, "sent", fence)

    def save_applied(
        self, site_id: str, applied: Sequence[Setpoint], fence: LeaseFence | None = None
    ) -> bool:
        return self._upsert_setpoints(site_id, applied, "applied", fence)

    def _upsert_setpoints(
        self, site_id: str, points: Sequence[Setpoint], column: str, fence: LeaseFence | None
    ) -> bool:
        rows = [
            {
                "site_id": site_id,
                "device": p.device,
                "quantity": p.quantity,
                "ts_ms": to_ms(p.ts),
                column: finite(p),
            }
            for p in points
        ]
        with self._tx() as conn:
            if not _fence_holds(conn, fence):
                return False
            if rows:
                insert = self._insert(setpoints)
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["site_id", "ts_ms", "device", "quantity"],
                        set_={column: getattr(insert.excluded, column)},
                    ),
                    rows,
                )
        return True

    def setpoints(self, site_id: str, start: datetime, end: datetime) -> pd.DataFrame:
        sp = setpoints.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sp.ts_ms, sp.device, sp.quantity, sp.sent, sp.applied)
                .where(sp.site_id == site_id, sp.ts_ms >= to_ms(start), sp.ts_ms < to_ms(end))
                .order_by(sp.ts_ms, sp.device, sp.quantity)
            ).all()
        frame = pd.DataFrame(
            [tuple(r) for r in rows], columns=["ts", "device", "quantity", "sent", "applied"]
        )
        frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ms", utc=True)
        frame[["sent", "applied"]] = frame[["sent", "applied"]].astype(float)
        return frame

    # -- data subject rights -------------------------------------------------------------------
    def site_frames(self, site_id: str) -> dict[str, pd.DataFrame]:
        with self.engine.connect() as conn:
            plan_rows = conn.execute(
                sa.select(plans).where(plans.c.site_id == site_id).order_by(plans.c.created_at_ms)
            ).all()
        frames = plan_frames([row_plan(r._mapping) for r in plan_rows])
        frames["setpoints"] = self.setpoints(site_id, EPOCH, datetime.max.replace(tzinfo=UTC))
        return frames

    def delete_sites(self, site_ids: Sequence[str]) -> None:
        """Delete the sites' rows, then leave no copy in the files: SQLite zeroes freed pages
        (``secure_delete``) and the WAL is folded in and truncated; PostgreSQL keeps deleted
        bytes until ``VACUUM FULL`` rewrites the tables into new files."""
        if not site_ids:
            return
        with self._tx() as conn:
            for table in (plans, setpoints):
                conn.execute(table.delete().where(table.c.site_id.in_(list(site_ids))))
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
                autocommit.exec_driver_sql("VACUUM FULL plans, setpoints")

    # -- upgrade from the telemetry file -------------------------------------------------------
    def import_legacy(self, telemetry_file: Path) -> tuple[int, int]:
        """Move plans and setpoints out of a telemetry SQLite file of earlier releases.

        Copies every row not here yet (a plan is known by site and ``created_at``; a setpoint
        keeps the values already here), commits, then deletes the copied rows from the file,
        so a second run finds nothing and a run cut short repeats safely. Plans are copied in
        their save order, so the cursor order is kept. Returns (plans, setpoints) moved.
        """
        if not Path(telemetry_file).is_file():
            return 0, 0
        legacy = sqlite3.connect(telemetry_file, timeout=30.0, isolation_level=None)
        try:
            tables = {r[0] for r in legacy.execute("SELECT name FROM sqlite_master")}
            if not {"plans", "setpoints"} <= tables or not _has_rows(legacy):
                return 0, 0  # nothing to move: no write lock on the live file, no checkpoint
            # the file's write lock from the read to the delete: an older release still
            # running on it cannot add a row in between that the delete would lose
            legacy.execute("BEGIN IMMEDIATE")
            plan_rows = legacy.execute(
                "SELECT site, created_at, summary, inputs, slots FROM plans ORDER BY rowid"
            ).fetchall()
            point_rows = legacy.execute(
                "SELECT site, device, quantity, ts, sent, applied FROM setpoints"
            ).fetchall()
            if plan_rows or point_rows:
                self._copy_legacy(plan_rows, point_rows)
                legacy.execute("PRAGMA secure_delete = ON")
                legacy.execute("DELETE FROM plans")
                legacy.execute("DELETE FROM setpoints")
            legacy.execute("COMMIT")
            if plan_rows or point_rows:
                legacy.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            if legacy.in_transaction:
                legacy.execute("ROLLBACK")
            legacy.close()
        return len(plan_rows), len(point_rows)

    def _copy_legacy(self, plan_rows: list[tuple], point_rows: list[tuple]) -> None:
        keys = ["site_id", "created_at_ms", "summary_json", "inputs_json", "slots"]
        point_keys = ["site_id", "device", "quantity", "ts_ms", "sent", "applied"]
        with self._tx() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PLAN_ORDER_LOCK)))
            if plan_rows:
                conn.execute(
                    self._insert(plans).on_conflict_do_nothing(
                        index_elements=["site_id", "created_at_ms"]
                    ),
                    [dict(zip(keys, r, strict=True)) for r in plan_rows],
                )
            if point_rows:
                conn.execute(
                    self._insert(setpoints).on_conflict_do_nothing(),
                    [dict(zip(point_keys, r, strict=True)) for r in point_rows],
                )


def _has_rows(legacy: sqlite3.Connection) -> bool:
    """Does the telemetry file still hold plans or setpoints of an earlier release?"""
    found = legacy.execute(
        "SELECT EXISTS (SELECT 1 FROM plans) OR EXISTS (SELECT 1 FROM setpoints)"
    ).fetchone()
    return bool(found[0])


def _fence_holds(conn: Connection, fence: LeaseFence | None) -> bool:
    """Is the lease row still the fence's? On PostgreSQL the row is share-locked to the end of
    the transaction, so a take-over (an UPDATE of that row) waits for this write's commit and
    the write lands before the new owner's, never after; SQLite's writers are serialised."""
    if fence is None:
        return True
    sl = site_leases.c
    held = conn.execute(
        sa.select(sl.site_id)
        .where(
            sl.site_id == fence.site_id,
            sl.holder == fence.holder,
            sl.version == fence.version,
            sl.expires_at_ms > fence.now_ms,
        )
        .with_for_update(read=True)
    ).first()
    return held is not None


# ---------------------------------------------------------------------- pure conversions
def plan_row(plan: Plan) -> dict[str, Any]:
    """The ``plans`` row of a plan (slots as Parquet)."""
    buffer = io.BytesIO()
    plan.slots.to_parquet(buffer)
    return {
        "site_id": plan.site_id,
        "created_at_ms": to_ms(plan.created_at),
        "summary_json": plan.summary.model_dump_json(),
        "inputs_json": json.dumps(dict(plan.inputs_versions), sort_keys=True),
        "slots": buffer.getvalue(),
    }


def row_plan(row: Any) -> Plan:
    """The plan of a ``plans`` row (a mapping with the table's column names)."""
    return Plan(
        site_id=str(row["site_id"]),
        created_at=from_ms(int(row["created_at_ms"])),
        slots=pd.read_parquet(io.BytesIO(bytes(row["slots"]))),
        summary=PlanSummary.model_validate_json(row["summary_json"]),
        inputs_versions=json.loads(row["inputs_json"]),
    )


def plan_frames(stored: Sequence[Plan]) -> dict[str, pd.DataFrame]:
    """Plans as two export tables: ``plans`` (one row each) and ``plan_slots`` (every slot)."""
    created = pd.DatetimeIndex([p.created_at for p in stored], tz=UTC)
    frame = pd.DataFrame(
        {
            "created_at": created,
            "summary": [p.summary.model_dump_json() for p in stored],
            "inputs": [json.dumps(dict(p.inputs_versions), sort_keys=True) for p in stored],
        }
    )
    slots = [
        p.slots.rename_axis("ts").reset_index().assign(created_at=when)
        for when, p in zip(created, stored, strict=True)
    ]
    return {
        "plans": frame,
        "plan_slots": pd.concat(slots, ignore_index=True) if slots else pd.DataFrame(),
    }


def finite(point: Setpoint) -> float:
    """The setpoint's value, refused when NaN or infinite."""
    value = float(point.value)
    if not math.isfinite(value):
        raise ValueError(f"setpoint {point.device}-{point.quantity}: value {value} is not finite")
    return value
