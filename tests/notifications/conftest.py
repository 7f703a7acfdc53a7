"""Real channel ends on 127.0.0.1: an SMTP server (aiosmtpd), a webhook receiver and a Web Push
service (plain HTTP servers), plus a notification store on a real SQLite file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from adapters.sql import sql_engine
from api import migrations
from notifications import NotificationStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Inbox(MessageHandler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[object] = []

    def handle_message(self, message: object) -> None:
        self.messages.append(message)


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


@dataclass
class Receiver:
    """An HTTP server recording every POST; the first ``fail_first`` answer 500 after
    ``delay_s``."""

    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    delay_s: float = 0.0
    status: int = 200
    seen: int = 0

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.posts) < n and time.monotonic() < deadline:
            time.sleep(0.01)


def _serve(receiver: Receiver) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.seen += 1
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            if receiver.seen <= receiver.fail_first:
                self.send_response(500)
            else:
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver("")
    server, _ = _serve(rec)
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def push_service() -> Iterator[Receiver]:
    rec = Receiver("", status=201)
    server, _ = _serve(rec)
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def store(db_url: str) -> Iterator[NotificationStore]:
    """The notification store on a fresh SQLite file and on a fresh PostgreSQL database."""
    engine = sql_engine(db_url)
    migrations.upgrade(engine)
    engine.dispose()
    store = NotificationStore.open(db_url)
    yield store
    store.engine.dispose()
