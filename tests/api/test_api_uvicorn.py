"""Through a real server: ``hbopt serve`` under uvicorn on a free loopback port."""

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

from api.accounts_store import AccountStore
from api.security import password_hasher
from hbopt.cli import main as hbopt_main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = _free_port()
    database = tmp_path / "api.sqlite3"
    env = {
        **os.environ,
        "HBOPT_DATABASE_PATH": str(database),
        "HBOPT_JWT_SECRET": "uvicorn-test-secret-0123456789abcdef",
        "HBOPT_PASSWORD_TIME_COST": "1",
        "HBOPT_PASSWORD_MEMORY_COST_KIB": "64",
        "HBOPT_INPUT_JOBS": "false",  # bundled inputs: no fetches beyond 127.0.0.1
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hbopt", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded CI machine imports slowly
        while True:  # poll until the socket answers, not a fixed sleep
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode() if process.stdout else "")
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError("server did not come up in 120 s") from None
                time.sleep(0.05)
        yield base, database
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_sign_up_to_box_ack_over_http(server: tuple[str, Path]) -> None:
    base, database = server
    with httpx.Client(base_url=base, timeout=5.0) as client:
        assert client.get("/healthz").json()["database"] is True
        registered = client.post(
            "/v1/auth/register", json={"email": "ada@example.org", "password": "long enough pw"}
        )
        assert registered.status_code == 202
        # The default mailer logs the link; here the test confirms through the store instead.
        accounts = AccountStore(database)
        user = accounts.get_user_by_email("ada@example.org")
        assert user is not None
        accounts.confirm_user(user.id, user.created_at)
        accounts.register_starter_code(
            "HB-U-0001", password_hasher(1, 64).hash("PRINTED01"), user.created_at
        )
        accounts.close()

        tokens = client.post(
            "/v1/auth/token", json={"email": "ada@example.org", "password": "long enough pw"}
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        site = client.post("/v1/app/sites", json={"name": "Home"}, headers=headers).json()
        paired = client.post(
            f"/v1/app/sites/{site['id']}/boxes",
            json={"serial": "HB-U-0001", "starter_code": "PRINTED01"},
            headers=headers,
        )
        assert paired.status_code == 201
        box = {"Authorization": f"Bearer {paired.json()['token']}"}
        ack = client.post(
            "/v1/gateway/acks",
            json={
                "etag": '"1"',
                "applied_at": "2026-01-01T00:00:00Z",
                "setpoints": {"battery-power_kw": 1.0},
            },
            headers=box,
        )
        assert ack.status_code == 201
        metrics = client.get("/metrics").text
        assert 'route="/v1/gateway/acks",status="201"' in metrics
        foreign = client.get("/v1/app/sites/site_0000", headers=headers)
        assert foreign.status_code == 404
        assert foreign.json()["error"]["code"] == "not_found"


def test_serve_rejects_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert hbopt_main(["serve", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
