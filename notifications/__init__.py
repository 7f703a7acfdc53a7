"""Owner notifications: what is worth a message, and getting it there once.

* :mod:`notifications.events` — the event kinds and :class:`SiteWatch`, which finds them in the
  control loop's snapshots (pure);
* :mod:`notifications.store` — settings, the in-app feed, push subscriptions and the delivery
  record (SQLAlchemy Core, the service's database);
* :mod:`notifications.channels` — e-mail, in-app feed, webhook, Web Push: one adapter each;
* :mod:`notifications.dispatcher` — :class:`Notifier`: non-blocking publish, de-duplication,
  per-kind rate limits, retries with back-off.

Definitions, defaults and settings: docs/notifications.md.
"""

from notifications.dispatcher import DispatchPolicy, Notifier
from notifications.events import (
    DEFAULT_CHANNELS,
    ChannelName,
    Event,
    EventKind,
    SessionOutcome,
    SiteRef,
    SiteSnapshot,
    SiteWatch,
    monthly_report_event,
    negative_prices_event,
)
from notifications.store import FeedItem, NotificationStore, PushSubscription, UserSettings

__all__ = [
    "DEFAULT_CHANNELS",
    "ChannelName",
    "DispatchPolicy",
    "Event",
    "EventKind",
    "FeedItem",
    "NotificationStore",
    "Notifier",
    "PushSubscription",
    "SessionOutcome",
    "SiteRef",
    "SiteSnapshot",
    "SiteWatch",
    "UserSettings",
    "monthly_report_event",
    "negative_prices_event",
]
