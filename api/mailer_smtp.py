"""Account mail over SMTP: the standard library's ``smtplib`` on one worker thread.

:meth:`SmtpMailer.send` only queues the message and returns, so a request never waits for the
mail server and never fails because it is down. The worker delivers the queue in order; a
delivery that fails with a network or temporary SMTP error is retried with exponential back-off
(tenacity), and a message still undelivered after the last attempt is logged (without its
link, which holds a secret token) and dropped: the owner can ask for a new link.

``smtplib`` rather than an async client: delivery runs on its own thread anyway (the account
routes are synchronous), and the standard library speaks STARTTLS, implicit TLS and AUTH.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from api.mailer import Message

logger = logging.getLogger("api.mail")

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to deliver; times in seconds."""

    host: str
    port: int = 587
    security: Security = "starttls"
    user: str = ""
    password: str = ""
    sender: str = "Heartbeat <noreply@localhost>"
    timeout_s: float = 10.0
    attempts: int = 6
    retry_min_s: float = 2.0
    retry_max_s: float = 300.0


class SmtpMailer:
    """Delivers :class:`~api.mailer.Message` through one SMTP server, off the caller's thread."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp")
        self._closing = threading.Event()
        self._pending = 0  # queued or being delivered
        self._count_lock = threading.Lock()

    def send(self, message: Message) -> None:
        """Queue ``message`` for delivery and return at once."""
        self.submit(message)

    def submit(self, message: Message) -> Future[bool]:
        """Queue ``message``; the future is True once delivered, False when given up."""
        with self._count_lock:
            self._pending += 1
        return self._worker.submit(self._deliver_counted, message)

    def close(self, wait: bool = True) -> None:
        """Stop taking messages; with ``wait``, deliver (or give up on) the queued ones first.

        Without ``wait``, queued messages are dropped and a retry in progress stops after its
        current attempt, so a process can exit while the mail server is down.
        """
        if not wait:
            self._closing.set()
            if self._pending:
                logger.warning("shutting down: %d account mail(s) not delivered", self._pending)
        self._worker.shutdown(wait=wait, cancel_futures=not wait)

    def _deliver_counted(self, message: Message) -> bool:
        try:
            return self._deliver(message)
        finally:
            with self._count_lock:
                self._pending -= 1

    def _deliver(self, message: Message) -> bool:
        config = self.config
        retrying = Retrying(
            stop=stop_after_attempt(config.attempts) | stop_when_event_set(self._closing),
            sleep=self._pause,
            wait=wait_exponential(multiplier=config.retry_min_s, max=config.retry_max_s),
            retry=retry_if_exception(is_transient),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            retrying(self._deliver_once, email_message(message, config.sender))
        except Exception as exc:  # the worker must survive any failure of one message
            logger.error(
                "mail to %s (%s) not delivered: %s: %s",
                message.to,
                message.subject,
                type(exc).__name__,
                exc,
            )
            return False
        logger.info("mail to %s (%s) delivered", message.to, message.subject)
        return True

    def _pause(self, seconds: float) -> None:
        self._closing.wait(seconds)  # wakes early when the mailer closes

    def _deliver_once(self, mail: EmailMessage) -> None:
        config = self.config
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(
                config.host,
                config.port,
                timeout=config.timeout_s,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if config.user:
                smtp.login(config.user, config.password)
            smtp.send_message(mail)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait_s = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "mail delivery attempt %d failed (%s); retrying in %.0f s",
        state.attempt_number,
        exc,
        wait_s,
    )


def is_transient(exc: BaseException) -> bool:
    """Whether a delivery error may go away by itself (network, server busy, 4xx replies).

    A refused sender or recipient, a 5xx reply or failed authentication will fail the same
    way again, so those are not retried.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
        return False
    return isinstance(exc, smtplib.SMTPServerDisconnected | OSError)


def email_message(message: Message, sender: str) -> EmailMessage:
    """The RFC 5322 message for ``message`` (plain text, UTF-8)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    mail.set_content(message.body)
    return mail
