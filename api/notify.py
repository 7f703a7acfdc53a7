"""Wires the notification dispatcher to this API's mailer, accounts and settings."""

from __future__ import annotations

from api.deps import Services
from api.mailer import Message
from notifications import ChannelName, DispatchPolicy, Notifier
from notifications.channels import Channel
from notifications.channels.email import EmailChannel
from notifications.channels.feed import FeedChannel
from notifications.channels.webhook import WebhookChannel


def make_notifier(services: Services) -> Notifier | None:
    """The notifier of ``services``: feed, e-mail and webhook always, Web Push when a VAPID
    key is set. None without a notification store."""
    store = services.notifications
    if store is None:
        return None
    settings = services.settings
    dashboard = f"{settings.public_base_url.rstrip('/')}/ui/"

    def send(to: str, subject: str, body: str) -> None:
        services.mailer.send(Message(to=to, subject=subject, body=body, link=dashboard))

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
        site = services.accounts.get_site(site_id)
        owner = None if site is None else services.accounts.get_user(site.owner_id)
        return [] if owner is None else [(owner.id, owner.email)]

    policy = DispatchPolicy(attempts=settings.notification_attempts)
    return Notifier(store, channels, recipients, policy, clock=services.now)
