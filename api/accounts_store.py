"""Accounts, sites, grants, boxes and trading parameters: the service's relational state.

The API's own state (not telemetry, which lives in a :class:`TelemetryStore`): users, one-time
email tokens, refresh tokens, sites, supporter grants, starter codes and box tokens, the request
log, trading parameters with their audit trail, the owner's device settings, equipment, tariffs,
box addresses and acknowledged setpoints.

SQLAlchemy 2.0 Core on one database URL: a SQLite file by default (WAL, foreign keys on,
``secure_delete`` so freed pages are zeroed), PostgreSQL (``postgresql+psycopg://...``) when
several processes or hosts share the state. The schema is Alembic's (:mod:`api.migrations`),
brought to the newest revision when the store opens. Secrets are never stored: callers pass
hashes (argon2 for passwords and starter codes, SHA-256 for the high-entropy random tokens).

Writes the control loop depends on (boxes, equipment, preferences, parameters, the optimization
switch, box addresses, tariffs, sites) are logged into ``control_changes`` by triggers in the
database, so a separate control process sees them by polling one indexed table, whichever
process or tool made the change.

On SQLite, writes from this process take a lock first and then ``BEGIN IMMEDIATE``: they queue
here instead of spinning on the file lock, and another process holding the lock longer than the
busy timeout makes the write fail fast (the API answers 503). Reads never wait (WAL).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.sql import UtcTimestamp, sql_engine, upsert_insert, write_transaction
from api import migrations

AccountRole = Literal["customer", "factory_service", "trader", "analyst"]
TokenPurpose = Literal["confirm", "reset"]


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


# -- tables (the schema itself is the migrations'; these describe it for queries) ---------------
metadata = sa.MetaData()
_T = UtcTimestamp


def _table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(name, metadata, *columns)


def _col(name: str, type_: Any = sa.Text, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, **kw)


users = _table(
    "users",
    _col("id", primary_key=True),
    _col("email"),
    _col("password_hash"),
    _col("role"),
    _col("created_at", _T),
    _col("confirmed_at", _T),
    _col("token_epoch", sa.Integer),
)
email_tokens = _table(
    "email_tokens",
    _col("token_hash", primary_key=True),
    _col("user_id"),
    _col("purpose"),
    _col("expires_at", _T),
    _col("used_at", _T),
)
refresh_tokens = _table(
    "refresh_tokens",
    _col("token_hash", primary_key=True),
    _col("user_id"),
    _col("family_id"),
    _col("created_at", _T),
    _col("expires_at", _T),
    _col("used_at", _T),
    _col("revoked_at", _T),
)
sites = _table(
    "sites",
    _col("id", primary_key=True),
    _col("owner_id"),
    _col("name"),
    _col("timezone"),
    _col("fleet_group"),
    _col("factory_service", sa.Boolean),
    _col("created_at", _T),
)
grants = _table(
    "grants",
    _col("site_id", primary_key=True),
    _col("supporter_id", primary_key=True),
    _col("created_at", _T),
)
starter_codes = _table(
    "starter_codes",
    _col("serial", primary_key=True),
    _col("code_hash"),
    _col("created_at", _T),
    _col("used_at", _T),
)
boxes = _table(
    "boxes",
    _col("id", primary_key=True),
    _col("site_id"),
    _col("serial"),
    _col("token_hash"),
    _col("created_at", _T),
    _col("revoked_at", _T),
)
request_log_table = _table(
    "request_log",
    _col("id", sa.Integer, primary_key=True),
    _col("at", _T),
    _col("ip"),
    _col("method"),
    _col("path"),
    _col("status", sa.Integer),
    _col("principal"),
    _col("duration_ms", sa.Float),
)
group_parameters = _table(
    "group_parameters",
    _col("fleet_group", primary_key=True),
    _col("parameters_json"),
    _col("updated_at", _T),
    _col("updated_by"),
)
site_parameters = _table(
    "site_parameters",
    _col("site_id", primary_key=True),
    _col("parameters_json"),
    _col("updated_at", _T),
    _col("updated_by"),
)
parameter_audit = _table(
    "parameter_audit",
    _col("id", sa.Integer, primary_key=True),
    _col("at", _T),
    _col("actor_id"),
    _col("scope"),
    _col("scope_key"),
    _col("site_id"),
    _col("field"),
    _col("old_value"),
    _col("new_value"),
)
setpoint_acks = _table(
    "setpoint_acks",
    _col("id", sa.Integer, primary_key=True),
    _col("site_id"),
    _col("box_id"),
    _col("etag"),
    _col("applied_at", _T),
    _col("received_at", _T),
    _col("setpoints_json"),
)
device_preferences_table = _table(
    "device_preferences",
    _col("site_id", primary_key=True),
    _col("kind", primary_key=True),
    _col("name", primary_key=True),
    _col("preferences_json"),
    _col("updated_at", _T),
    _col("updated_by"),
)
site_equipment = _table(
    "site_equipment",
    _col("site_id", primary_key=True),
    _col("equipment_json"),
    _col("updated_at", _T),
    _col("updated_by"),
)
box_links = _table(
    "box_links",
    _col("serial", primary_key=True),
    _col("host"),
    _col("port", sa.Integer),
    _col("unit", sa.Integer),
    _col("updated_at", _T),
)
site_control = _table(
    "site_control",
    _col("site_id", primary_key=True),
    _col("optimization", sa.Boolean),
    _col("updated_at", _T),
    _col("updated_by"),
)
site_status_table = _table(
    "site_status",
    _col("site_id", primary_key=True),
    _col("status_json"),
    _col("updated_at", _T),
)
control_changes = _table(
    "control_changes",
    _col("id", sa.Integer, primary_key=True),
    _col("site_id"),
    _col("what"),
)
site_tariffs = _table(
    "site_tariffs",
    _col("site_id", primary_key=True),
    _col("tariff_id"),
    _col("tariff_toml"),
    _col("updated_at", _T),
    _col("updated_by"),
)
#: Every table of the store; on PostgreSQL a deletion rewrites them all (see erase_residue).
ACCOUNT_TABLES = tuple(metadata.sorted_tables)


def new_id(prefix: str) -> str:
    """A random, unguessable object id such as ``site_3f2a...`` (UUID4, 122 random bits)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def database_url(path_or_url: str | Path) -> str:
    """A SQLAlchemy URL: given as one (``scheme://...``), or a SQLite file path; a SQLite
    file's folder is made when missing."""
    text = str(path_or_url)
    url = sa.make_url(text if "://" in text else f"sqlite:///{text}")
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return url.render_as_string(hide_password=False)


class AccountStore:
    """The service's relational state on one database URL (see module docstring).

    Parameters
    ----------
    location : str or Path
        A SQLAlchemy URL (``postgresql+psycopg://...``, ``sqlite:///...``) or a SQLite file path.
    busy_timeout_ms : int
        SQLite only: how long a write waits for another process's lock before failing [ms].
    """

    def __init__(self, location: str | Path, busy_timeout_ms: int = 5000) -> None:
        url = database_url(location)
        self.engine: Engine = sql_engine(
            url,
            (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                f"busy_timeout={int(busy_timeout_ms)}",
                # Deleted rows are overwritten with zeros, not left in free pages (erasure).
                "secure_delete=ON",
            ),
        )
        self.dialect = self.engine.dialect.name
        #: The SQLite file (None on a server database).
        self.path: str | None = self.engine.url.database if self.dialect == "sqlite" else None
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        migrations.upgrade(self.engine)

    # -- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One write transaction (SQLite: this process's writers queue on a lock first)."""
        with write_transaction(self.engine, self._write_lock) as conn:
            yield conn

    def _one(self, query: sa.Executable) -> sa.Row[Any] | None:
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def _all(self, query: sa.Executable) -> Sequence[sa.Row[Any]]:
        with self.engine.connect() as conn:
            return conn.execute(query).all()

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with this dialect's ``ON CONFLICT`` clauses."""
        return upsert_insert(self.dialect, table)

    def _upsert(self, table: sa.Table, keys: Sequence[str], values: dict[str, Any]) -> Any:
        """Insert a row, or update every non-key column of the row with the same ``keys``."""
        stmt = self._insert(table).values(**values)
        return stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: stmt.excluded[c] for c in values if c not in keys},
        )

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        return migrations.current_revision(self.engine)

    def ping(self) -> bool:
        return self._one(sa.select(sa.literal(1))) is not None

    # -- users ----------------------------------------------------------------------------------
    @staticmethod
    def _user(row: sa.Row[Any]) -> User:
        return User(
            id=row.id,
            email=row.email,
            password_hash=row.password_hash,
            role=row.role,
            created_at=row.created_at,
            confirmed_at=row.confirmed_at,
            token_epoch=row.token_epoch,
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
                    users.insert().values(
                        id=user_id,
                        email=email,
                        password_hash=password_hash,
                        role=role,
                        created_at=now,
                        confirmed_at=now if confirmed else None,
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise DuplicateError(f"email {email!r} is registered already") from exc
        user = self.get_user(user_id)
        assert user is not None
        return user

    def get_user(self, user_id: str) -> User | None:
        row = self._one(users.select().where(users.c.id == user_id))
        return self._user(row) if row else None

    def get_user_by_email(self, email: str) -> User | None:
        """The account of ``email``, ignoring case (as SQLite's ``COLLATE NOCASE`` did)."""
        match = (
            sa.func.lower(users.c.email) == sa.func.lower(email)
            if self.dialect == "postgresql"
            else users.c.email == email  # the column is NOCASE; its index serves this
        )
        row = self._one(users.select().where(match))
        return self._user(row) if row else None

    def confirm_user(self, user_id: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                users.update()
                .where(users.c.id == user_id)
                .values(confirmed_at=sa.func.coalesce(users.c.confirmed_at, _now(now)))
            )

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        with self._tx() as conn:
            conn.execute(
                users.update().where(users.c.id == user_id).values(password_hash=password_hash)
            )

    def bump_token_epoch(self, user_id: str) -> None:
        """Void every access token of the account signed so far."""
        with self._tx() as conn:
            conn.execute(
                users.update()
                .where(users.c.id == user_id)
                .values(token_epoch=users.c.token_epoch + 1)
            )

    def user_of_refresh_token(self, token_hash: str) -> str | None:
        row = self._one(
            sa.select(refresh_tokens.c.user_id).where(refresh_tokens.c.token_hash == token_hash)
        )
        return None if row is None else str(row[0])

    def personal_data(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every row held about the account outside its sites, secrets (hashes) left out;
        times as ISO-8601 text."""
        rt, et, pa, rl = refresh_tokens, email_tokens, parameter_audit, request_log_table
        queries: dict[str, sa.Select[Any]] = {
            "account": sa.select(
                users.c.id, users.c.email, users.c.role, users.c.created_at, users.c.confirmed_at
            ).where(users.c.id == user_id),
            "sessions": sa.select(
                rt.c.family_id, rt.c.created_at, rt.c.expires_at, rt.c.used_at, rt.c.revoked_at
            )
            .where(rt.c.user_id == user_id)
            .order_by(rt.c.created_at),
            "email_links": sa.select(et.c.purpose, et.c.expires_at, et.c.used_at)
            .where(et.c.user_id == user_id)
            .order_by(et.c.expires_at),
            "sites_supported": sa.select(
                sites.c.id.label("site_id"), sites.c.name, grants.c.created_at.label("granted_at")
            )
            .join_from(grants, sites, sites.c.id == grants.c.site_id)
            .where(grants.c.supporter_id == user_id),
            "parameter_changes": sa.select(
                pa.c.at, pa.c.scope, pa.c.scope_key, pa.c.field, pa.c.old_value, pa.c.new_value
            )
            .where(pa.c.actor_id == user_id)
            .order_by(pa.c.id),
            "request_log": sa.select(
                rl.c.at, rl.c.ip, rl.c.method, rl.c.path, rl.c.status, rl.c.duration_ms
            )
            .where(rl.c.principal == user_id)
            .order_by(rl.c.id),
        }
        return {
            name: [
                {
                    k: v.isoformat() if isinstance(v, datetime) else v
                    for k, v in row._mapping.items()
                }
                for row in self._all(query)
            ]
            for name, query in queries.items()
        }

    def erase_residue(self) -> None:
        """Leave no copy of deleted rows in the database's files.

        SQLite: ``secure_delete`` zeroed them in the main file; moving the WAL into it and
        truncating it removes the copies there. PostgreSQL: a DELETE (even a plain VACUUM)
        leaves the bytes in the table and index pages; ``VACUUM FULL`` rewrites every account
        table into new files and unlinks the old ones (it locks each table while it copies).
        """
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return
            names = ", ".join(t.name for t in ACCOUNT_TABLES)
            autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
            autocommit.exec_driver_sql(f"VACUUM FULL {names}")

    def delete_user(self, user_id: str) -> list[str]:
        """Delete a user with everything that hangs off it; return the ids of deleted sites.

        Sites, grants (given and received), boxes with their recorded addresses, tokens,
        parameters, acks and the user's request-log rows go with it. Telemetry, plans and
        setpoints are the caller's part (the telemetry and plan stores).
        """
        with self._tx() as conn:
            site_ids = list(
                conn.execute(sa.select(sites.c.id).where(sites.c.owner_id == user_id)).scalars()
            )
            box_ids = list(
                conn.execute(sa.select(boxes.c.id).where(boxes.c.site_id.in_(site_ids))).scalars()
            )
            conn.execute(
                request_log_table.delete().where(
                    request_log_table.c.principal.in_([user_id, *box_ids])
                )
            )
            conn.execute(_box_links_of(sites.c.owner_id == user_id))
            conn.execute(users.delete().where(users.c.id == user_id))
        self.erase_residue()
        return site_ids

    def unconfirmed_before(self, cutoff: datetime) -> list[str]:
        query = sa.select(users.c.id).where(
            users.c.confirmed_at.is_(None), users.c.created_at < cutoff
        )
        return [r[0] for r in self._all(query)]

    # -- one-time email tokens ------------------------------------------------------------------
    def add_email_token(
        self, token_hash: str, user_id: str, purpose: TokenPurpose, expires_at: datetime
    ) -> None:
        et = email_tokens
        with self._tx() as conn:
            # One live token per account and purpose: a new mail voids the links before it.
            conn.execute(
                et.delete().where(
                    et.c.user_id == user_id, et.c.purpose == purpose, et.c.used_at.is_(None)
                )
            )
            conn.execute(
                et.insert().values(
                    token_hash=token_hash, user_id=user_id, purpose=purpose, expires_at=expires_at
                )
            )

    def consume_email_token(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> str | None:
        """Use up a token and return its user id; None if unknown, used, expired, other purpose."""
        et = email_tokens
        with self._tx() as conn:
            user_id = conn.execute(
                sa.select(et.c.user_id).where(
                    et.c.token_hash == token_hash,
                    et.c.purpose == purpose,
                    et.c.used_at.is_(None),
                    et.c.expires_at > now,
                )
            ).scalar()
            if user_id is None:
                return None
            conn.execute(
                et.update()
                .where(et.c.user_id == user_id, et.c.purpose == purpose, et.c.used_at.is_(None))
                .values(used_at=now)
            )
            return str(user_id)

    # -- refresh tokens -------------------------------------------------------------------------
    def add_refresh_token(
        self, token_hash: str, user_id: str, family_id: str, now: datetime, expires_at: datetime
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                refresh_tokens.insert().values(
                    token_hash=token_hash,
                    user_id=user_id,
                    family_id=family_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def rotate_refresh_token(
        self, old_hash: str, new_hash: str, now: datetime, expires_at: datetime
    ) -> str | None:
        """Swap a valid refresh token for a new one of the same family; return the user id.

        A token presented a second time means it was copied: the whole family is revoked so
        neither the thief nor the owner can go on with it (the owner signs in again).
        """
        rt = refresh_tokens
        with self._tx() as conn:
            row = conn.execute(rt.select().where(rt.c.token_hash == old_hash)).first()
            if row is None:
                return None
            if row.used_at is not None:
                conn.execute(self._revoke(rt.c.family_id == row.family_id, now))
                return None
            if row.revoked_at is not None or row.expires_at <= now:
                return None
            conn.execute(rt.update().where(rt.c.token_hash == old_hash).values(used_at=now))
            conn.execute(
                rt.insert().values(
                    token_hash=new_hash,
                    user_id=row.user_id,
                    family_id=row.family_id,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            return str(row.user_id)

    @staticmethod
    def _revoke(where: sa.ColumnElement[bool], now: datetime) -> sa.Update:
        rt = refresh_tokens
        return (
            rt.update().where(where).values(revoked_at=sa.func.coalesce(rt.c.revoked_at, _now(now)))
        )

    def revoke_refresh_family(self, token_hash: str, now: datetime) -> None:
        rt = refresh_tokens
        family = sa.select(rt.c.family_id).where(rt.c.token_hash == token_hash).scalar_subquery()
        with self._tx() as conn:
            conn.execute(self._revoke(rt.c.family_id == family, now))

    def revoke_user_refresh_tokens(self, user_id: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(self._revoke(refresh_tokens.c.user_id == user_id, now))

    # -- sites ----------------------------------------------------------------------------------
    @staticmethod
    def _site(row: sa.Row[Any]) -> Site:
        return Site(
            id=row.id,
            owner_id=row.owner_id,
            name=row.name,
            timezone=row.timezone,
            fleet_group=row.fleet_group,
            factory_service=bool(row.factory_service),
            created_at=row.created_at,
        )

    def create_site(
        self, owner_id: str, name: str, timezone: str, fleet_group: str, now: datetime
    ) -> Site:
        site_id = new_id("site")
        with self._tx() as conn:
            conn.execute(
                sites.insert().values(
                    id=site_id,
                    owner_id=owner_id,
                    name=name,
                    timezone=timezone,
                    fleet_group=fleet_group,
                    factory_service=False,
                    created_at=now,
                )
            )
        site = self.get_site(site_id)
        assert site is not None
        return site

    def get_site(self, site_id: str) -> Site | None:
        row = self._one(sites.select().where(sites.c.id == site_id))
        return self._site(row) if row else None

    def update_site(self, site_id: str, **fields: str | bool) -> None:
        allowed = {"name", "timezone", "fleet_group", "factory_service"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update site fields {sorted(unknown)}")
        if not fields:
            return
        with self._tx() as conn:
            conn.execute(sites.update().where(sites.c.id == site_id).values(**fields))

    def delete_site(self, site_id: str) -> None:
        with self._tx() as conn:
            box_ids = sa.select(boxes.c.id).where(boxes.c.site_id == site_id)
            conn.execute(
                request_log_table.delete().where(request_log_table.c.principal.in_(box_ids))
            )
            conn.execute(_box_links_of(sites.c.id == site_id))
            conn.execute(sites.delete().where(sites.c.id == site_id))
        self.erase_residue()

    def _oldest_first(self, table: sa.Table, key: sa.Column[Any]) -> tuple[Any, ...]:
        """Order by creation; rows created in the same instant in insertion order on SQLite
        (its rowid), by ``key`` on PostgreSQL (which has no insertion order to offer)."""
        tiebreak = sa.literal_column(f"{table.name}.rowid") if self.dialect == "sqlite" else key
        return (table.c.created_at, tiebreak)

    def _sites(self, where: sa.ColumnElement[bool] | None = None) -> list[Site]:
        query = sites.select().order_by(*self._oldest_first(sites, sites.c.id))
        if where is not None:
            query = query.where(where)
        return [self._site(r) for r in self._all(query)]

    def sites_owned(self, user_id: str) -> list[Site]:
        return self._sites(sites.c.owner_id == user_id)

    def sites_granted(self, supporter_id: str) -> list[Site]:
        granted = sa.select(grants.c.site_id).where(grants.c.supporter_id == supporter_id)
        return self._sites(sites.c.id.in_(granted))

    def sites_in_factory_service(self) -> list[Site]:
        return self._sites(sites.c.factory_service.is_(True))

    def all_sites(self) -> list[Site]:
        return self._sites()

    # -- grants ---------------------------------------------------------------------------------
    def add_grant(self, site_id: str, supporter_id: str, now: datetime) -> Grant:
        with self._tx() as conn:
            conn.execute(
                self._insert(grants)
                .values(site_id=site_id, supporter_id=supporter_id, created_at=now)
                .on_conflict_do_nothing()
            )
        grant = self.get_grant(site_id, supporter_id)
        assert grant is not None
        return grant

    def get_grant(self, site_id: str, supporter_id: str) -> Grant | None:
        row = self._one(
            grants.select().where(
                grants.c.site_id == site_id, grants.c.supporter_id == supporter_id
            )
        )
        return None if row is None else Grant(row.site_id, row.supporter_id, row.created_at)

    def remove_grant(self, site_id: str, supporter_id: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                grants.delete().where(
                    grants.c.site_id == site_id, grants.c.supporter_id == supporter_id
                )
            )
            return cur.rowcount > 0

    def grants_of_site(self, site_id: str) -> list[Grant]:
        rows = self._all(
            grants.select()
            .where(grants.c.site_id == site_id)
            .order_by(*self._oldest_first(grants, grants.c.supporter_id))
        )
        return [Grant(r.site_id, r.supporter_id, r.created_at) for r in rows]

    # -- starter codes and boxes ----------------------------------------------------------------
    def register_starter_code(self, serial: str, code_hash: str, now: datetime) -> None:
        try:
            with self._tx() as conn:
                conn.execute(
                    starter_codes.insert().values(
                        serial=serial, code_hash=code_hash, created_at=now
                    )
                )
        except sa.exc.IntegrityError as exc:
            raise DuplicateError(f"box serial {serial!r} is registered already") from exc

    def unused_starter_code_hash(self, serial: str) -> str | None:
        sc = starter_codes
        row = self._one(
            sa.select(sc.c.code_hash).where(sc.c.serial == serial, sc.c.used_at.is_(None))
        )
        return None if row is None else str(row[0])

    def pair_box(self, serial: str, site_id: str, token_hash: str, now: datetime) -> Box | None:
        """Use up the serial's starter code and bind the box to a site; None if used already.

        The caller has verified the code against :meth:`unused_starter_code_hash`; the
        ``used_at IS NULL`` guard here makes two concurrent pairings end with one winner.
        """
        box_id = new_id("box")
        sc = starter_codes
        with self._tx() as conn:
            cur = conn.execute(
                sc.update().where(sc.c.serial == serial, sc.c.used_at.is_(None)).values(used_at=now)
            )
            if cur.rowcount == 0:
                return None
            conn.execute(
                boxes.insert().values(
                    id=box_id, site_id=site_id, serial=serial, token_hash=token_hash, created_at=now
                )
            )
        return self.get_box(box_id)

    @staticmethod
    def _box(row: sa.Row[Any]) -> Box:
        return Box(
            id=row.id,
            site_id=row.site_id,
            serial=row.serial,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )

    def get_box(self, box_id: str) -> Box | None:
        row = self._one(boxes.select().where(boxes.c.id == box_id))
        return self._box(row) if row else None

    def box_by_token(self, token_hash: str) -> Box | None:
        """The active (not revoked) box holding this token hash."""
        row = self._one(
            boxes.select().where(boxes.c.token_hash == token_hash, boxes.c.revoked_at.is_(None))
        )
        return self._box(row) if row else None

    def boxes_of_site(self, site_id: str) -> list[Box]:
        rows = self._all(
            boxes.select()
            .where(boxes.c.site_id == site_id)
            .order_by(*self._oldest_first(boxes, boxes.c.id))
        )
        return [self._box(r) for r in rows]

    def revoke_box(self, box_id: str, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                boxes.update()
                .where(boxes.c.id == box_id)
                .values(revoked_at=sa.func.coalesce(boxes.c.revoked_at, _now(now)))
            )

    # -- request log ----------------------------------------------------------------------------
    def log_requests(self, entries: list[RequestLogEntry]) -> None:
        """Append request-log rows in one transaction."""
        if not entries:
            return
        with self._tx() as conn:
            conn.execute(
                request_log_table.insert(),
                [
                    {
                        "at": e.at,
                        "ip": e.ip,
                        "method": e.method,
                        "path": e.path,
                        "status": e.status,
                        "principal": e.principal,
                        "duration_ms": e.duration_ms,
                    }
                    for e in entries
                ],
            )

    def request_log(self, limit: int = 1000) -> list[RequestLogEntry]:
        rl = request_log_table
        rows = self._all(rl.select().order_by(rl.c.id.desc()).limit(limit))
        return [
            RequestLogEntry(
                at=r.at,
                ip=r.ip,
                method=r.method,
                path=r.path,
                status=r.status,
                principal=r.principal,
                duration_ms=r.duration_ms,
            )
            for r in rows
        ]

    def purge_request_log(self, cutoff: datetime) -> int:
        """Delete request-log rows older than ``cutoff``; return how many went."""
        rl = request_log_table
        with self._tx() as conn:
            return int(conn.execute(rl.delete().where(rl.c.at < cutoff)).rowcount)

    # -- trading parameters ---------------------------------------------------------------------
    def get_group_parameters(self, fleet_group: str) -> ParameterDoc | None:
        gp = group_parameters
        row = self._one(gp.select().where(gp.c.fleet_group == fleet_group))
        return self._doc(row) if row else None

    def get_site_parameters(self, site_id: str) -> ParameterDoc | None:
        sp = site_parameters
        row = self._one(sp.select().where(sp.c.site_id == site_id))
        return self._doc(row) if row else None

    def fleet_groups(self) -> list[str]:
        query = sa.union(
            sa.select(sites.c.fleet_group), sa.select(group_parameters.c.fleet_group)
        ).order_by("fleet_group")
        return [r[0] for r in self._all(query)]

    @staticmethod
    def _doc(row: sa.Row[Any]) -> ParameterDoc:
        return ParameterDoc(row.parameters_json, row.updated_at, row.updated_by)

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
            (site_parameters, "site_id") if scope == "site" else (group_parameters, "fleet_group")
        )
        with self._tx() as conn:
            if parameters_json is None:
                conn.execute(table.delete().where(table.c[column] == key))
            else:
                conn.execute(
                    self._upsert(
                        table,
                        [column],
                        {
                            column: key,
                            "parameters_json": parameters_json,
                            "updated_at": now,
                            "updated_by": actor_id,
                        },
                    )
                )
            if changes:
                conn.execute(
                    parameter_audit.insert(),
                    [self._audit_row(scope, key, change, actor_id, now) for change in changes],
                )

    @staticmethod
    def _audit_row(
        scope: str,
        key: str,
        change: tuple[str, str | None, str | None],
        actor: str,
        now: datetime,
    ) -> dict[str, Any]:
        """A ``parameter_audit`` row; ``change`` is (field, old, new) as JSON text."""
        field, old, new = change
        return {
            "at": now,
            "actor_id": actor,
            "scope": scope,
            "scope_key": key,
            "site_id": key if scope == "site" else None,
            "field": field,
            "old_value": old,
            "new_value": new,
        }

    def assign_fleet_group(
        self, site_id: str, fleet_group: str, actor_id: str, now: datetime
    ) -> None:
        """Move a site to another fleet group and audit the move, atomically."""
        with self._tx() as conn:
            old = conn.execute(sa.select(sites.c.fleet_group).where(sites.c.id == site_id)).scalar()
            if old is None or old == fleet_group:
                return
            conn.execute(
                sites.update().where(sites.c.id == site_id).values(fleet_group=fleet_group)
            )
            conn.execute(
                parameter_audit.insert().values(
                    self._audit_row(
                        "site",
                        site_id,
                        ("fleet_group", json.dumps(old), json.dumps(fleet_group)),
                        actor_id,
                        now,
                    )
                )
            )

    def audit_trail(
        self,
        scope: Literal["site", "group"] | None = None,
        key: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        pa = parameter_audit
        query = pa.select().order_by(pa.c.id.desc()).limit(limit)
        if scope is not None:
            query = query.where(pa.c.scope == scope)
        if key is not None:
            query = query.where(pa.c.scope_key == key)
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor_id=r.actor_id,
                scope=r.scope,
                scope_key=r.scope_key,
                field=r.field,
                old_value=r.old_value,
                new_value=r.new_value,
            )
            for r in self._all(query)
        ]

    # -- device preferences ---------------------------------------------------------------------
    def set_device_preferences(self, prefs: DevicePreferences) -> None:
        with self._tx() as conn:
            conn.execute(
                self._upsert(
                    device_preferences_table,
                    ["site_id", "kind", "name"],
                    {
                        "site_id": prefs.site_id,
                        "kind": prefs.kind,
                        "name": prefs.name,
                        "preferences_json": prefs.preferences_json,
                        "updated_at": prefs.updated_at,
                        "updated_by": prefs.updated_by,
                    },
                )
            )

    def device_preferences(
        self, site_id: str, kind: Literal["wallbox", "heatpump"] | None = None
    ) -> list[DevicePreferences]:
        dp = device_preferences_table
        query = dp.select().where(dp.c.site_id == site_id).order_by(dp.c.kind, dp.c.name)
        if kind is not None:
            query = query.where(dp.c.kind == kind)
        return [
            DevicePreferences(
                site_id=r.site_id,
                kind=r.kind,
                name=r.name,
                preferences_json=r.preferences_json,
                updated_at=r.updated_at,
                updated_by=r.updated_by,
            )
            for r in self._all(query)
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
        sa_ = setpoint_acks
        with self._tx() as conn:
            conn.execute(
                self._insert(sa_)
                .values(
                    site_id=site_id,
                    box_id=box_id,
                    etag=etag,
                    applied_at=applied_at,
                    received_at=now,
                    setpoints_json=json.dumps(setpoints),
                )
                .on_conflict_do_nothing(index_elements=["box_id", "etag", "applied_at"])
            )
            row = conn.execute(
                sa_.select().where(
                    sa_.c.box_id == box_id, sa_.c.etag == etag, sa_.c.applied_at == applied_at
                )
            ).one()
        return self._ack(row)

    @staticmethod
    def _ack(row: sa.Row[Any]) -> SetpointAck:
        return SetpointAck(
            id=row.id,
            site_id=row.site_id,
            box_id=row.box_id,
            etag=row.etag,
            applied_at=row.applied_at,
            received_at=row.received_at,
            setpoints_json=row.setpoints_json,
        )

    def acks_of_site(self, site_id: str, limit: int = 100) -> list[SetpointAck]:
        sa_ = setpoint_acks
        rows = self._all(
            sa_.select().where(sa_.c.site_id == site_id).order_by(sa_.c.id.desc()).limit(limit)
        )
        return [self._ack(r) for r in rows]

    # -- site equipment -------------------------------------------------------------------------
    def set_equipment(self, doc: EquipmentDoc) -> None:
        """Store (replace) a site's equipment document."""
        with self._tx() as conn:
            conn.execute(
                self._upsert(
                    site_equipment,
                    ["site_id"],
                    {
                        "site_id": doc.site_id,
                        "equipment_json": doc.equipment_json,
                        "updated_at": doc.updated_at,
                        "updated_by": doc.updated_by,
                    },
                )
            )

    def get_equipment(self, site_id: str) -> EquipmentDoc | None:
        se = site_equipment
        row = self._one(se.select().where(se.c.site_id == site_id))
        if row is None:
            return None
        return EquipmentDoc(row.site_id, row.equipment_json, row.updated_at, row.updated_by)

    # -- control loop: box addresses, the optimization switch, status, change log --------------
    def set_box_link(self, serial: str, host: str, port: int, unit: int, now: datetime) -> None:
        """Record (replace) the Modbus TCP address the service reaches box ``serial`` at."""
        values = {"serial": serial, "host": host, "port": port, "unit": unit, "updated_at": now}
        with self._tx() as conn:
            conn.execute(self._upsert(box_links, ["serial"], values))

    def delete_box_link(self, serial: str) -> bool:
        """Forget a box's address (it pulls its schedule over the gateway from then on)."""
        with self._tx() as conn:
            return conn.execute(box_links.delete().where(box_links.c.serial == serial)).rowcount > 0

    def box_link(self, serial: str) -> BoxLinkDoc | None:
        row = self._one(box_links.select().where(box_links.c.serial == serial))
        if row is None:
            return None
        return BoxLinkDoc(row.serial, row.host, row.port, row.unit, row.updated_at)

    def starter_code_registered(self, serial: str) -> bool:
        query = sa.select(sa.literal(1)).where(starter_codes.c.serial == serial)
        return self._one(query) is not None

    def set_optimization(self, site_id: str, enabled: bool, actor_id: str, now: datetime) -> None:
        """The owner's switch: False hands the box back to its own logic until switched on."""
        values = {
            "site_id": site_id,
            "optimization": enabled,
            "updated_at": now,
            "updated_by": actor_id,
        }
        with self._tx() as conn:
            conn.execute(self._upsert(site_control, ["site_id"], values))

    def optimization_enabled(self, site_id: str) -> bool:
        """The owner's switch (on unless switched off)."""
        sc = site_control
        row = self._one(sa.select(sc.c.optimization).where(sc.c.site_id == site_id))
        return True if row is None else bool(row[0])

    def set_site_status(self, site_id: str, status_json: str, now: datetime) -> None:
        """Store the control loop's status of a site (no change-log entry: it is an output)."""
        values = {"site_id": site_id, "status_json": status_json, "updated_at": now}
        with self._tx() as conn:
            exists = conn.execute(sa.select(sites.c.id).where(sites.c.id == site_id)).first()
            if exists is None:
                return  # deleted meanwhile
            conn.execute(self._upsert(site_status_table, ["site_id"], values))

    def site_status(self, site_id: str) -> tuple[str, datetime] | None:
        """The stored status JSON of a site and when it was written."""
        ss = site_status_table
        row = self._one(ss.select().where(ss.c.site_id == site_id))
        return None if row is None else (row.status_json, row.updated_at)

    def last_change_id(self) -> int:
        row = self._one(sa.select(sa.func.coalesce(sa.func.max(control_changes.c.id), 0)))
        return int(row[0]) if row else 0

    def changes_since(
        self, change_id: int, limit: int = 10_000
    ) -> list[tuple[int, str | None, str]]:
        """Change-log rows after ``change_id``: (id, site id or None for every site, table)."""
        cc = control_changes
        rows = self._all(
            sa.select(cc.c.id, cc.c.site_id, cc.c.what)
            .where(cc.c.id > change_id)
            .order_by(cc.c.id)
            .limit(limit)
        )
        return [(int(r.id), r.site_id, str(r.what)) for r in rows]

    def purge_control_changes(self, keep_last: int = 10_000) -> int:
        """Drop all but the newest ``keep_last`` change-log rows; return how many went."""
        cc = control_changes
        newest = sa.select(sa.func.max(cc.c.id)).scalar_subquery()
        with self._tx() as conn:
            return int(conn.execute(cc.delete().where(cc.c.id <= newest - keep_last)).rowcount)

    # -- site tariff ----------------------------------------------------------------------------
    def set_tariff(self, doc: TariffDoc) -> None:
        """Store (replace) a site's tariff choice."""
        values = {
            "site_id": doc.site_id,
            "tariff_id": doc.tariff_id,
            "tariff_toml": doc.tariff_toml,
            "updated_at": doc.updated_at,
            "updated_by": doc.updated_by,
        }
        with self._tx() as conn:
            conn.execute(self._upsert(site_tariffs, ["site_id"], values))

    def get_tariff(self, site_id: str) -> TariffDoc | None:
        st = site_tariffs
        row = self._one(st.select().where(st.c.site_id == site_id))
        if row is None:
            return None
        return TariffDoc(
            row.site_id, row.tariff_id, row.tariff_toml, row.updated_at, row.updated_by
        )


def _now(value: datetime) -> sa.BindParameter[datetime]:
    """``value`` as a typed bind parameter (inside SQL functions the type is not inferred)."""
    return sa.bindparam(None, value, type_=UtcTimestamp())


def _box_links_of(site_filter: sa.ColumnElement[bool]) -> sa.Delete:
    """Delete the recorded addresses of the boxes paired to the sites ``site_filter`` picks
    (keyed by serial, so no foreign key cascades them; an address can place a home)."""
    serials = sa.select(boxes.c.serial).join(sites, boxes.c.site_id == sites.c.id)
    return box_links.delete().where(box_links.c.serial.in_(serials.where(site_filter)))
