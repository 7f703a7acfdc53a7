"""Where a message goes: one small adapter per channel behind :class:`Channel`.

* ``email`` — through the service's mailer (SMTP, or the log when none is configured);
* ``feed`` — the in-app feed (``/v1/app/me/notifications``, the dashboard's bell);
* ``webhook`` — an HTTP POST to a URL the owner sets: ntfy, Gotify, Home Assistant, ...;
* ``push`` — Web Push (VAPID) to the browsers the owner allowed.

A channel's :meth:`~Channel.deliver` raises :class:`DeliveryError` (or any exception) when the
message did not arrive; the dispatcher retries it with back-off. ``permanent=True`` says a retry
cannot help (no address, a subscription the push service has dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from notifications.events import ChannelName, Event
from notifications.store import PushSubscription, UserSettings


@dataclass(frozen=True)
class Recipient:
    """A user to tell, with what each channel needs."""

    user_id: str
    email: str | None
    settings: UserSettings
    subscriptions: tuple[PushSubscription, ...] = field(default_factory=tuple)


class DeliveryError(Exception):
    """The message did not arrive; ``permanent`` when retrying cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    @property
    def name(self) -> ChannelName: ...

    def deliver(self, recipient: Recipient, event: Event) -> None:
        """Deliver ``event`` to ``recipient`` or raise; may block (runs in a worker thread)."""
        ...


__all__ = ["Channel", "DeliveryError", "Recipient"]
