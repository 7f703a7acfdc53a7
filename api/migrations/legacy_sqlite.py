"""The account file's schema before Alembic: seven SQL scripts counted in ``PRAGMA user_version``.

Kept verbatim (never edit an applied script): the baseline revision runs the ones a SQLite file
has not had yet, so a file from any earlier version reaches schema 7 with every row kept, and a
fresh file gets exactly the schema an upgraded one has. New changes are Alembic revisions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from sqlalchemy.engine import Connection

MIGRATIONS: tuple[str, ...] = (
    # 1: the whole schema. Later changes append a new script; never edit an applied one.
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL,
        confirmed_at TEXT
    );
    CREATE TABLE email_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        purpose TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        family_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT,
        revoked_at TEXT
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
    CREATE TABLE sites (
        id TEXT PRIMARY KEY,
        owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        timezone TEXT NOT NULL,
        fleet_group TEXT NOT NULL,
        factory_service INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX sites_owner ON sites(owner_id);
    CREATE TABLE grants (
        site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        supporter_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        PRIMARY KEY (site_id, supporter_id)
    );
    CREATE INDEX grants_supporter ON grants(supporter_id);
    CREATE TABLE starter_codes (
        serial TEXT PRIMARY KEY,
        code_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE TABLE boxes (
        id TEXT PRIMARY KEY,
        site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        serial TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX boxes_site ON boxes(site_id);
    CREATE TABLE request_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        ip TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        principal TEXT,
        duration_ms REAL NOT NULL
    );
    CREATE INDEX request_log_at ON request_log(at);
    CREATE INDEX request_log_principal ON request_log(principal);
    CREATE TABLE group_parameters (
        fleet_group TEXT PRIMARY KEY,
        parameters_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    CREATE TABLE site_parameters (
        site_id TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
        parameters_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    CREATE TABLE parameter_audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        scope_key TEXT NOT NULL,
        site_id TEXT REFERENCES sites(id) ON DELETE CASCADE,
        field TEXT NOT NULL,
        old_value TEXT,
        new_value TEXT
    );
    CREATE INDEX parameter_audit_scope ON parameter_audit(scope, scope_key);
    CREATE TABLE setpoint_acks (
        id INTEGER PRIMARY KEY,
        site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        box_id TEXT NOT NULL,
        etag TEXT NOT NULL,
        applied_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        setpoints_json TEXT NOT NULL
    );
    CREATE INDEX setpoint_acks_site ON setpoint_acks(site_id, received_at);
    """,
    # 2: the owner's device preferences (charging mode and departure per wallbox, comfort band
    # per heat pump) that the scheduler reads when it builds a site's problem.
    """
    CREATE TABLE device_preferences (
        site_id TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        preferences_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (site_id, kind, name)
    );
    """,
    # 3: the physical equipment of a site (PV, battery, wallboxes, heat pumps, grid), JSON
    # validated by the API, from which the optimizer's site is built.
    """
    CREATE TABLE site_equipment (
        site_id TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
        equipment_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    """,
    # 4: what the control loop needs: the Modbus address of a box (by serial), the owner's
    # optimization switch, the runtime status per site, and a change log that triggers fill on
    # every write the control loop depends on, so a separate control process sees changes by
    # polling one indexed table instead of being told by every route.
    """
    CREATE TABLE box_links (
        serial TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        port INTEGER NOT NULL,
        unit INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE site_control (
        site_id TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
        optimization INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    CREATE TABLE site_status (
        site_id TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
        status_json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE control_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id TEXT,
        what TEXT NOT NULL,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    """
    + "".join(
        f"CREATE TRIGGER {table}_{op.lower()}_changes AFTER {op} ON {table} {when}BEGIN "
        f"INSERT INTO control_changes (site_id, what) VALUES ({key}, '{table}'); END;\n"
        for table, site in (
            ("boxes", "site_id"),
            ("device_preferences", "site_id"),
            ("site_equipment", "site_id"),
            ("site_parameters", "site_id"),
            ("site_control", "site_id"),
            ("group_parameters", None),
            ("box_links", None),
        )
        for op in ("INSERT", "UPDATE", "DELETE")
        # NULL: every site (a fleet group's parameters, a box address before it is paired)
        for key in ["NULL" if site is None else f"{'OLD' if op == 'DELETE' else 'NEW'}.{site}"]
        # rows deleted with their site are covered by the site's own entry below
        for when in [
            f"WHEN EXISTS (SELECT 1 FROM sites WHERE id = OLD.{site}) "
            if op == "DELETE" and site is not None
            else ""
        ]
    )
    # A deleted site leaves no trace here (privacy): its rows go, and a NULL entry makes the
    # control loop compare every site, which releases the deleted one's box.
    + """
    CREATE TRIGGER sites_insert_changes AFTER INSERT ON sites BEGIN
        INSERT INTO control_changes (site_id, what) VALUES (NEW.id, 'sites'); END;
    CREATE TRIGGER sites_update_changes AFTER UPDATE ON sites BEGIN
        INSERT INTO control_changes (site_id, what) VALUES (NEW.id, 'sites'); END;
    CREATE TRIGGER sites_delete_changes AFTER DELETE ON sites BEGIN
        DELETE FROM control_changes WHERE site_id = OLD.id;
        INSERT INTO control_changes (site_id, what) VALUES (NULL, 'sites'); END;
    """,
    # 5: the site's retail tariff: a shipped tariff by id, or an uploaded TOML (validated by
    # the API; tariff_id 'uploaded').
    """
    CREATE TABLE site_tariffs (
        site_id TEXT PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
        tariff_id TEXT NOT NULL,
        tariff_toml TEXT,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    CREATE TRIGGER site_tariffs_insert_changes AFTER INSERT ON site_tariffs BEGIN
        INSERT INTO control_changes (site_id, what) VALUES (NEW.site_id, 'site_tariffs'); END;
    CREATE TRIGGER site_tariffs_update_changes AFTER UPDATE ON site_tariffs BEGIN
        INSERT INTO control_changes (site_id, what) VALUES (NEW.site_id, 'site_tariffs'); END;
    """,
    # 6: a box re-sending an acknowledgement (lost reply) records it once.
    """
    DELETE FROM setpoint_acks WHERE id NOT IN (
        SELECT MIN(id) FROM setpoint_acks GROUP BY box_id, etag, applied_at
    );
    CREATE UNIQUE INDEX setpoint_acks_once ON setpoint_acks(box_id, etag, applied_at);
    """,
    # 7: the token epoch in every access token; raising it (logout, password reset) voids
    # the account's access tokens at once.
    """
    ALTER TABLE users ADD COLUMN token_epoch INTEGER NOT NULL DEFAULT 0;
    """,
)


def statements(script: str) -> Iterator[str]:
    """The complete SQL statements of ``script`` (a trigger body's ``;`` does not split it)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def user_version(conn: Connection) -> int:
    """How many of :data:`MIGRATIONS` the file has had."""
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())


def upgrade_to_latest(conn: Connection) -> int:
    """Run the scripts the file has not had, in the caller's transaction; return how many."""
    done = user_version(conn)
    for version, script in enumerate(MIGRATIONS, start=1):
        if version <= done:
            continue
        for statement in statements(script):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(f"PRAGMA user_version={version}")
    return max(0, len(MIGRATIONS) - done)
