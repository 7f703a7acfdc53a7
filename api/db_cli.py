"""``hbopt db``: the service database's schema (Alembic, scripts in :mod:`api.migrations`).

``hbopt db upgrade``
    Bring the database of ``HBOPT_DATABASE_URL`` (else the SQLite file ``HBOPT_DATABASE_PATH``)
    to the newest revision, then move the plans and setpoints an earlier release kept in the
    telemetry SQLite file into it; the API and the control loop do the same when they start.
``hbopt db current``
    Print the revision the database is at and the newest one the code knows.
``hbopt db revision -m "add a column"``
    Write a new, empty revision file into ``api/migrations/versions/`` (numbered after the
    newest) for a developer to fill in.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import CliError


def register(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="upgrade or inspect the service database's schema")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="migrate the database to the newest revision")
    upgrade.set_defaults(func=run_upgrade)
    current = actions.add_parser("current", help="print the database's and the code's revision")
    current.set_defaults(func=run_current)
    revision = actions.add_parser("revision", help="write a new empty revision file")
    revision.add_argument("-m", "--message", required=True, help="what the revision changes")
    revision.set_defaults(func=run_revision)


def _engine() -> Any:
    from adapters.sql import sql_engine
    from api.accounts_store import database_url
    from api.cli import check_data_dirs
    from api.settings import get_settings

    settings = get_settings()
    check_data_dirs(settings)
    return sql_engine(database_url(settings.accounts_url()), ("busy_timeout=5000",))


def run_upgrade(args: argparse.Namespace) -> int:
    from api import migrations
    from api.settings import get_settings
    from scheduler.plan_store import SqlPlanStore

    engine = _engine()
    try:
        before = migrations.current_revision(engine)
        migrations.upgrade(engine)
        print(f"database at revision {migrations.current_revision(engine)} (was {before})")
        legacy = get_settings().telemetry_path
        moved = SqlPlanStore(engine).import_legacy(legacy)
        if any(moved):
            print(f"moved {moved[0]} plans and {moved[1]} setpoints from {legacy} into it")
    finally:
        engine.dispose()
    return 0


def run_current(args: argparse.Namespace) -> int:
    from api import migrations

    engine = _engine()
    try:
        print(f"database: {migrations.current_revision(engine)}")
        print(f"code:     {migrations.head_revision()}")
    finally:
        engine.dispose()
    return 0


def run_revision(args: argparse.Namespace) -> int:
    from alembic import command

    from api import migrations

    head = migrations.head_revision()
    if head is None or not head.isdigit():
        raise CliError(f"the newest revision {head!r} is not numbered; name the new one by hand")
    script = command.revision(
        migrations.alembic_config(), message=args.message, rev_id=f"{int(head) + 1:04d}"
    )
    written = script if isinstance(script, list) else [script]
    for each in written:
        if each is not None:
            print(each.path)
    return 0
