"""Alembic's entry point: migrate on the connection :func:`api.migrations.upgrade` hands over,
or on ``HBOPT_DATABASE_URL`` (else the default SQLite file) when run from the command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from adapters.sql import sql_engine
from api.settings import get_settings


def _run(connection: Connection) -> None:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _from_settings() -> None:
    engine = sql_engine(get_settings().accounts_url())
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


given = context.config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
if given is not None:
    _run(given)
else:
    _from_settings()
