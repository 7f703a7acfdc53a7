"""How the service sends account mail: a one-method interface and its default.

Without an SMTP server in the settings, :class:`LogMailer` writes each message, link included,
to the ``api.mail`` log (``hbopt serve`` prints it), which is enough for the demo and for
operators who relay it by hand; with one, :class:`api.mailer_smtp.SmtpMailer` delivers it
(:func:`api.main.mailer_from_settings` picks). :class:`OutboxMailer` keeps messages in memory.
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
        """Deliver or queue one message (called from a worker thread; may block briefly)."""
        ...


class LogMailer:
    """Writes the message and its link to the ``api.mail`` logger.

    At WARNING, so the link shows at every log level: someone has to relay it by hand.
    """

    def send(self, message: Message) -> None:
        logger.warning(
            "no SMTP server set (HBOPT_SMTP_HOST); relay this mail by hand: to %s: %s: %s",
            message.to,
            message.subject,
            message.link,
        )


@dataclass
class OutboxMailer:
    """Keeps every message in :attr:`outbox`, newest last."""

    outbox: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> None:
        self.outbox.append(message)
