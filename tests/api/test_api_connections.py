"""Connection abuse against ``hbopt serve`` on loopback: trickled heads and bodies, huge bodies
without a token, and a missing signing key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_api_uvicorn import _free_port

HEAD_TIMEOUT_S, BODY_TIMEOUT_S = 1.0, 1.0


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("strict")
    port = _free_port()
    env = {
        **os.environ,
        "HBOPT_DATABASE_PATH": str(tmp / "api.sqlite3"),
        "HBOPT_TELEMETRY_PATH": str(tmp / "telemetry.sqlite3"),
        "HBOPT_JWT_SECRET": "connection-test-secret-0123456789abcdef",
        "HBOPT_PASSWORD_TIME_COST": "1",
        "HBOPT_PASSWORD_MEMORY_COST_KIB": "64",
        "HBOPT_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S),
        "HBOPT_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hbopt", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120.0  # the imports alone take seconds on a busy machine
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError("server did not come up")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5.0)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if it is still open after ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return received


def test_trickled_request_heads_are_cut_off(strict_server: str) -> None:
    socks = [_connect(strict_server) for _ in range(50)]
    for sock in socks:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    time.sleep(HEAD_TIMEOUT_S / 2)
    for sock in socks:
        sock.sendall(b"X-Slow: 1\r\n")
    results = [_closed_within(sock, HEAD_TIMEOUT_S + 2.0) for sock in socks]
    assert all(result is not None for result in results)
    # the server still answers everyone else at once
    assert httpx.get(f"{strict_server}/healthz", timeout=2.0).status_code == 200


def test_a_silent_connection_is_closed(strict_server: str) -> None:
    sock = _connect(strict_server)
    assert _closed_within(sock, HEAD_TIMEOUT_S + 2.0) == b""


def _answer(sock: socket.socket, seconds: float) -> bytes:
    """The first complete answer (head and Content-Length body) within ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096) or b"\r\n\r\n"
        head, _, body = received.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
             if line.startswith(b"content-length:")),
            0,
        )  # fmt: skip
        while len(body) < length:
            body += sock.recv(4096)
        return head + b"\r\n\r\n" + body
    except TimeoutError:
        return received


def test_a_trickled_body_gets_a_408(strict_server: str) -> None:
    sock = _connect(strict_server)
    started = time.monotonic()
    sock.sendall(
        b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n{"
    )
    answer = _answer(sock, BODY_TIMEOUT_S + 3.0)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < BODY_TIMEOUT_S + 1.0
    sock.close()


def test_a_huge_body_without_a_token_is_refused_before_it_is_read(strict_server: str) -> None:
    sock = _connect(strict_server)
    started = time.monotonic()
    sock.sendall(
        b"POST /v1/gateway/telemetry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 108000000\r\n\r\n" + b"[" * 65536
    )
    answer = _answer(sock, 5.0)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"4194304 bytes" in answer  # the limit is in the body
    assert time.monotonic() - started < 1.0
    sock.close()


def test_a_chunked_body_is_refused_once_past_the_limit(strict_server: str) -> None:
    sock = _connect(strict_server)
    sock.sendall(
        b"POST /v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    for _ in range(8):  # 8 KiB of a body that never ends: the answer does not wait for it
        sock.sendall(b"400\r\n" + b"z" * 1024 + b"\r\n")
    answer = _answer(sock, 5.0)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"4096 bytes" in answer
    sock.close()


def test_no_signing_key_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HBOPT_")}
    env["HBOPT_DATABASE_PATH"] = str(tmp_path / "api.sqlite3")
    result = subprocess.run(
        [sys.executable, "-m", "hbopt", "serve", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hbopt: HBOPT_JWT_SECRET is unset")
    assert "secrets.token_urlsafe(32)" in lines[0]
