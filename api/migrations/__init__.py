"""Alembic migrations of the service database (accounts, sites, grants, boxes, parameters...).

Shipped inside the package (``script_location = api:migrations``), so an installed wheel
migrates without an ``alembic.ini`` in the working directory. :func:`upgrade` runs at every
start of the API and the control loop; ``hbopt db upgrade`` runs it by hand, and
``hbopt db revision -m "..."`` writes a new revision file here (see docs/storage.md).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

#: Any constant key; every process that migrates takes it, so only one migrates at a time.
_MIGRATION_LOCK = 4242017000


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration on this package's scripts, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", "api:migrations")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: not under Alembic yet)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class SchemaTooNewError(ValueError):
    """The database is at a revision this code does not know (a newer release migrated it)."""


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` in one transaction, one process at a time.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock first (a second process waits its busy
    timeout, then finds the work done). PostgreSQL: DDL is transactional there, and an advisory
    lock held to the commit serialises processes that start together.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        config = alembic_config(conn)
        _refuse_unknown(config, MigrationContext.configure(conn).get_current_revision())
        command.upgrade(config, revision)


def _refuse_unknown(config: Config, current: str | None) -> None:
    if current is None:
        return
    try:
        ScriptDirectory.from_config(config).get_revision(current)
    except CommandError:
        raise SchemaTooNewError(
            f"the service database is at schema revision {current}, which this version of "
            f"the code does not know (newest: {head_revision()}); run the newer release"
        ) from None
