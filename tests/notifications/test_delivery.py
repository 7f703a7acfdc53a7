"""Every event kind through real channels: SMTP on 127.0.0.1, a webhook receiver, the feed.

Each message arrives exactly once, however often the event is published; a failing channel is
retried with back-off and never holds up the publisher (the control loop)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from api.mailer import Message
from api.mailer_smtp import SmtpConfig, SmtpMailer
from notifications import (
    ChannelName,
    DispatchPolicy,
    Event,
    EventKind,
    NotificationStore,
    Notifier,
    SiteRef,
    SiteSnapshot,
    SiteWatch,
    UserSettings,
    monthly_report_event,
    negative_prices_event,
)
from notifications.channels.email import EmailChannel
from notifications.channels.feed import FeedChannel
from notifications.channels.webhook import WebhookChannel
from pricing.bundled import HOURLY_FILE, data_path, read_de_lu_hourly_csv

from .conftest import Receiver, SmtpServer

SITE = SiteRef("site-1", "Home", "Europe/Berlin")
T0 = datetime(2024, 5, 11, 16, 0, tzinfo=UTC)
ALL = frozenset(ChannelName) - {ChannelName.PUSH}
FAST = DispatchPolicy(attempts=4, backoff_s=0.02, backoff_max_s=0.1)


def snap(minutes: float, **kw: object) -> SiteSnapshot:
    return SiteSnapshot(
        SITE.site_id,
        SITE.name,
        SITE.tz,
        T0 + timedelta(minutes=minutes),
        **kw,  # type: ignore[arg-type]
    )


def event_of(kind: EventKind) -> Event:
    """The event of ``kind`` as the detectors make it from a realistic sequence."""
    watch = SiteWatch(offline_after=timedelta(minutes=30))
    sequences: dict[EventKind, list[SiteSnapshot]] = {
        EventKind.EV_CHARGED: [
            snap(0, ev_connected=True, ev_energy_kwh=20.0, ev_target_kwh=45.0),
            snap(240, ev_connected=True, ev_energy_kwh=44.9, ev_target_kwh=45.0),
        ],
        EventKind.EV_TARGET_AT_RISK: [
            snap(
                0,
                ev_connected=True,
                ev_energy_kwh=20.0,
                ev_target_kwh=45.0,
                ev_departure=T0 + timedelta(hours=3),
                ev_shortfall_kwh=12.4,
                ev_shortfall_reason="the wallbox delivers at most 11 kW for 3 h",
            )
        ],
        EventKind.BOX_OFFLINE: [
            snap(0),
            snap(15, box_ok=False, box_problem="unreachable"),
            snap(50, box_ok=False, box_problem="unreachable"),
        ],
        EventKind.BOX_BACK: [
            snap(0, box_ok=False, box_problem="in fallback"),
            snap(45, box_ok=False, box_problem="in fallback"),
            snap(60),
        ],
        EventKind.GRID_LIMIT_START: [snap(0), snap(15, grid_limit_kw=4.2)],
        EventKind.GRID_LIMIT_END: [snap(0, grid_limit_kw=4.2), snap(15)],
    }
    if kind in sequences:
        found = [e for s in sequences[kind] for e in watch.observe(s) if e.kind == kind]
        assert len(found) == 1, found
        return found[0]
    if kind == EventKind.NEGATIVE_PRICES_TOMORROW:
        spot = read_de_lu_hourly_csv(data_path("prices", HOURLY_FILE))["spot_eur_per_kwh"]
        day = spot["2024-05-11T22:00Z":"2024-05-12T21:00Z"]  # Sunday 12 May 2024, local day
        plan = pd.DataFrame({"battery_kw": -3.0, "ev_kw": 0.0}, index=day.index)
        event = negative_prices_event(SITE, T0, day, plan)
        assert event is not None
        return event
    return monthly_report_event(SITE, "2024-05", T0, "http://127.0.0.1/ui/#report")


def notifier(store: NotificationStore, smtp: SmtpServer, policy: DispatchPolicy = FAST) -> Notifier:
    """The service's notifier with the service's own SMTP mailer to ``smtp``."""
    mailer = SmtpMailer(SmtpConfig(smtp.host, smtp.port, security="none", retry_min_s=0.05))

    def send(to: str, subject: str, body: str) -> None:
        mailer.send(Message(to=to, subject=subject, body=body, link=""))

    channels = {
        ChannelName.EMAIL: EmailChannel(send),
        ChannelName.WEBHOOK: WebhookChannel(timeout_s=5),
        ChannelName.FEED: FeedChannel(store),
    }
    return Notifier(store, channels, lambda site: [("u-1", "owner@example.test")], policy)


def subscribe_all(store: NotificationStore, receiver: Receiver, fmt: str = "json") -> None:
    store.save_settings("u-1", UserSettings({k: ALL for k in EventKind}, receiver.url, fmt, 30))


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_arrives_once_on_every_channel(
    kind: EventKind, store: NotificationStore, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    subscribe_all(store, receiver)
    event = event_of(kind)
    n = notifier(store, smtp_server)
    for _ in range(3):  # replans and restarts publish the same occurrence again
        n.publish(event)
    n.drain()
    receiver.wait_for(1)
    deadline = time.monotonic() + 5
    while len(smtp_server.inbox.messages) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    n.close()
    # e-mail: exactly one, with the event's words
    assert len(smtp_server.inbox.messages) == 1
    mail = smtp_server.inbox.messages[0]
    assert mail["Subject"] == event.title  # type: ignore[index]
    text = mail.get_payload(decode=True).decode()  # type: ignore[attr-defined]
    assert event.body in text
    # webhook: exactly one JSON post a Gotify or Home Assistant receiver understands
    assert len(receiver.posts) == 1
    body = json.loads(receiver.posts[0][1])
    assert body["title"] == event.title and body["message"] == event.body
    assert body["kind"] == kind.value and body["site_id"] == SITE.site_id
    # feed: exactly one unread item
    items = store.feed("u-1")
    assert [(i.kind, i.title, i.read) for i in items] == [(kind, event.title, False)]
    for channel in ALL:
        assert store.delivery("u-1", channel, event.key) == ("sent", 1)


def test_a_failing_webhook_is_retried_and_never_blocks_the_publisher(
    store: NotificationStore, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    subscribe_all(store, receiver)
    receiver.fail_first, receiver.delay_s = 2, 0.3  # slow and failing twice
    n = notifier(store, smtp_server)
    event = event_of(EventKind.BOX_OFFLINE)
    started = time.perf_counter()
    for _ in range(50):  # a control loop publishing every cycle
        n.publish(event)
    publish_s = time.perf_counter() - started
    receiver.wait_for(1)
    n.drain()
    n.close()
    assert publish_s < 0.05  # 50 publishes while the webhook hangs: the loop is not held
    assert receiver.seen == 3 and len(receiver.posts) == 1  # 2 failures, then delivered once
    assert store.delivery("u-1", ChannelName.WEBHOOK, event.key) == ("sent", 3)
    # the other channels did not wait for the webhook
    assert len(smtp_server.inbox.messages) == 1 and len(store.feed("u-1")) == 1


def test_a_permanently_failing_channel_stops_after_its_attempts(
    store: NotificationStore, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    subscribe_all(store, receiver)
    receiver.fail_first = 100
    n = notifier(store, smtp_server)
    event = event_of(EventKind.EV_CHARGED)
    n.publish(event)
    n.drain()
    n.close()
    status, attempts = store.delivery("u-1", ChannelName.WEBHOOK, event.key) or ("", 0)
    assert (status, attempts) == ("failed", FAST.attempts)
    assert receiver.seen == FAST.attempts and receiver.posts == []


def test_ntfy_format_posts_plain_text_with_a_title_header(
    store: NotificationStore, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    subscribe_all(store, receiver, fmt="ntfy")
    event = event_of(EventKind.GRID_LIMIT_START)
    n = notifier(store, smtp_server)
    n.publish(event)
    receiver.wait_for(1)
    n.close()
    headers, body = receiver.posts[0]
    assert body.decode() == event.body
    assert headers["title"] == event.title and headers["tags"] == "grid_limit_start"


def test_switched_off_kinds_and_the_rate_limit(
    store: NotificationStore, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    channels = {k: ALL for k in EventKind} | {EventKind.EV_CHARGED: frozenset()}
    store.save_settings("u-1", UserSettings(channels, receiver.url, "json", 30))
    policy = DispatchPolicy(attempts=2, backoff_s=0.01, per_kind_per_hour=2)
    n = notifier(store, smtp_server, policy)
    n.publish(event_of(EventKind.EV_CHARGED))  # switched off: nowhere
    base = event_of(EventKind.GRID_LIMIT_START)
    for i in range(4):  # four different limit events within the hour: two get out
        n.publish(Event(base.kind, base.site_id, base.at, f"{base.key}-{i}", base.title, base.body))
    n.drain()
    receiver.wait_for(2)
    time.sleep(0.1)
    n.close()
    assert len(receiver.posts) == 2
    assert len(smtp_server.inbox.messages) == 2
    # beyond the limit the feed still gets them, and EV_CHARGED went nowhere
    assert [i.kind for i in store.feed("u-1")] == [EventKind.GRID_LIMIT_START] * 4
