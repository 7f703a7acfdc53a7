"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, on a free port, keeping what arrives."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Inbox:
    """The aiosmtpd handler: every accepted message, parsed, newest last."""

    messages: list[EmailMessage] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.arrived:
            self.messages.append(parsed)
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, timeout_s: float = 10.0, after: int = 0) -> EmailMessage:
        """The first message to ``to`` (beyond the first ``after`` messages) within the timeout."""
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while True:
                for message in self.messages[after:]:
                    if message["To"] == to:
                        return message
                left = deadline - time.monotonic()
                assert left > 0, f"no mail to {to} within {timeout_s} s ({len(self.messages)} got)"
                self.arrived.wait(left)


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: Inbox
    controller: Controller


def _authenticator(user: str, password: str) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def smtp_server(
    port: int | None = None, auth: tuple[str, str] | None = None
) -> Iterator[SmtpServer]:
    """Run aiosmtpd on 127.0.0.1 (plain SMTP; AUTH LOGIN/PLAIN when ``auth`` is given)."""
    inbox = Inbox()
    kwargs: dict[str, Any] = {}
    if auth is not None:
        kwargs = {"authenticator": _authenticator(*auth), "auth_require_tls": False}
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, inbox, controller)
    finally:
        controller.stop()
