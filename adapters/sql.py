"""SQLAlchemy engines for the service's own tables (SQLite by default, PostgreSQL the same way)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine


def sql_engine(url: str, sqlite_pragmas: tuple[str, ...] = ()) -> Engine:
    """An engine for ``url``; on SQLite every new connection runs ``sqlite_pragmas`` first
    (e.g. ``busy_timeout=2000``, ``secure_delete=ON``), which are per connection there."""
    # A server connection can drop while pooled; a SQLite file cannot, so no ping per checkout.
    engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite" and sqlite_pragmas:

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            for pragma in sqlite_pragmas:
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

    return engine


def upsert_insert(dialect: str, table: sa.Table) -> Any:
    """INSERT on ``table`` with the dialect's ``ON CONFLICT`` clauses (PostgreSQL or SQLite)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@contextmanager
def write_transaction(engine: Engine, lock: threading.Lock | None) -> Iterator[Connection]:
    """One write transaction. SQLite has one writer per file: this process's writers queue on
    ``lock`` first and take the write lock at BEGIN (IMMEDIATE), so a transaction that read
    first is never refused with "database is locked" at its first write."""
    with lock or nullcontext(), engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


class UtcTimestamp(sa.types.TypeDecorator[datetime]):
    """A tz-aware UTC instant: ``timestamptz`` on PostgreSQL, ISO-8601 text on SQLite.

    The text is ``datetime.isoformat()`` of the UTC value (``2026-03-29T00:30:00+00:00``), the
    form the account file has held since its first version, so files written before SQLAlchemy
    read back unchanged and compare in time order as text (one offset everywhere). Naive values
    are refused rather than guessed.
    """

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a tz-aware UTC instant")
        utc = value.astimezone(UTC)
        return utc if dialect.name == "postgresql" else utc.isoformat()

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return instant.astimezone(UTC)
