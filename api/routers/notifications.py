"""The owner's notifications: the in-app feed (the dashboard's bell), per-event settings, the
webhook, and Web Push subscriptions. Definitions: docs/notifications.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AnyHttpUrl, BaseModel, Field

from api.deps import Customer, Services, ServicesDep
from api.errors import ERROR_RESPONSES, ApiError, field_error, not_found
from api.schemas import In
from notifications import ChannelName, EventKind, NotificationStore, PushSubscription, UserSettings
from notifications.vapid import application_server_key

router = APIRouter(prefix="/v1/app", tags=["notifications"], responses=ERROR_RESPONSES)

Kind = Literal[
    "ev_charged", "ev_target_at_risk", "box_offline", "box_back", "grid_limit_start",
    "grid_limit_end", "negative_prices_tomorrow", "monthly_report_ready",
]  # fmt: skip
Channel = Literal["feed", "email", "webhook", "push"]


class FeedItemPublic(BaseModel):
    id: int
    site_id: str
    kind: Kind
    title: str
    body: str
    at: datetime
    read: bool
    data: dict[str, object]


class FeedPublic(BaseModel):
    unread: int = Field(description="Unread items in all of the feed")
    items: list[FeedItemPublic] = Field(description="Newest first")


class MarkRead(In):
    id: int | None = Field(default=None, description="One item; omitted: all items")


class MarkedRead(BaseModel):
    updated: int


class WebhookSettings(In):
    url: AnyHttpUrl = Field(description="Where to POST each message (ntfy topic, Gotify, ...)")
    format: Literal["json", "ntfy"] = Field(
        default="json",
        description="json: {title, message, kind, site_id, at, data}; ntfy: "
        "plain text with Title and Tags headers",
    )


class NotificationSettings(In):
    channels: dict[Kind, list[Channel]] = Field(
        description="For each event kind, the channels it goes to ([] = off); kinds left out "
        "keep their current setting"
    )
    webhook: WebhookSettings | None = None
    offline_minutes: int = Field(
        default=30,
        ge=5,
        le=24 * 60,
        description="Minutes offline or in fallback before the box-offline message [min]",
    )


class PushKey(BaseModel):
    application_server_key: str = Field(description="VAPID public key, base64url (P-256 point)")


class SubscriptionKeys(In):
    p256dh: str = Field(min_length=80, max_length=100, pattern=r"^[A-Za-z0-9_-]+=*$")
    auth: str = Field(min_length=16, max_length=32, pattern=r"^[A-Za-z0-9_-]+=*$")


class PushSubscriptionIn(In):
    endpoint: AnyHttpUrl = Field(description="The push service URL the browser gave")
    keys: SubscriptionKeys


def _store(services: Services) -> NotificationStore:
    if services.notifications is None:
        raise ApiError(503, "notifications_unavailable", "notifications are not configured")
    return services.notifications


@router.get("/me/notifications", response_model=FeedPublic)
def feed(
    user: Customer,
    services: ServicesDep,
    unread: Annotated[bool, Query(description="Only unread items")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FeedPublic:
    """The in-app feed, newest first, with the number of unread items (the bell's badge)."""
    store = _store(services)
    items = [
        FeedItemPublic(
            id=i.id,
            site_id=i.site_id,
            kind=i.kind.value,
            title=i.title,
            body=i.body,
            at=i.at,
            read=i.read,
            data=i.data,
        )
        for i in store.feed(user.id, limit, unread)
    ]
    return FeedPublic(unread=store.unread_count(user.id), items=items)


@router.post("/me/notifications/read", response_model=MarkedRead)
def mark_read(body: MarkRead, user: Customer, services: ServicesDep) -> MarkedRead:
    """Mark one feed item, or all of them, read."""
    updated = _store(services).mark_read(user.id, body.id)
    if body.id is not None and updated == 0:
        raise not_found("notification")
    return MarkedRead(updated=updated)


@router.get("/me/notification-settings", response_model=NotificationSettings)
def get_settings(user: Customer, services: ServicesDep) -> NotificationSettings:
    """Which events go to which channels, the webhook, and the offline grace period."""
    return _public(_store(services).settings(user.id))


@router.put("/me/notification-settings", response_model=NotificationSettings)
def put_settings(
    body: NotificationSettings, user: Customer, services: ServicesDep
) -> NotificationSettings:
    """Change the settings; a kind sent to ``webhook`` needs a webhook URL."""
    store = _store(services)
    current = store.settings(user.id)
    channels = dict(current.channels)
    for kind, names in body.channels.items():
        channels[EventKind(kind)] = frozenset(ChannelName(n) for n in names)
    webhook = body.webhook
    if webhook is None and any(ChannelName.WEBHOOK in c for c in channels.values()):
        raise field_error("body.webhook", "a kind goes to the webhook channel, so set its url")
    settings = UserSettings(
        channels,
        None if webhook is None else str(webhook.url),
        "json" if webhook is None else webhook.format,
        body.offline_minutes,
    )
    store.save_settings(user.id, settings)
    return _public(settings)


@router.get("/push/key", response_model=PushKey)
def push_key(user: Customer, services: ServicesDep) -> PushKey:
    """The key a browser subscribes to Web Push with; 503 when push is not configured."""
    key = services.settings.vapid_private_key.get_secret_value()
    if not key:
        raise ApiError(503, "push_unavailable", "Web Push is not configured on this service")
    return PushKey(application_server_key=application_server_key(key))


@router.post("/me/push-subscriptions", status_code=204, response_class=Response)
def subscribe(body: PushSubscriptionIn, user: Customer, services: ServicesDep) -> Response:
    """Register this browser for push messages (what ``PushManager.subscribe`` returned)."""
    sub = PushSubscription(str(body.endpoint), body.keys.p256dh, body.keys.auth)
    _store(services).add_subscription(user.id, sub, services.now())
    return Response(status_code=204)


@router.delete("/me/push-subscriptions", status_code=204, response_class=Response)
def unsubscribe(
    user: Customer,
    services: ServicesDep,
    endpoint: Annotated[str, Query(min_length=1, max_length=2000)],
) -> Response:
    """Stop push messages to one browser."""
    if not _store(services).remove_subscription(user.id, endpoint):
        raise not_found("subscription")
    return Response(status_code=204)


def _public(settings: UserSettings) -> NotificationSettings:
    webhook = None
    if settings.webhook_url:
        webhook = WebhookSettings.model_validate(
            {"url": settings.webhook_url, "format": settings.webhook_format}
        )
    return NotificationSettings.model_validate(
        {
            "channels": {k.value: sorted(c) for k, c in settings.channels.items()},
            "webhook": webhook,
            "offline_minutes": settings.offline_minutes,
        }
    )
