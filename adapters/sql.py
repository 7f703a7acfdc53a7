"""SQLAlchemy engines for the service's own tables (SQLite by default, PostgreSQL the same way)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def sql_engine(url: str, sqlite_pragmas: tuple[str, ...] = ()) -> Engine:
    """An engine for ``url``; on SQLite every new connection runs ``sqlite_pragmas`` first
    (e.g. ``busy_timeout=2000``, ``secure_delete=ON``), which are per connection there."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite" and sqlite_pragmas:

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            for pragma in sqlite_pragmas:
                cur.execute(f"PRAGMA {pragma}")
            cur.close()

    return engine
