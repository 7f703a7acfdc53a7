"""The notification store on SQLite and PostgreSQL: times come back as the same UTC instants,
booleans as booleans, a delivery is claimed once across threads, and a deleted user's data is
gone from the database files themselves, not just from SELECTs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from notifications import ChannelName, EventKind, NotificationStore, PushSubscription
from notifications.events import Event, SessionOutcome
from notifications.store import UserSettings
from tests.pg_server import database_files

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
SECRET_ID = "user-4f1e9c0a-secret"
SECRET_MAIL = "alice.secret@example.org"


def event(key: str, at: datetime, who: str = "someone") -> Event:
    return Event(EventKind.GRID_LIMIT_START, "site-1", at, key, "Grid limit", f"for {who}", {})


def test_times_are_utc_instants_and_flags_are_booleans(store: NotificationStore) -> None:
    cet = timezone(timedelta(hours=1))
    store.add_feed_item("u-1", event("a", datetime(2026, 12, 5, 10, 30, tzinfo=cet)))
    store.add_feed_item("u-1", event("b", T0 + timedelta(hours=1)))
    store.add_feed_item("u-1", event("a", T0))  # same key: ignored
    items = store.feed("u-1")
    assert [(i.at, i.read) for i in items] == [
        (T0 + timedelta(hours=1), False),
        (datetime(2026, 12, 5, 9, 30, tzinfo=UTC), False),
    ]
    assert all(i.at.utcoffset() == timedelta(0) for i in items)
    assert store.mark_read("u-1", items[0].id) == 1
    assert store.unread_count("u-1") == 1
    assert [i.read for i in store.feed("u-1")] == [True, False]
    assert [i.kind for i in store.feed("u-1", unread_only=True)] == [EventKind.GRID_LIMIT_START]

    met = SessionOutcome("site-1", T0, T0 + timedelta(hours=3), 20.0, 18.0, 18.0, False)
    store.record_session(met)
    store.record_session(met)  # replaces, never duplicates
    got = store.sessions("site-1", T0, T0 + timedelta(hours=3, seconds=1))
    assert got == [met] and got[0].met is False
    assert store.sessions("site-1", T0, T0 + timedelta(hours=3)) == []  # end is exclusive


def test_a_delivery_is_claimed_once_by_racing_threads(store: NotificationStore) -> None:
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        wins.append(store.claim("u-1", ChannelName.EMAIL, "k-1", T0))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    assert store.delivery("u-1", ChannelName.EMAIL, "k-1") == ("pending", 0)
    store.finish("u-1", ChannelName.EMAIL, "k-1", 2, None)
    assert store.delivery("u-1", ChannelName.EMAIL, "k-1") == ("sent", 2)


def _fill(store: NotificationStore, user_id: str, tag: str) -> None:
    channels = {k: frozenset({ChannelName.FEED, ChannelName.EMAIL}) for k in EventKind}
    store.save_settings(user_id, UserSettings(channels, f"https://ntfy.sh/{tag}", "ntfy", 45))
    sub = PushSubscription(f"https://push.example/{tag}", "p" * 40, "a" * 16)
    store.add_subscription(user_id, sub, T0)
    for i in range(30):
        store.add_feed_item(user_id, event(f"{tag}-{i}", T0 + timedelta(minutes=i), tag))
        store.claim(user_id, ChannelName.EMAIL, f"{tag}-{i}", T0)


def test_a_deleted_user_leaves_no_bytes_in_the_database_files(
    store: NotificationStore, db_url: str, request: pytest.FixtureRequest
) -> None:
    # Neighbours on the same pages, before and after, so the deleted rows are not simply the
    # tail of a table that gets truncated.
    _fill(store, "u-before", "neighbour-before")
    _fill(store, SECRET_ID, SECRET_MAIL)
    _fill(store, "u-after", "neighbour-after")
    store.record_session(SessionOutcome("site-1", T0, T0, None, None, 1.0, None))

    def containing(needle: str) -> list[str]:
        return [
            p.name for p in database_files(db_url, request) if needle.encode() in p.read_bytes()
        ]

    assert containing(SECRET_MAIL) and containing(SECRET_ID)  # the probe can find them
    store.delete_user(SECRET_ID)

    assert store.export_user(SECRET_ID)["feed"] == []
    assert store.subscriptions(SECRET_ID) == [] and store.feed(SECRET_ID) == []
    assert containing(SECRET_MAIL) == [] and containing(SECRET_ID) == []
    # the neighbours are untouched
    assert len(store.feed("u-before", limit=100)) == 30
    assert store.settings("u-after").webhook_url == "https://ntfy.sh/neighbour-after"
    assert store.delivery("u-after", ChannelName.EMAIL, "neighbour-after-29") == ("pending", 0)
