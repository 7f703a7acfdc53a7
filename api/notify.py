"""Wires the notification dispatcher to this API's mailer, accounts and settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from api.accounts_store import AccountStore
from api.deps import Services
from api.mailer import Mailer, Message
from api.settings import Settings
from notifications import ChannelName, DispatchPolicy, NotificationStore, Notifier
from notifications.channels import Channel
from notifications.channels.email import EmailChannel
from notifications.channels.feed import FeedChannel
from notifications.channels.webhook import WebhookChannel


def make_notifier(services: Services) -> Notifier | None:
    """The notifier of ``services``; None without a notification store."""
    if services.notifications is None:
        return None
    return notifier_for(
        services.notifications, services.settings, services.mailer, services.accounts, services.now
    )


def notifier_for(
    store: NotificationStore,
    settings: Settings,
    mailer: Mailer,
    accounts: AccountStore,
    clock: Callable[[], datetime],
) -> Notifier:
    """Feed, e-mail (through ``mailer``) and webhook always, Web Push when a VAPID key is set;
    the recipients of a site are its owner."""
    dashboard = f"{settings.public_base_url.rstrip('/')}/ui/"

    def send(to: str, subject: str, body: str) -> None:
        mailer.send(Message(to=to, subject=subject, body=body, link=dashboard))

    channels: dict[ChannelName, Channel] = {
        ChannelName.FEED: FeedChannel(store),
        ChannelName.EMAIL: EmailChannel(send, dashboard),
        ChannelName.WEBHOOK: WebhookChannel(),
    }
    vapid = settings.vapid_private_key.get_secret_value()
    if vapid:
        # pywebpush pulls in aiohttp and requests: only a service that pushes imports them
        from notifications.channels.webpush import WebPushChannel  # noqa: PLC0415

        channels[ChannelName.PUSH] = WebPushChannel.from_pem(
            vapid, settings.vapid_subject, store.remove_subscription
        )

    def recipients(site_id: str) -> list[tuple[str, str | None]]:
        site = accounts.get_site(site_id)
        owner = None if site is None else accounts.get_user(site.owner_id)
        return [] if owner is None else [(owner.id, owner.email)]

    policy = DispatchPolicy(attempts=settings.notification_attempts)
    return Notifier(store, channels, recipients, policy, clock=clock)
