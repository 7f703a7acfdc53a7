"""Plans and setpoints move into the service database; leases and notifications come under
Alembic.

* ``plans`` and ``setpoints``: new here (they were in the telemetry SQLite file, which
  :meth:`scheduler.plan_store.SqlPlanStore.import_legacy` empties into them after the upgrade).
* ``site_leases``, ``control_processes`` and the ``notify_*`` tables: earlier releases made
  them with ``create_all`` when a process started, so a database may have them already; each
  is created only where missing, with the definition it had then.

The definitions are frozen here (not imported from the modules that use them), so a later
change to a module cannot change what this revision did.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = sa.DateTime(timezone=True)


def _tables() -> sa.MetaData:
    frozen = sa.MetaData()
    sa.Table(
        "plans",
        frozen,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("summary_json", sa.Text, nullable=False),
        sa.Column("inputs_json", sa.Text, nullable=False),
        sa.Column("slots", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("site_id", "created_at_ms", name="plans_site_created"),
        # never reuse an id (SQLite would reuse the highest after a delete): it is a cursor
        sqlite_autoincrement=True,
    )
    sa.Table(
        "setpoints",
        frozen,
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("ts_ms", sa.BigInteger, primary_key=True),
        sa.Column("device", sa.String(40), primary_key=True),
        sa.Column("quantity", sa.String(40), primary_key=True),
        sa.Column("sent", sa.Float),
        sa.Column("applied", sa.Float),
    )
    sa.Table(
        "site_leases",
        frozen,
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128)),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False, default=0),
        sa.Column("version", sa.BigInteger, nullable=False, default=0),
    )
    sa.Table(
        "control_processes",
        frozen,
        sa.Column("holder", sa.String(128), primary_key=True),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
    )
    _notification_tables(frozen)
    return frozen


def _notification_tables(frozen: sa.MetaData) -> None:
    sa.Table(
        "notify_preferences",
        frozen,
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("channels", sa.String(200), nullable=False),
    )
    sa.Table(
        "notify_user_settings",
        frozen,
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("webhook_url", sa.String(2000)),
        sa.Column("webhook_format", sa.String(10), nullable=False),
        sa.Column("offline_minutes", sa.Integer, nullable=False),
    )
    sa.Table(
        "notify_push_subscriptions",
        frozen,
        sa.Column("endpoint", sa.String(2000), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("p256dh", sa.String(200), nullable=False),
        sa.Column("auth", sa.String(100), nullable=False),
        sa.Column("created", _AT, nullable=False),
    )
    sa.Table(
        "notify_feed",
        frozen,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64), nullable=False, index=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("read", sa.Boolean, nullable=False),
        sa.UniqueConstraint("user_id", "key"),
    )
    sa.Table(
        "notify_deliveries",
        frozen,
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500)),
        sa.Column("at", _AT, nullable=False),
    )
    sa.Table(
        "notify_ev_sessions",
        frozen,
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("plugged_in", _AT, primary_key=True),
        sa.Column("plugged_out", _AT, nullable=False),
        sa.Column("target_kwh", sa.Float),
        sa.Column("energy_kwh", sa.Float),
        sa.Column("delivered_kwh", sa.Float, nullable=False),
        sa.Column("met", sa.Boolean),
    )


def upgrade() -> None:
    conn = op.get_bind()
    existing = set(sa.inspect(conn).get_table_names())
    for table in _tables().sorted_tables:
        if table.name not in existing:
            table.create(conn)


def downgrade() -> None:
    raise NotImplementedError("not undone; restore a backup instead")
