"""Owner notifications from the service's control loop: the statuses the supervisor publishes
become messages in the owner's feed (real SQLite account and notification databases)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from adapters.clock import SimClock
from api.accounts_sqlite import AccountStore
from api.mailer import OutboxMailer
from api.notify import notifier_for
from api.settings import Settings
from hbopt.service import SiteNotices
from notifications import EventKind, NotificationStore
from scheduler.runtime import SiteStatus


def test_a_box_offline_past_the_grace_period_reaches_the_owner_once(tmp_path: Path) -> None:
    db = tmp_path / "api.sqlite3"
    accounts = AccountStore(db)
    t0 = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    owner = accounts.create_user("owner@example.org", "x", "customer", t0, confirmed=True)
    site = accounts.create_site(owner.id, "Home", "Europe/Berlin", "default", t0)
    store = NotificationStore.open(f"sqlite:///{db}")
    mailer = OutboxMailer()
    settings = Settings(database_path=db, mode="test")
    clock = SimClock(t0.timestamp())
    notifier = notifier_for(
        store, settings, mailer, accounts, lambda: datetime.fromtimestamp(clock.now(), UTC)
    )
    notices = SiteNotices(accounts, store, notifier, clock)  # type: ignore[arg-type]
    remote = SiteStatus(site.id, "remote", "remote control", "modbus")
    gone = SiteStatus(site.id, "unreachable", "box unreachable", "modbus")
    notices(remote, None)
    for _ in range(10):  # every 5 simulated minutes for 50 minutes: the box does not answer
        clock.advance(300)
        notices(gone, None)
    clock.advance(300)
    notices(remote, None)
    notifier.drain()
    deadline = time.monotonic() + 5
    while len(store.feed(owner.id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    notifier.close()
    kinds = [item.kind for item in reversed(store.feed(owner.id))]
    assert kinds == [EventKind.BOX_OFFLINE, EventKind.BOX_BACK]
    # offline and back are both worth an e-mail by default
    assert [m.subject for m in mailer.outbox] == [
        "Home: your Heartbeat box is unreachable",
        "Home: your Heartbeat box is back",
    ]
