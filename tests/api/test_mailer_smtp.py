"""Account mail through a real SMTP server (aiosmtpd on 127.0.0.1) and through the service log.

The SMTP tests deliver to aiosmtpd; the log test runs ``hbopt serve`` as a process with no SMTP
server set, follows the link it prints and checks that no token reached the access log or the
request log.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from api.mailer import Message
from api.mailer_smtp import SmtpConfig, SmtpMailer
from api.main import create_app
from tests.api.conftest import PASSWORD, FakeClock, make_settings
from tests.api.smtp_server import free_port, smtp_server

SENDER = "Heartbeat <noreply@heartbeat.example>"
LINK_RE = re.compile(r"(https?://\S+/ui/(?:confirm-email|reset-password)#token=([\w-]+))")


def _message(to: str = "ada@example.org") -> Message:
    link = "http://127.0.0.1:8000/ui/confirm-email#token=abc123"
    return Message(to=to, subject="Confirm your Heartbeat account", body=f"open {link}", link=link)


def test_smtp_delivers_the_link_with_auth() -> None:
    with smtp_server(auth=("mailer", "s3cret")) as server:
        config = SmtpConfig(
            server.host, server.port, "none", user="mailer", password="s3cret", sender=SENDER
        )
        mailer = SmtpMailer(config)
        try:
            assert mailer.submit(_message()).result(timeout=10) is True
        finally:
            mailer.close()
        mail = server.inbox.wait_for("ada@example.org")
    assert mail["From"] == SENDER
    assert mail["Subject"] == "Confirm your Heartbeat account"
    assert "http://127.0.0.1:8000/ui/confirm-email#token=abc123" in mail.get_content()
    assert mail["Message-ID"].endswith("@heartbeat.example>")


def test_wrong_smtp_password_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    with smtp_server(auth=("mailer", "s3cret")) as server:
        config = SmtpConfig(
            server.host, server.port, "none", user="mailer", password="wrong", retry_min_s=5.0
        )
        mailer = SmtpMailer(config)
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, "api.mail"):
            assert mailer.submit(_message()).result(timeout=10) is False
        mailer.close()
        assert not server.inbox.messages
    assert time.monotonic() - start < 4.0  # no back-off wait: a 535 will not go away
    assert "not delivered: SMTPAuthenticationError" in caplog.text
    assert "token=" not in caplog.text


def test_server_down_then_up_the_mail_arrives_by_retry(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    config = SmtpConfig("127.0.0.1", port, "none", sender=SENDER, retry_min_s=0.2, retry_max_s=1)
    mailer = SmtpMailer(config)
    with caplog.at_level(logging.WARNING, "api.mail"):
        # the caller never waits for the server: submit returns while the server is still
        # down (a blocking submit would never return here); no wall-clock bound, which a
        # loaded CI machine can miss
        future = mailer.submit(_message())
        assert not future.done()
        time.sleep(0.5)  # at least one attempt fails with "connection refused"
        assert not future.done()
        with smtp_server(port=port) as server:
            assert future.result(timeout=10) is True
            mail = server.inbox.wait_for("ada@example.org")
        mailer.close()
    assert "#token=abc123" in mail.get_content()
    assert "retrying in" in caplog.text


def test_closing_does_not_wait_for_a_dead_server(caplog: pytest.LogCaptureFixture) -> None:
    config = SmtpConfig("127.0.0.1", free_port(), "none", retry_min_s=30.0, retry_max_s=60.0)
    mailer = SmtpMailer(config)
    with caplog.at_level(logging.WARNING, "api.mail"):
        first, second = mailer.submit(_message()), mailer.submit(_message("bob@example.org"))
        time.sleep(0.3)  # the first attempt fails; the retry would wait 30 s
        start = time.monotonic()
        mailer.close(wait=False)
        assert first.result(timeout=5) is False
    assert time.monotonic() - start < 2.0
    assert second.cancelled()
    assert "2 account mail(s) not delivered" in caplog.text


class _Silent:
    """A TCP server that accepts and never says a word (a hung mail server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port: int = self.sock.getsockname()[1]


@pytest.fixture
def silent_smtp() -> Iterator[_Silent]:
    silent = _Silent()
    yield silent
    silent.sock.close()


def test_a_hung_mail_server_does_not_hold_the_request(tmp_path: Path, silent_smtp: _Silent) -> None:
    settings = make_settings(
        tmp_path, smtp_host="127.0.0.1", smtp_port=silent_smtp.port, smtp_security="none"
    )
    with TestClient(create_app(settings, clock=FakeClock())) as client:
        start = time.monotonic()
        response = client.post(
            "/v1/auth/register", json={"email": "ada@example.org", "password": PASSWORD}
        )
        elapsed = time.monotonic() - start
    assert response.status_code == 202
    assert elapsed < 2.0  # smtplib would wait 10 s for the greeting if it ran inline


def test_register_mails_a_link_that_confirms(tmp_path: Path) -> None:
    with smtp_server() as server:
        settings = make_settings(
            tmp_path,
            smtp_host=server.host,
            smtp_port=server.port,
            smtp_security="none",
            mail_from=SENDER,
            public_base_url="https://hems.example.org",
        )
        with TestClient(create_app(settings, clock=FakeClock())) as client:
            client.post(
                "/v1/auth/register", json={"email": "ada@example.org", "password": PASSWORD}
            )
            mail = server.inbox.wait_for("ada@example.org")
            match = LINK_RE.search(mail.get_content())
            assert match is not None, mail.get_content()
            assert match.group(1).startswith("https://hems.example.org/ui/confirm-email#token=")
            page = client.get(urlsplit(match.group(1)).path)
            assert page.status_code == 200 and 'src="js/main.js"' in page.text
            confirmed = client.post("/v1/auth/confirm", json={"token": match.group(2)})
            assert confirmed.status_code == 200
            assert confirmed.json()["email_confirmed"] is True


# -- hbopt serve without SMTP: the link in the service log, no token in any access log --------
def _wait_for(
    pattern: re.Pattern[str], log: Path, after: int = 0, timeout_s: float = 10.0
) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text(), after)
        if match:
            return match
        time.sleep(0.05)
    raise AssertionError(f"{pattern.pattern} not in the service log:\n{log.read_text()}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    port = free_port()
    log = tmp_path / "service.log"
    env = {
        **os.environ,
        "HBOPT_DATABASE_PATH": str(tmp_path / "api.sqlite3"),
        "HBOPT_TELEMETRY_PATH": str(tmp_path / "telemetry.sqlite3"),
        "HBOPT_JWT_SECRET": "serve-mail-test-secret-0123456789abcdef",
        "HBOPT_PASSWORD_TIME_COST": "1",
        "HBOPT_PASSWORD_MEMORY_COST_KIB": "64",
        "HBOPT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("HBOPT_SMTP_HOST", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hbopt", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(re.compile(r"Uvicorn running"), log, timeout_s=60.0)  # imports take a while
        yield f"http://127.0.0.1:{port}", log, tmp_path / "api.sqlite3"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_prints_the_link_and_logs_no_token(served: tuple[str, Path, Path]) -> None:
    base, log, database = served
    tokens = []
    with httpx.Client(base_url=base, timeout=5.0) as client:
        client.post("/v1/auth/register", json={"email": "ada@example.org", "password": PASSWORD})
        link, token = _wait_for(LINK_RE, log).groups()
        assert link.startswith(f"{base}/ui/confirm-email#token=")
        tokens.append(token)
        # What the browser requests for the link: the path, never the fragment.
        assert client.get(urlsplit(link).path).status_code == 200
        assert client.post("/v1/auth/confirm", json={"token": token}).status_code == 200

        mark = len(log.read_text())
        client.post("/v1/auth/password-reset", json={"email": "ada@example.org"})
        link, token = _wait_for(LINK_RE, log, mark).groups()
        assert "/ui/reset-password#token=" in link
        tokens.append(token)
        assert client.get(urlsplit(link).path).status_code == 200
        reset = client.post(
            "/v1/auth/password-reset/confirm",
            json={"token": token, "new_password": "another long password"},
        )
        assert reset.status_code == 204
        time.sleep(1.5)  # the request log is flushed to SQLite every second

    text = log.read_text()
    access = [line for line in text.splitlines() if re.search(r'HTTP/1\.1" \d{3}', line)]
    assert any("/ui/confirm-email" in line for line in access), text
    assert any("POST /v1/auth/password-reset/confirm" in line for line in access), text
    rows = sqlite3.connect(database).execute("SELECT * FROM request_log").fetchall()
    assert any("/v1/auth/confirm" in map(str, row) for row in rows)
    for token in tokens:
        assert all(token not in line for line in access)
        assert all(token not in str(value) for row in rows for value in row)
