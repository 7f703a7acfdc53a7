"""E-mail through the service's mailer (SMTP when configured, the log otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from notifications.channels import DeliveryError, Recipient
from notifications.events import ChannelName, Event

#: ``send(to, subject, body)``; raises when the mail server refused or did not answer.
SendMail = Callable[[str, str, str], None]


@dataclass(frozen=True)
class EmailChannel:
    """Sends the event's title as subject and its body plus a dashboard link as text."""

    send: SendMail
    dashboard_url: str = ""
    name: ChannelName = ChannelName.EMAIL

    def deliver(self, recipient: Recipient, event: Event) -> None:
        if not recipient.email:
            raise DeliveryError("the account has no e-mail address", permanent=True)
        link = f"\n\nOpen the dashboard: {self.dashboard_url}" if self.dashboard_url else ""
        footer = "\n\nYou can switch these messages off in the dashboard's settings."
        self.send(recipient.email, event.title, event.body + link + footer)
