"""Notification state: per-user settings, the in-app feed, push subscriptions, what was sent.

SQLAlchemy Core on the service's database URL (the accounts SQLite file by default, PostgreSQL
the same way), so the tables move with the rest of the service state. The ``deliveries`` table
is the de-duplication record: one row per (user, channel, event key), written before a message
goes out, so a restart, a replan or a second process never sends the same message twice.
Deleting a user deletes every row about them and the bytes they were stored in: on SQLite
``secure_delete`` overwrites freed space, on PostgreSQL ``VACUUM FULL`` rewrites the tables (a
plain DELETE, even a plain VACUUM, leaves the bytes in the table files).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.sql import sql_engine
from notifications.events import DEFAULT_CHANNELS, ChannelName, Event, EventKind, SessionOutcome


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A tz-aware instant stored in UTC and read back tz-aware UTC on every database.

    SQLite keeps ``DateTime(timezone=True)`` as text without the offset, so a non-UTC value
    would come back shifted by its offset and compare wrongly; converting on the way in makes
    SQLite and PostgreSQL agree. Naive values are refused rather than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a tz-aware UTC instant")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else _utc(value)


metadata = sa.MetaData()

preferences = sa.Table(
    "notify_preferences",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("channels", sa.String(200), nullable=False),  # comma-separated channel names
)
user_settings = sa.Table(
    "notify_user_settings",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("webhook_url", sa.String(2000)),
    sa.Column("webhook_format", sa.String(10), nullable=False, default="json"),
    sa.Column("offline_minutes", sa.Integer, nullable=False, default=30),
)
push_subscriptions = sa.Table(
    "notify_push_subscriptions",
    metadata,
    sa.Column("endpoint", sa.String(2000), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("p256dh", sa.String(200), nullable=False),
    sa.Column("auth", sa.String(100), nullable=False),
    sa.Column("created", UtcDateTime(), nullable=False),
)
feed = sa.Table(
    "notify_feed",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("read", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("user_id", "key"),
)
deliveries = sa.Table(
    "notify_deliveries",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(20), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.String(500)),
    sa.Column("at", UtcDateTime(), nullable=False),
)
ev_sessions = sa.Table(
    "notify_ev_sessions",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("plugged_in", UtcDateTime(), primary_key=True),
    sa.Column("plugged_out", UtcDateTime(), nullable=False),
    sa.Column("target_kwh", sa.Float),
    sa.Column("energy_kwh", sa.Float),
    sa.Column("delivered_kwh", sa.Float, nullable=False),
    sa.Column("met", sa.Boolean),
)


@dataclass(frozen=True)
class UserSettings:
    """One user's notification settings.

    Attributes
    ----------
    channels : dict
        Event kind -> the channels it goes to.
    webhook_url : str or None
        Where the webhook channel posts (ntfy topic URL, Gotify, Home Assistant webhook...).
    webhook_format : str
        ``json`` (title, message, kind, site, data) or ``ntfy`` (plain text, ``Title`` header).
    offline_minutes : int
        How long the box must be offline or in fallback before the user hears of it [min].
    """

    channels: dict[EventKind, frozenset[ChannelName]]
    webhook_url: str | None = None
    webhook_format: str = "json"
    offline_minutes: int = 30


@dataclass(frozen=True)
class PushSubscription:
    """A browser's Web Push subscription (endpoint and its ECDH and auth keys, base64url)."""

    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass(frozen=True)
class FeedItem:
    id: int
    site_id: str
    kind: EventKind
    title: str
    body: str
    data: dict[str, Any]
    at: datetime
    read: bool


def make_engine(url: str) -> Engine:
    """An engine for ``url``; the tables are the migrations' (:mod:`api.migrations`), which the
    composition root runs before it opens this store."""
    return sql_engine(url, ("busy_timeout=2000", "secure_delete=ON"))


class NotificationStore:
    """Notification settings, feed, subscriptions, delivery record and car sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> NotificationStore:
        return cls(make_engine(url))

    # ---------------------------------------------------------------- settings
    def settings(self, user_id: str) -> UserSettings:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(preferences.c.kind, preferences.c.channels).where(
                    preferences.c.user_id == user_id
                )
            ).all()
            row = conn.execute(
                sa.select(user_settings).where(user_settings.c.user_id == user_id)
            ).first()
        channels = dict(DEFAULT_CHANNELS)
        for kind, names in rows:
            if kind in EventKind.__members__.values():
                channels[EventKind(kind)] = frozenset(ChannelName(n) for n in names.split(",") if n)
        if row is None:
            return UserSettings(channels)
        return UserSettings(channels, row.webhook_url, row.webhook_format, row.offline_minutes)

    def save_settings(self, user_id: str, settings: UserSettings) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(preferences).where(preferences.c.user_id == user_id))
            conn.execute(
                sa.insert(preferences),
                [
                    {"user_id": user_id, "kind": k.value, "channels": ",".join(sorted(c))}
                    for k, c in settings.channels.items()
                ],
            )
            conn.execute(sa.delete(user_settings).where(user_settings.c.user_id == user_id))
            conn.execute(
                sa.insert(user_settings).values(
                    user_id=user_id,
                    webhook_url=settings.webhook_url,
                    webhook_format=settings.webhook_format,
                    offline_minutes=settings.offline_minutes,
                )
            )

    # ------------------------------------------------------------ subscriptions
    def add_subscription(self, user_id: str, sub: PushSubscription, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(push_subscriptions).where(push_subscriptions.c.endpoint == sub.endpoint)
            )
            conn.execute(
                sa.insert(push_subscriptions).values(
                    endpoint=sub.endpoint,
                    user_id=user_id,
                    p256dh=sub.p256dh,
                    auth=sub.auth,
                    created=now,
                )
            )

    def remove_subscription(self, user_id: str, endpoint: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(push_subscriptions).where(
                    push_subscriptions.c.user_id == user_id,
                    push_subscriptions.c.endpoint == endpoint,
                )
            )
        return bool(result.rowcount)

    def subscriptions(self, user_id: str) -> list[PushSubscription]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(push_subscriptions).where(push_subscriptions.c.user_id == user_id)
            ).all()
        return [PushSubscription(r.endpoint, r.p256dh, r.auth) for r in rows]

    # --------------------------------------------------------------------- feed
    def add_feed_item(self, user_id: str, event: Event) -> None:
        """Adds ``event`` to the user's feed once (its key is unique per user)."""
        values = {
            "user_id": user_id,
            "site_id": event.site_id,
            "kind": event.kind.value,
            "key": event.key,
            "title": event.title,
            "body": event.body,
            "data": json.dumps(event.data, default=str),
            "at": event.at,
            "read": False,
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(feed.c.id).where(feed.c.user_id == user_id, feed.c.key == event.key)
            ).first()
            if exists is None:
                conn.execute(sa.insert(feed).values(**values))

    def feed(self, user_id: str, limit: int = 50, unread_only: bool = False) -> list[FeedItem]:
        query = sa.select(feed).where(feed.c.user_id == user_id)
        if unread_only:
            query = query.where(feed.c.read.is_(False))
        query = query.order_by(feed.c.at.desc(), feed.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            FeedItem(
                r.id,
                r.site_id,
                EventKind(r.kind),
                r.title,
                r.body,
                json.loads(r.data),
                _utc(r.at),
                bool(r.read),
            )
            for r in rows
        ]

    def unread_count(self, user_id: str) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(feed)
                .where(feed.c.user_id == user_id, feed.c.read.is_(False))
            ).scalar_one()
        return int(count)

    def mark_read(self, user_id: str, item_id: int | None = None) -> int:
        """Marks one item (or all of the user's items when ``item_id`` is None) read."""
        query = sa.update(feed).where(feed.c.user_id == user_id).values(read=True)
        if item_id is not None:
            query = query.where(feed.c.id == item_id)
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount)

    # --------------------------------------------------------------- deliveries
    def claim(self, user_id: str, channel: ChannelName, key: str, now: datetime) -> bool:
        """Records a delivery as pending; False if this (user, channel, key) was claimed before."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(deliveries).values(
                        user_id=user_id,
                        channel=channel.value,
                        key=key,
                        status="pending",
                        attempts=0,
                        at=now,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def finish(
        self, user_id: str, channel: ChannelName, key: str, attempts: int, error: str | None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.user_id == user_id,
                    deliveries.c.channel == channel.value,
                    deliveries.c.key == key,
                )
                .values(
                    status="failed" if error else "sent",
                    attempts=attempts,
                    error=None if error is None else error[:500],
                )
            )

    def delivery(self, user_id: str, channel: ChannelName, key: str) -> tuple[str, int] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(deliveries.c.status, deliveries.c.attempts).where(
                    deliveries.c.user_id == user_id,
                    deliveries.c.channel == channel.value,
                    deliveries.c.key == key,
                )
            ).first()
        return None if row is None else (str(row.status), int(row.attempts))

    # ------------------------------------------------------------- ev sessions
    def record_session(self, outcome: SessionOutcome) -> None:
        values = {
            "site_id": outcome.site_id,
            "plugged_in": outcome.plugged_in,
            "plugged_out": outcome.plugged_out,
            "target_kwh": outcome.target_kwh,
            "energy_kwh": outcome.energy_kwh,
            "delivered_kwh": outcome.delivered_kwh,
            "met": outcome.met,
        }
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(ev_sessions).where(
                    ev_sessions.c.site_id == outcome.site_id,
                    ev_sessions.c.plugged_in == outcome.plugged_in,
                )
            )
            conn.execute(sa.insert(ev_sessions).values(**values))

    def sessions(self, site_id: str, start: datetime, end: datetime) -> list[SessionOutcome]:
        """Car sessions of ``site_id`` that ended in ``[start, end)``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(ev_sessions)
                .where(
                    ev_sessions.c.site_id == site_id,
                    ev_sessions.c.plugged_out >= start,
                    ev_sessions.c.plugged_out < end,
                )
                .order_by(ev_sessions.c.plugged_in)
            ).all()
        return [
            SessionOutcome(
                r.site_id,
                _utc(r.plugged_in),
                _utc(r.plugged_out),
                r.target_kwh,
                r.energy_kwh,
                r.delivered_kwh,
                r.met,
            )
            for r in rows
        ]

    # --------------------------------------------------------- privacy (GDPR)
    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything held about ``user_id`` here, JSON-ready."""
        settings = self.settings(user_id)
        return {
            "settings": {
                "channels": {k.value: sorted(c) for k, c in settings.channels.items()},
                "webhook_url": settings.webhook_url,
                "webhook_format": settings.webhook_format,
                "offline_minutes": settings.offline_minutes,
            },
            "push_subscriptions": [s.endpoint for s in self.subscriptions(user_id)],
            "feed": [
                {"at": i.at.isoformat(), "kind": i.kind.value, "title": i.title, "body": i.body}
                for i in self.feed(user_id, limit=100_000)
            ],
        }

    def delete_user(self, user_id: str) -> None:
        """Deletes every row about ``user_id`` and the bytes they were stored in."""
        with self.engine.begin() as conn:
            for table in _USER_TABLES:
                conn.execute(sa.delete(table).where(table.c.user_id == user_id))
        self._purge(_USER_TABLES)

    def _purge(self, tables: tuple[sa.Table, ...]) -> None:
        # PostgreSQL keeps a deleted row in the table file until VACUUM, and a plain VACUUM only
        # marks its space free: the bytes stay in the page until overwritten (measured: the
        # e-mail address still in 4 files). VACUUM FULL rewrites table, TOAST and indexes into
        # new files and unlinks the old ones. It locks each table while it copies it.
        if self.engine.dialect.name != "postgresql":
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                conn.execute(sa.text(f"VACUUM FULL {table.name}"))

    def delete_sites(self, site_ids: list[str]) -> None:
        if not site_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(sa.delete(ev_sessions).where(ev_sessions.c.site_id.in_(site_ids)))
            conn.execute(sa.delete(feed).where(feed.c.site_id.in_(site_ids)))
        self._purge((ev_sessions, feed))


_USER_TABLES = (preferences, user_settings, push_subscriptions, feed, deliveries)


def _utc(t: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive (stored as UTC text)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
