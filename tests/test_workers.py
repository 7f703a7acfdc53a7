"""``hbopt serve --workers 2`` for real: two uvicorn worker processes on one port, the control
loop once in the parent, rate limits in a real Redis, the databases in SQLite files.

Which worker answers is the kernel's choice: every request here goes on a new connection and
the workers name themselves (``X-Worker-Pid``), so the tests go on until both have answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from adapters.store import Plan, PlanSummary
from api.accounts_store import AccountStore
from api.security import new_token, password_hasher, token_digest
from api.settings import Settings
from hbopt.cli import main as hbopt_main
from hbopt.service import ControlSettings, loop_clock
from hbopt.workers import shared_environment
from scheduler.clock import LoopClock
from scheduler.plan_store import SqlPlanStore
from tests.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]
ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
SIGNIN_LIMIT = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fleet:
    """The running service and what the tests act with."""

    url: str
    tmp: Path
    site_id: str
    box_token: str
    email: str

    def request(self, method: str, path: str, *, source: str = "127.0.0.1", **kw: Any) -> Any:
        """One request on a new connection from ``source`` (a loopback address)."""
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=self.url, transport=transport, timeout=30) as client:
            return client.request(method, path, **kw)

    def on_each_worker(self, call: Callable[[], httpx.Response], workers: int = 2) -> dict:
        """``call`` on new connections until ``workers`` processes answered: pid -> response."""
        answers: dict[str, httpx.Response] = {}
        for _ in range(60):
            response = call()
            answers.setdefault(response.headers["x-worker-pid"], response)
            if len(answers) == workers:
                return answers
        raise AssertionError(f"only workers {sorted(answers)} answered 60 new connections")

    def store(self) -> SqlPlanStore:
        """The plan store as the control process opens it (its own connection)."""
        return SqlPlanStore.open(f"sqlite:///{self.tmp / 'api.sqlite3'}")

    def box(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.box_token}"}


def _populate(tmp: Path) -> tuple[str, str, str]:
    """An owner with a site and a paired pull box; returns (site id, box token, email)."""
    now = datetime.now(UTC)
    accounts = AccountStore(tmp / "api.sqlite3")
    email = "ada@example.org"
    hashed = password_hasher(1, 64).hash(PASSWORD)
    owner = accounts.create_user(email, hashed, "customer", now, confirmed=True)
    site = accounts.create_site(owner.id, "home", "Europe/Berlin", "default", now)
    accounts.register_starter_code("HB-W-1", "unused", now)
    token = new_token("hbb_")
    assert accounts.pair_box("HB-W-1", site.id, token_digest(token), now) is not None
    accounts.close()
    return site.id, token, email


@pytest.fixture(scope="module")
def fleet(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("workers")
    site_id, box_token, email = _populate(tmp)
    port = _free_port()
    env = {
        **os.environ,
        "HBOPT_MODE": "test",
        "HBOPT_DATABASE_PATH": str(tmp / "api.sqlite3"),
        "HBOPT_TELEMETRY_PATH": str(tmp / "telemetry.sqlite3"),
        "HBOPT_RATE_LIMIT_STORAGE": redis_server.url(1),
        "HBOPT_WORKER_HEADER": "true",
        "HBOPT_SIGNIN_IP_LIMIT": f"{SIGNIN_LIMIT}/minute",
        "HBOPT_PASSWORD_TIME_COST": "1",
        "HBOPT_PASSWORD_MEMORY_COST_KIB": "64",
        "HBOPT_LIVE_STREAM_INTERVAL_S": "0.2",
        "HBOPT_SCHEDULE_CACHE_S": "300",  # only the plan watch can make a worker see a new plan
        "HBOPT_PLAN_WATCH_S": "0.2",
        "HBOPT_INPUT_JOBS": "false",  # offline: bundled prices and weather
        "HBOPT_SOLVER_WORKERS": "1",
        "HBOPT_LOG_REQUESTS": "false",
    }
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hbopt", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # two workers import everything on a busy machine
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"service did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Fleet(url, tmp, site_id, box_token, email)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_sign_in_limit_per_address_is_counted_across_workers(fleet: Fleet) -> None:
    # wrong passwords for unknown accounts (no per-account back-off) from one address
    answers: list[tuple[int, str]] = []
    for i in range(40):
        body = {"email": f"guess{i}@example.org", "password": "wrong-password"}
        response = fleet.request("POST", "/v1/auth/token", source="127.0.0.3", json=body)
        answers.append((response.status_code, response.headers["x-worker-pid"]))
        refused_by = {pid for status, pid in answers if status == 429}
        if len(refused_by) == 2:
            break
    admitted = [pid for status, pid in answers if status == 401]
    # memory:// in each worker would admit up to 4 per worker
    assert len(admitted) == SIGNIN_LIMIT, answers
    assert all(status in (401, 429) for status, _ in answers)
    assert len({pid for status, pid in answers if status == 429}) == 2, answers
    assert answers[SIGNIN_LIMIT][0] == 429


def _sign_in(fleet: Fleet) -> str:
    body = {"email": fleet.email, "password": PASSWORD}
    response = fleet.request("POST", "/v1/auth/token", source="127.0.0.2", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_a_reading_posted_through_one_worker_reaches_a_stream_on_the_other(fleet: Fleet) -> None:
    token = _sign_in(fleet)  # signed by one worker, accepted by both (one shared key)
    path = f"/v1/app/sites/{fleet.site_id}/live/stream"
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        httpx.Client(base_url=fleet.url, transport=transport, timeout=30) as client,
        client.stream("GET", path, headers={"Authorization": f"Bearer {token}"}) as stream,
    ):
        assert stream.status_code == 200
        stream_pid = stream.headers["x-worker-pid"]
        power = -2.345
        ts = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        batch = {"samples": [{"ts": ts, "device": "battery", "fields": {"power_kw": power}}]}
        for _ in range(60):  # post through the other worker
            posted = fleet.request("POST", "/v1/gateway/telemetry", json=batch, headers=fleet.box())
            assert posted.status_code == 200, posted.text
            if posted.headers["x-worker-pid"] != stream_pid:
                break
        else:
            raise AssertionError("every telemetry post landed on the stream's worker")
        seen = _wait_for_battery_power(stream.iter_lines(), power, timeout_s=20)
        assert seen == pytest.approx(power)


def _wait_for_battery_power(lines: Iterator[str], power: float, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    for line in lines:
        if line.startswith("data: ") and '"devices"' in line:
            view = json.loads(line.removeprefix("data: "))
            for device in view["devices"]:
                if device["device"] == "battery" and device["fields"]["power_kw"] == power:
                    return float(device["fields"]["power_kw"])
        if time.monotonic() > deadline:
            break
    raise AssertionError("the stream never showed the posted reading")


def _plan(site_id: str, created: datetime, battery_kw: float) -> Plan:
    index = pd.date_range(pd.Timestamp(created).floor("15min"), periods=8, freq="15min")
    slots = pd.DataFrame({"battery-power_kw": np.full(8, battery_kw)}, index=index)
    return Plan(site_id, created, slots, PlanSummary(status="optimal", objective_eur=1.0))


def test_a_new_plan_reaches_a_pull_box_on_every_worker(fleet: Fleet) -> None:
    store = fleet.store()
    first = _plan(fleet.site_id, datetime.now(UTC) - timedelta(minutes=1), 1.5)
    store.save_plan(first)

    def poll() -> httpx.Response:
        return fleet.request("GET", "/v1/gateway/schedule", headers=fleet.box())  # type: ignore[no-any-return]

    # both workers have answered with the first plan: it is in both caches (for 300 s)
    time.sleep(0.5)
    for response in fleet.on_each_worker(poll).values():
        assert response.json()["setpoints"] == {"battery-power_kw": 1.5}
    # the control process stores a new plan; no worker is told
    store.save_plan(_plan(fleet.site_id, datetime.now(UTC), -2.0))
    store.close()
    time.sleep(1.0)  # the workers' plan watch runs every 0.2 s
    for response in fleet.on_each_worker(poll).values():
        assert response.json()["setpoints"] == {"battery-power_kw": -2.0}


def test_the_control_loop_runs_once_in_the_parent(fleet: Fleet) -> None:
    token = _sign_in(fleet)
    path = f"/v1/app/sites/{fleet.site_id}/status"
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60
    while True:  # published into the account database by the control loop, read by any worker
        status = fleet.request("GET", path, source="127.0.0.2", headers=headers).json()
        if status["state"] == "not_configured" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status["state"] == "not_configured", status
    assert "equipment" in status["state_text"] + str(status["last_error"])
    # its retention job logs once at start: one control loop, not one per worker
    assert (fleet.tmp / "serve.log").read_text().count("telemetry maintenance:") == 1


def _healthz_count(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if (
            line.startswith("hbopt_http_requests_total{")
            and 'route="/healthz",status="200"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_every_workers_requests(fleet: Fleet) -> None:
    before = _healthz_count(fleet.request("GET", "/metrics").text)
    sent = 0

    def healthz() -> httpx.Response:
        nonlocal sent
        sent += 1
        return fleet.request("GET", "/healthz")  # type: ignore[no-any-return]

    fleet.on_each_worker(healthz)  # both workers answered some of them
    for _ in range(4):
        healthz()
    # each worker answers /metrics with the sum over both
    answers = fleet.on_each_worker(lambda: fleet.request("GET", "/metrics"))
    for response in answers.values():
        assert _healthz_count(response.text) == before + sent


def test_several_workers_refuse_per_process_counters(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HBOPT_DATABASE_PATH", str(tmp_path / "api.sqlite3"))
    monkeypatch.setenv("HBOPT_TELEMETRY_PATH", str(tmp_path / "telemetry.sqlite3"))
    monkeypatch.setenv("HBOPT_MODE", "test")
    monkeypatch.delenv("HBOPT_RATE_LIMIT_STORAGE", raising=False)
    assert hbopt_main(["serve", "--workers", "2", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hbopt: --workers: 2 workers would each count rate limits")
    monkeypatch.setenv("HBOPT_RATE_LIMIT_STORAGE", f"redis://127.0.0.1:{_free_port()}")
    assert hbopt_main(["serve", "--workers", "2", "--port", str(_free_port())]) == 1
    assert "does not answer" in capsys.readouterr().err
    assert hbopt_main(["serve", "--workers", "0"]) == 2
    assert "--workers: 0" in capsys.readouterr().err


def test_workers_share_the_parents_token_key_and_clock() -> None:
    settings = Settings(mode="test")  # a random key, made in this process
    env = shared_environment(settings, ControlSettings(clock_speed=30.0))
    assert env["HBOPT_JWT_SECRET"] == settings.jwt_secret.get_secret_value()
    start = datetime.fromisoformat(env["HBOPT_CLOCK_START"])

    def clock(anchor: float | None) -> LoopClock:
        return loop_clock(ControlSettings(clock_speed=30.0, clock_start=start, clock_anchor=anchor))

    anchor = float(env["HBOPT_CLOCK_ANCHOR"])
    parent, parent_unanchored = clock(anchor), clock(None)
    time.sleep(0.3)  # a worker starts later
    worker, worker_unanchored = clock(anchor), clock(None)
    assert abs(worker.now() - parent.now()) < 0.5  # one simulated time
    # what the anchor prevents: clocks 0.3 s apart at x30 are 9 simulated seconds apart
    assert parent_unanchored.now() - worker_unanchored.now() > 5.0
    assert "HBOPT_CLOCK_START" not in shared_environment(settings, ControlSettings())
