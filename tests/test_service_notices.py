"""Owner notifications from the service's control loop: the statuses the supervisor publishes
become messages in the owner's feed (real SQLite account and notification databases)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from adapters.clock import SimClock
from api.accounts_store import AccountStore
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


def test_negative_prices_tomorrow_come_from_the_plan_published_prices() -> None:
    from dataclasses import dataclass

    import pandas as pd

    from hbopt.service import tomorrow_negative_prices
    from notifications import SiteRef
    from optimizer import Problem
    from scheduler.scenario import Home, scenario_problem

    @dataclass
    class Planned:  # what the function reads of a SiteController
        last_problem: Problem
        input_flags: pd.DataFrame | None
        plans: list[tuple[pd.Timestamp, pd.DataFrame]]

    # Saturday 11 May 2024, 16:00 Berlin: Sunday's day-ahead prices are known, several negative
    problem, _ = scenario_problem(Home(), "2024-05-11T14:00Z", 192)
    now = datetime(2024, 5, 11, 14, 0, tzinfo=UTC)
    site = SiteRef("s", "Home", "Europe/Berlin")
    event = tomorrow_negative_prices(Planned(problem, None, []), site, now)  # type: ignore[arg-type]
    assert event is not None and event.kind == EventKind.NEGATIVE_PRICES_TOMORROW
    assert event.key == "negative-prices:2024-05-12" and "Sun 12 May" in event.body
    # the same prices flagged as estimates are not news
    flags = pd.DataFrame({"price-is_estimate": True}, index=problem.inputs.index)
    estimated = Planned(problem, flags, [])
    assert tomorrow_negative_prices(estimated, site, now) is None  # type: ignore[arg-type]
