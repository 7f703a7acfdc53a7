"""How the service sends account mail: a one-method interface and its default.

The default :class:`LogMailer` writes each message, link included, to the log, which is enough
for the demo and for operators who relay it by hand; a deployment plugs in an SMTP or provider
adapter with the same method. :class:`OutboxMailer` keeps messages in memory (tests, demos).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger("api.mail")


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str
    link: str


class Mailer(Protocol):
    def send(self, message: Message) -> None:
        """Deliver one message (may block; called from a worker thread)."""
        ...


class LogMailer:
    """Writes the message and its link to the ``api.mail`` logger."""

    def send(self, message: Message) -> None:
        logger.info("mail to %s: %s: %s", message.to, message.subject, message.link)


@dataclass
class OutboxMailer:
    """Keeps every message in :attr:`outbox`, newest last."""

    outbox: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> None:
        self.outbox.append(message)
