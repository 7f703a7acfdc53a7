# Test fixture: the account store as it was before SQLAlchemy and Alembic (schema 7 in
# PRAGMA user_version), kept unchanged so tests can make files the way released versions did
# (its seven scripts are imported from api/migrations/legacy_sqlite.py, the same text).
# Do not edit; the code in use is api/accounts_store.py.
"""Accounts, sites, grants, boxes and trading parameters in one SQLite file.

The API's own state (not telemetry, which lives in a :class:`TelemetryStore`): users, one-time
email tokens, refresh tokens, sites, supporter grants, starter codes and box tokens, the request
log, trading parameters with their audit trail, and acknowledged setpoints.

SQLite from the standard library, WAL journal so readers never block the writer, foreign keys
on so deleting a user removes everything that hangs off it, and versioned migrations recorded in
``PRAGMA user_version``. Secrets are never stored: callers pass hashes (argon2 for passwords and
starter codes, SHA-256 for the high-entropy random tokens).

One connection is shared by all threads behind a lock: FastAPI runs sync handlers in a thread
pool, and every statement here is a short indexed lookup, so serialising them costs less than a
connection per thread would.

Times are tz-aware UTC :class:`datetime.datetime`; they are stored as ISO-8601 text, which sorts
in time order because every value carries the same ``+00:00`` offset.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

AccountRole = Literal["customer", "factory_service", "trader", "analyst"]
TokenPurpose = Literal["confirm", "reset"]

# the same seven scripts, kept once, where the baseline revision runs them on old files
from api.migrations.legacy_sqlite import MIGRATIONS, statements  # noqa: E402


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    role: AccountRole
    created_at: datetime
    confirmed_at: datetime | None
    token_epoch: int = 0


@dataclass(frozen=True)
class Site:
    id: str
    owner_id: str
    name: str
    timezone: str
    fleet_group: str
    factory_service: bool
    created_at: datetime


@dataclass(frozen=True)
class Grant:
    site_id: str
    supporter_id: str
    created_at: datetime


@dataclass(frozen=True)
class Box:
    id: str
    site_id: str
    serial: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class ParameterDoc:
    """A stored parameter document (JSON text validated by the API) and who wrote it last."""

    parameters_json: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class DevicePreferences:
    """An owner's settings for one device, as JSON text validated by the API."""

    site_id: str
    kind: Literal["wallbox", "heatpump"]
    name: str
    preferences_json: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class TariffDoc:
    """A site's tariff choice: a shipped tariff id, or ``uploaded`` with its TOML text."""

    site_id: str
    tariff_id: str
    tariff_toml: str | None
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class EquipmentDoc:
    """A site's equipment as JSON text validated by the API, and who wrote it last."""

    site_id: str
    equipment_json: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class BoxLinkDoc:
    """Where the service reaches a box over Modbus TCP (recorded by the operator per serial)."""

    serial: str
    host: str
    port: int
    unit: int
    updated_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: str
    scope: Literal["site", "group"]
    scope_key: str
    field: str
    old_value: str | None
    new_value: str | None


@dataclass(frozen=True)
class SetpointAck:
    id: int
    site_id: str
    box_id: str
    etag: str
    applied_at: datetime
    received_at: datetime
    setpoints_json: str


@dataclass(frozen=True)
class RequestLogEntry:
    at: datetime
    ip: str | None
    method: str
    path: str
    status: int
    principal: str | None
    duration_ms: float


class DuplicateError(ValueError):
    """A unique value (an email, a serial) is taken already."""


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime; pass a tz-aware UTC time")
    return value.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _dt_req(text: str) -> datetime:
    return datetime.fromisoformat(text)


def new_id(prefix: str) -> str:
    """A random, unguessable object id such as ``site_3f2a...`` (UUID4, 122 random bits)."""
    return f"{prefix}_{uuid.uuid4().hex}"


class AccountStore:
    """The API's relational state in one SQLite file (see module docstring)."""

    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        # Waiting long for a lock held by another process would stall every request behind
        # this connection's lock; the API sets a short wait and answers 503 (api.errors).
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # Deleted rows are overwritten with zeros, not left in free pages (erasure requests).
        self._conn.execute("PRAGMA secure_delete=ON")
        self.migrate()

    # -- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    @property
    def schema_version(self) -> int:
        row = self._one("PRAGMA user_version")
        return int(row[0]) if row else 0

    def migrate(self) -> None:
        """Apply the migrations newer than the file's ``user_version``, each in a transaction."""
        for version, script in enumerate(MIGRATIONS, start=1):
            if self.schema_version >= version:
                continue
            with self._tx() as conn:
                for statement in statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={version}")

    def ping(self) -> bool:
        return self._one("SELECT 1") is not None

    # -- users ----------------------------------------------------------------------------------
    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(
            id=row["id"],
            email=row["email"],
            password_hash=row["password_hash"],
            role=row["role"],
            created_at=_dt_req(row["created_at"]),
            confirmed_at=_dt(row["confirmed_at"]),
            token_epoch=row["token_epoch"],
        )

    def create_user(
        self,
        email: str,
        password_hash: str,
        role: AccountRole,
        now: datetime,
        *,
        confirmed: bool = False,
    ) -> User:
        user_id = new_id("usr")
        try:
            with self._tx() as conn:
                conn.execute(
                    "INSERT INTO users (id, email, password_hash, role, created_at, confirmed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        user_id,
                        email,
                        password_hash,
                        role,
                        _ts(now),
                        _ts(now) if confirmed else None,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateError(f"email {email!r} is registered already") from exc
        user = self.get_user(user_id)
        assert user is not None
        return user

    def get_user(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return self._user(row) if row else None

    def get_user_by_email(self, email: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE email = ?", (email,))
        return self._user(row) if row else None

    def confirm_user(self, user_id: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE users SET confirmed_at = COALESCE(confirmed_at, ?) WHERE id = ?",
                (_ts(now), user_id),
            )

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )

    def bump_token_epoch(self, user_id: str) -> None:
        """Void every access token of the account signed so far."""
        with self._tx() as conn:
            conn.execute("UPDATE users SET token_epoch = token_epoch + 1 WHERE id = ?", (user_id,))

    def user_of_refresh_token(self, token_hash: str) -> str | None:
        row = self._one("SELECT user_id FROM refresh_tokens WHERE token_hash = ?", (token_hash,))
        return None if row is None else str(row[0])

    def personal_data(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every row held about the account outside its sites, secrets (hashes) left out."""
        queries = {
            "account": "SELECT id, email, role, created_at, confirmed_at FROM users WHERE id = ?",
            "sessions": "SELECT family_id, created_at, expires_at, used_at, revoked_at "
            "FROM refresh_tokens WHERE user_id = ? ORDER BY created_at",
            "email_links": "SELECT purpose, expires_at, used_at FROM email_tokens "
            "WHERE user_id = ? ORDER BY expires_at",
            "sites_supported": "SELECT s.id AS site_id, s.name, g.created_at AS granted_at "
            "FROM grants g JOIN sites s ON s.id = g.site_id WHERE g.supporter_id = ?",
            "parameter_changes": "SELECT at, scope, scope_key, field, old_value, new_value "
            "FROM parameter_audit WHERE actor_id = ? ORDER BY id",
            "request_log": "SELECT at, ip, method, path, status, duration_ms "
            "FROM request_log WHERE principal = ? ORDER BY id",
        }
        return {
            name: [dict(row) for row in self._all(sql, (user_id,))] for name, sql in queries.items()
        }

    def erase_residue(self) -> None:
        """Move the WAL into the main file and truncate it, so deleted rows (overwritten there
        by ``secure_delete``) leave no copy in the ``-wal`` file."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def delete_user(self, user_id: str) -> list[str]:
        """Delete a user with everything that hangs off it; return the ids of deleted sites.

        Sites, grants (given and received), boxes, tokens, parameters, acks and the user's
        request-log rows go with it. Telemetry is the caller's part (the telemetry store).
        """
        with self._tx() as conn:
            site_ids = [
                r[0] for r in conn.execute("SELECT id FROM sites WHERE owner_id = ?", (user_id,))
            ]
            conn.execute("DELETE FROM request_log WHERE principal = ?", (user_id,))
            for site_id in site_ids:
                box_ids = [
                    r[0] for r in conn.execute("SELECT id FROM boxes WHERE site_id = ?", (site_id,))
                ]
                conn.executemany(
                    "DELETE FROM request_log WHERE principal = ?", [(b,) for b in box_ids]
                )
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        self.erase_residue()
        return site_ids

    def unconfirmed_before(self, cutoff: datetime) -> list[str]:
        rows = self._all(
            "SELECT id FROM users WHERE confirmed_at IS NULL AND created_at < ?", (_ts(cutoff),)
        )
        return [r[0] for r in rows]

    # -- one-time email tokens ------------------------------------------------------------------
    def add_email_token(
        self, token_hash: str, user_id: str, purpose: TokenPurpose, expires_at: datetime
    ) -> None:
        with self._tx() as conn:
            # One live token per account and purpose: a new mail voids the links before it.
            conn.execute(
                "DELETE FROM email_tokens WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
                (user_id, purpose),
            )
            conn.execute(
                "INSERT INTO email_tokens VALUES (?, ?, ?, ?, NULL)",
                (token_hash, user_id, purpose, _ts(expires_at)),
            )

    def consume_email_token(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> str | None:
        """Use up a token and return its user id; None if unknown, used, expired, other purpose."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT user_id FROM email_tokens WHERE token_hash = ? AND purpose = ? "
                "AND used_at IS NULL AND expires_at > ?",
                (token_hash, purpose, _ts(now)),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE email_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? "
                "AND used_at IS NULL",
                (_ts(now), row[0], purpose),
            )
            return str(row[0])

    # -- refresh tokens -------------------------------------------------------------------------
    def add_refresh_token(
        self, token_hash: str, user_id: str, family_id: str, now: datetime, expires_at: datetime
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                (token_hash, user_id, family_id, _ts(now), _ts(expires_at)),
            )

    def rotate_refresh_token(
        self, old_hash: str, new_hash: str, now: datetime, expires_at: datetime
    ) -> str | None:
        """Swap a valid refresh token for a new one of the same family; return the user id.

        A token presented a second time means it was copied: the whole family is revoked so
        neither the thief nor the owner can go on with it (the owner signs in again).
        """
        with self._tx() as conn:
            row = conn.execute(
                "SELECT * FROM refresh_tokens WHERE token_hash = ?", (old_hash,)
            ).fetchone()
            if row is None:
                return None
            if row["used_at"] is not None:
                conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?) "
                    "WHERE family_id = ?",
                    (_ts(now), row["family_id"]),
                )
                return None
            if row["revoked_at"] is not None or row["expires_at"] <= _ts(now):
                return None
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?", (_ts(now), old_hash)
            )
            conn.execute(
                "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                (new_hash, row["user_id"], row["family_id"], _ts(now), _ts(expires_at)),
            )
            return str(row["user_id"])

    def revoke_refresh_family(self, token_hash: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE family_id = "
                "(SELECT family_id FROM refresh_tokens WHERE token_hash = ?)",
                (_ts(now), token_hash),
            )

    def revoke_user_refresh_tokens(self, user_id: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE refresh_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE user_id = ?",
                (_ts(now), user_id),
            )

    # -- sites ----------------------------------------------------------------------------------
    @staticmethod
    def _site(row: sqlite3.Row) -> Site:
        return Site(
            id=row["id"],
            owner_id=row["owner_id"],
            name=row["name"],
            timezone=row["timezone"],
            fleet_group=row["fleet_group"],
            factory_service=bool(row["factory_service"]),
            created_at=_dt_req(row["created_at"]),
        )

    def create_site(
        self, owner_id: str, name: str, timezone: str, fleet_group: str, now: datetime
    ) -> Site:
        site_id = new_id("site")
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO sites VALUES (?, ?, ?, ?, ?, 0, ?)",
                (site_id, owner_id, name, timezone, fleet_group, _ts(now)),
            )
        site = self.get_site(site_id)
        assert site is not None
        return site

    def get_site(self, site_id: str) -> Site | None:
        row = self._one("SELECT * FROM sites WHERE id = ?", (site_id,))
        return self._site(row) if row else None

    def update_site(self, site_id: str, **fields: str | bool) -> None:
        allowed = {"name", "timezone", "fleet_group", "factory_service"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update site fields {sorted(unknown)}")
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._tx() as conn:
            conn.execute(
                f"UPDATE sites SET {assignments} WHERE id = ?", (*fields.values(), site_id)
            )

    def delete_site(self, site_id: str) -> None:
        with self._tx() as conn:
            box_ids = [
                r[0] for r in conn.execute("SELECT id FROM boxes WHERE site_id = ?", (site_id,))
            ]
            conn.executemany("DELETE FROM request_log WHERE principal = ?", [(b,) for b in box_ids])
            conn.execute("DELETE FROM sites WHERE id = ?", (site_id,))
        self.erase_residue()

    def sites_owned(self, user_id: str) -> list[Site]:
        rows = self._all("SELECT * FROM sites WHERE owner_id = ? ORDER BY created_at", (user_id,))
        return [self._site(r) for r in rows]

    def sites_granted(self, supporter_id: str) -> list[Site]:
        rows = self._all(
            "SELECT s.* FROM sites s JOIN grants g ON g.site_id = s.id "
            "WHERE g.supporter_id = ? ORDER BY s.created_at",
            (supporter_id,),
        )
        return [self._site(r) for r in rows]

    def sites_in_factory_service(self) -> list[Site]:
        rows = self._all("SELECT * FROM sites WHERE factory_service = 1 ORDER BY created_at")
        return [self._site(r) for r in rows]

    def all_sites(self) -> list[Site]:
        return [self._site(r) for r in self._all("SELECT * FROM sites ORDER BY created_at")]

    # -- grants ---------------------------------------------------------------------------------
    def add_grant(self, site_id: str, supporter_id: str, now: datetime) -> Grant:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO grants VALUES (?, ?, ?)", (site_id, supporter_id, _ts(now))
            )
        grant = self.get_grant(site_id, supporter_id)
        assert grant is not None
        return grant

    def get_grant(self, site_id: str, supporter_id: str) -> Grant | None:
        row = self._one(
            "SELECT * FROM grants WHERE site_id = ? AND supporter_id = ?", (site_id, supporter_id)
        )
        if row is None:
            return None
        return Grant(row["site_id"], row["supporter_id"], _dt_req(row["created_at"]))

    def remove_grant(self, site_id: str, supporter_id: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                "DELETE FROM grants WHERE site_id = ? AND supporter_id = ?", (site_id, supporter_id)
            )
            return cur.rowcount > 0

    def grants_of_site(self, site_id: str) -> list[Grant]:
        rows = self._all("SELECT * FROM grants WHERE site_id = ? ORDER BY created_at", (site_id,))
        return [Grant(r["site_id"], r["supporter_id"], _dt_req(r["created_at"])) for r in rows]

    # -- starter codes and boxes ----------------------------------------------------------------
    def register_starter_code(self, serial: str, code_hash: str, now: datetime) -> None:
        try:
            with self._tx() as conn:
                conn.execute(
                    "INSERT INTO starter_codes VALUES (?, ?, ?, NULL)",
                    (serial, code_hash, _ts(now)),
                )
        except sqlite3.IntegrityError as exc:
            raise DuplicateError(f"box serial {serial!r} is registered already") from exc

    def unused_starter_code_hash(self, serial: str) -> str | None:
        row = self._one(
            "SELECT code_hash FROM starter_codes WHERE serial = ? AND used_at IS NULL", (serial,)
        )
        return None if row is None else str(row[0])

    def pair_box(self, serial: str, site_id: str, token_hash: str, now: datetime) -> Box | None:
        """Use up the serial's starter code and bind the box to a site; None if used already.

        The caller has verified the code against :meth:`unused_starter_code_hash`; the
        ``used_at IS NULL`` guard here makes two concurrent pairings end with one winner.
        """
        box_id = new_id("box")
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE starter_codes SET used_at = ? WHERE serial = ? AND used_at IS NULL",
                (_ts(now), serial),
            )
            if cur.rowcount == 0:
                return None
            conn.execute(
                "INSERT INTO boxes VALUES (?, ?, ?, ?, ?, NULL)",
                (box_id, site_id, serial, token_hash, _ts(now)),
            )
        return self.get_box(box_id)

    @staticmethod
    def _box(row: sqlite3.Row) -> Box:
        return Box(
            id=row["id"],
            site_id=row["site_id"],
            serial=row["serial"],
            created_at=_dt_req(row["created_at"]),
            revoked_at=_dt(row["revoked_at"]),
        )

    def get_box(self, box_id: str) -> Box | None:
        row = self._one("SELECT * FROM boxes WHERE id = ?", (box_id,))
        return self._box(row) if row else None

    def box_by_token(self, token_hash: str) -> Box | None:
        """The active (not revoked) box holding this token hash."""
        row = self._one(
            "SELECT * FROM boxes WHERE token_hash = ? AND revoked_at IS NULL", (token_hash,)
        )
        return self._box(row) if row else None

    def boxes_of_site(self, site_id: str) -> list[Box]:
        rows = self._all("SELECT * FROM boxes WHERE site_id = ? ORDER BY created_at", (site_id,))
        return [self._box(r) for r in rows]

    def revoke_box(self, box_id: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE boxes SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (_ts(now), box_id),
            )

    # -- request log ----------------------------------------------------------------------------
    def log_requests(self, entries: list[RequestLogEntry]) -> None:
        """Append request-log rows in one transaction."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO request_log (at, ip, method, path, status, principal, duration_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (_ts(e.at), e.ip, e.method, e.path, e.status, e.principal, e.duration_ms)
                    for e in entries
                ],
            )

    def request_log(self, limit: int = 1000) -> list[RequestLogEntry]:
        rows = self._all("SELECT * FROM request_log ORDER BY id DESC LIMIT ?", (limit,))
        return [
            RequestLogEntry(
                at=_dt_req(r["at"]),
                ip=r["ip"],
                method=r["method"],
                path=r["path"],
                status=r["status"],
                principal=r["principal"],
                duration_ms=r["duration_ms"],
            )
            for r in rows
        ]

    def purge_request_log(self, cutoff: datetime) -> int:
        """Delete request-log rows older than ``cutoff``; return how many went."""
        with self._tx() as conn:
            return conn.execute("DELETE FROM request_log WHERE at < ?", (_ts(cutoff),)).rowcount

    # -- trading parameters ---------------------------------------------------------------------
    def get_group_parameters(self, fleet_group: str) -> ParameterDoc | None:
        row = self._one("SELECT * FROM group_parameters WHERE fleet_group = ?", (fleet_group,))
        return self._doc(row) if row else None

    def get_site_parameters(self, site_id: str) -> ParameterDoc | None:
        row = self._one("SELECT * FROM site_parameters WHERE site_id = ?", (site_id,))
        return self._doc(row) if row else None

    def fleet_groups(self) -> list[str]:
        rows = self._all(
            "SELECT fleet_group FROM sites UNION SELECT fleet_group FROM group_parameters "
            "ORDER BY 1"
        )
        return [r[0] for r in rows]

    @staticmethod
    def _doc(row: sqlite3.Row) -> ParameterDoc:
        return ParameterDoc(row["parameters_json"], _dt_req(row["updated_at"]), row["updated_by"])

    def set_parameters(
        self,
        *,
        scope: Literal["site", "group"],
        key: str,
        parameters_json: str | None,
        changes: list[tuple[str, str | None, str | None]],
        actor_id: str,
        now: datetime,
    ) -> None:
        """Write (or with None delete) a parameter document and its audit rows atomically.

        ``changes`` holds (field, old, new) with values as JSON text, one row per changed field.
        """
        table, column = (
            ("site_parameters", "site_id")
            if scope == "site"
            else ("group_parameters", "fleet_group")
        )
        site_id = key if scope == "site" else None
        with self._tx() as conn:
            if parameters_json is None:
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
            else:
                conn.execute(
                    f"INSERT INTO {table} VALUES (?, ?, ?, ?) ON CONFLICT({column}) DO UPDATE "
                    "SET parameters_json = excluded.parameters_json, "
                    "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                    (key, parameters_json, _ts(now), actor_id),
                )
            conn.executemany(
                "INSERT INTO parameter_audit (at, actor_id, scope, scope_key, site_id, field, "
                "old_value, new_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(_ts(now), actor_id, scope, key, site_id, f, o, n) for f, o, n in changes],
            )

    def assign_fleet_group(
        self, site_id: str, fleet_group: str, actor_id: str, now: datetime
    ) -> None:
        """Move a site to another fleet group and audit the move, atomically."""
        with self._tx() as conn:
            row = conn.execute("SELECT fleet_group FROM sites WHERE id = ?", (site_id,)).fetchone()
            if row is None or row[0] == fleet_group:
                return
            conn.execute("UPDATE sites SET fleet_group = ? WHERE id = ?", (fleet_group, site_id))
            conn.execute(
                "INSERT INTO parameter_audit (at, actor_id, scope, scope_key, site_id, field, "
                "old_value, new_value) VALUES (?, ?, 'site', ?, ?, 'fleet_group', ?, ?)",
                (_ts(now), actor_id, site_id, site_id, json.dumps(row[0]), json.dumps(fleet_group)),
            )

    def audit_trail(
        self,
        scope: Literal["site", "group"] | None = None,
        key: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        sql = "SELECT * FROM parameter_audit"
        where: list[str] = []
        args: list[Any] = []
        if scope is not None:
            where.append("scope = ?")
            args.append(scope)
        if key is not None:
            where.append("scope_key = ?")
            args.append(key)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._all(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [
            AuditEntry(
                id=r["id"],
                at=_dt_req(r["at"]),
                actor_id=r["actor_id"],
                scope=r["scope"],
                scope_key=r["scope_key"],
                field=r["field"],
                old_value=r["old_value"],
                new_value=r["new_value"],
            )
            for r in rows
        ]

    # -- device preferences ---------------------------------------------------------------------
    def set_device_preferences(self, prefs: DevicePreferences) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO device_preferences VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (site_id, kind, name) DO UPDATE SET "
                "preferences_json = excluded.preferences_json, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (
                    prefs.site_id,
                    prefs.kind,
                    prefs.name,
                    prefs.preferences_json,
                    _ts(prefs.updated_at),
                    prefs.updated_by,
                ),
            )

    def device_preferences(
        self, site_id: str, kind: Literal["wallbox", "heatpump"] | None = None
    ) -> list[DevicePreferences]:
        sql = "SELECT * FROM device_preferences WHERE site_id = ?"
        args: tuple[Any, ...] = (site_id,)
        if kind is not None:
            sql += " AND kind = ?"
            args = (site_id, kind)
        return [
            DevicePreferences(
                site_id=r["site_id"],
                kind=r["kind"],
                name=r["name"],
                preferences_json=r["preferences_json"],
                updated_at=_dt_req(r["updated_at"]),
                updated_by=r["updated_by"],
            )
            for r in self._all(sql + " ORDER BY kind, name", args)
        ]

    # -- setpoint acknowledgements --------------------------------------------------------------
    def add_ack(
        self,
        *,
        site_id: str,
        box_id: str,
        etag: str,
        applied_at: datetime,
        setpoints: dict[str, float],
        now: datetime,
    ) -> SetpointAck:
        """Record an ack once per (box, etag, applied_at); a repeat returns the first record."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO setpoint_acks (site_id, box_id, etag, applied_at, received_at, "
                "setpoints_json) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (box_id, etag, applied_at) DO NOTHING",
                (site_id, box_id, etag, _ts(applied_at), _ts(now), json.dumps(setpoints)),
            )
            row = conn.execute(
                "SELECT * FROM setpoint_acks WHERE box_id = ? AND etag = ? AND applied_at = ?",
                (box_id, etag, _ts(applied_at)),
            ).fetchone()
        assert row is not None
        return self._ack(row)

    @staticmethod
    def _ack(row: sqlite3.Row) -> SetpointAck:
        return SetpointAck(
            id=row["id"],
            site_id=row["site_id"],
            box_id=row["box_id"],
            etag=row["etag"],
            applied_at=_dt_req(row["applied_at"]),
            received_at=_dt_req(row["received_at"]),
            setpoints_json=row["setpoints_json"],
        )

    def acks_of_site(self, site_id: str, limit: int = 100) -> list[SetpointAck]:
        rows = self._all(
            "SELECT * FROM setpoint_acks WHERE site_id = ? ORDER BY id DESC LIMIT ?",
            (site_id, limit),
        )
        return [self._ack(r) for r in rows]

    # -- site equipment -------------------------------------------------------------------------
    def set_equipment(self, doc: EquipmentDoc) -> None:
        """Store (replace) a site's equipment document."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO site_equipment VALUES (?, ?, ?, ?) ON CONFLICT (site_id) DO UPDATE "
                "SET equipment_json = excluded.equipment_json, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (doc.site_id, doc.equipment_json, _ts(doc.updated_at), doc.updated_by),
            )

    def get_equipment(self, site_id: str) -> EquipmentDoc | None:
        row = self._one("SELECT * FROM site_equipment WHERE site_id = ?", (site_id,))
        if row is None:
            return None
        return EquipmentDoc(
            row["site_id"], row["equipment_json"], _dt_req(row["updated_at"]), row["updated_by"]
        )

    # -- control loop: box addresses, the optimization switch, status, change log --------------
    def set_box_link(self, serial: str, host: str, port: int, unit: int, now: datetime) -> None:
        """Record (replace) the Modbus TCP address the service reaches box ``serial`` at."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO box_links VALUES (?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET "
                "host = excluded.host, port = excluded.port, unit = excluded.unit, "
                "updated_at = excluded.updated_at",
                (serial, host, port, unit, _ts(now)),
            )

    def delete_box_link(self, serial: str) -> bool:
        """Forget a box's address (it pulls its schedule over the gateway from then on)."""
        with self._tx() as conn:
            return conn.execute("DELETE FROM box_links WHERE serial = ?", (serial,)).rowcount > 0

    def box_link(self, serial: str) -> BoxLinkDoc | None:
        row = self._one("SELECT * FROM box_links WHERE serial = ?", (serial,))
        if row is None:
            return None
        return BoxLinkDoc(
            row["serial"], row["host"], row["port"], row["unit"], _dt_req(row["updated_at"])
        )

    def starter_code_registered(self, serial: str) -> bool:
        return self._one("SELECT 1 FROM starter_codes WHERE serial = ?", (serial,)) is not None

    def set_optimization(self, site_id: str, enabled: bool, actor_id: str, now: datetime) -> None:
        """The owner's switch: False hands the box back to its own logic until switched on."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO site_control VALUES (?, ?, ?, ?) ON CONFLICT (site_id) DO UPDATE "
                "SET optimization = excluded.optimization, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (site_id, int(enabled), _ts(now), actor_id),
            )

    def optimization_enabled(self, site_id: str) -> bool:
        """The owner's switch (on unless switched off)."""
        row = self._one("SELECT optimization FROM site_control WHERE site_id = ?", (site_id,))
        return True if row is None else bool(row[0])

    def set_site_status(self, site_id: str, status_json: str, now: datetime) -> None:
        """Store the control loop's status of a site (no change-log entry: it is an output)."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
                return  # deleted meanwhile
            conn.execute(
                "INSERT INTO site_status VALUES (?, ?, ?) ON CONFLICT (site_id) DO UPDATE "
                "SET status_json = excluded.status_json, updated_at = excluded.updated_at",
                (site_id, status_json, _ts(now)),
            )

    def site_status(self, site_id: str) -> tuple[str, datetime] | None:
        """The stored status JSON of a site and when it was written."""
        row = self._one("SELECT * FROM site_status WHERE site_id = ?", (site_id,))
        return None if row is None else (row["status_json"], _dt_req(row["updated_at"]))

    def last_change_id(self) -> int:
        row = self._one("SELECT COALESCE(MAX(id), 0) FROM control_changes")
        return int(row[0]) if row else 0

    def changes_since(
        self, change_id: int, limit: int = 10_000
    ) -> list[tuple[int, str | None, str]]:
        """Change-log rows after ``change_id``: (id, site id or None for every site, table)."""
        rows = self._all(
            "SELECT id, site_id, what FROM control_changes WHERE id > ? ORDER BY id LIMIT ?",
            (change_id, limit),
        )
        return [(int(r[0]), r[1], str(r[2])) for r in rows]

    def purge_control_changes(self, keep_last: int = 10_000) -> int:
        """Drop all but the newest ``keep_last`` change-log rows; return how many went."""
        with self._tx() as conn:
            cur = conn.execute(
                "DELETE FROM control_changes WHERE id <= (SELECT MAX(id) FROM control_changes) - ?",
                (keep_last,),
            )
            return cur.rowcount

    # -- site tariff ----------------------------------------------------------------------------
    def set_tariff(self, doc: TariffDoc) -> None:
        """Store (replace) a site's tariff choice."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO site_tariffs VALUES (?, ?, ?, ?, ?) ON CONFLICT (site_id) DO UPDATE "
                "SET tariff_id = excluded.tariff_id, tariff_toml = excluded.tariff_toml, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (doc.site_id, doc.tariff_id, doc.tariff_toml, _ts(doc.updated_at), doc.updated_by),
            )

    def get_tariff(self, site_id: str) -> TariffDoc | None:
        row = self._one("SELECT * FROM site_tariffs WHERE site_id = ?", (site_id,))
        if row is None:
            return None
        return TariffDoc(
            row["site_id"],
            row["tariff_id"],
            row["tariff_toml"],
            _dt_req(row["updated_at"]),
            row["updated_by"],
        )
