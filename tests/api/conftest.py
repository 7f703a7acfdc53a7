"""Fixtures for the API tests: a movable clock, apps on SQLite files in tmp_path, a populated
world with every role (owner, stranger, supporter, factory service, trader, analyst, box)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.deps import Services
from api.mailer import OutboxMailer
from api.main import create_app
from api.security import encode_access_token
from api.settings import Settings
from notifications.vapid import new_vapid_key

JWT_SECRET = "test-secret-not-for-production-0123456789"
START = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # a DST-change day in Europe/Berlin
PASSWORD = "correct horse battery"


@dataclass
class FakeClock:
    """An injected clock tests move by hand."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


VAPID_KEY = new_vapid_key()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_path": tmp_path / "api.sqlite3",
        "telemetry_path": tmp_path / "telemetry.sqlite3",
        "mode": "test",
        "jwt_secret": JWT_SECRET,
        # Cheap argon2 so tests do not spend seconds hashing; production keeps the defaults.
        "password_time_cost": 1,
        "password_memory_cost_kib": 64,
        # One event per live stream, so a test client reading it to the end returns.
        "live_stream_max_s": 0.0,
        # No background price/weather fetches: tests that want them start them.
        "input_jobs": False,
        # Web Push configured, so its routes answer like every other (push itself is tested
        # against a push service on 127.0.0.1 in tests/notifications).
        "vapid_private_key": VAPID_KEY,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A running app (lifespan entered) with its client, clock, outbox and services."""

    app: FastAPI
    client: TestClient
    clock: FakeClock
    mailer: OutboxMailer

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services


def start_api(tmp_path: Path, clock: FakeClock | None = None, **overrides: Any) -> Iterator[Api]:
    clock = clock or FakeClock()
    mailer = OutboxMailer()
    app = create_app(make_settings(tmp_path, **overrides), mailer=mailer, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app, client, clock, mailer)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(tmp_path: Path, clock: FakeClock) -> Iterator[Api]:
    yield from start_api(tmp_path, clock)


@pytest.fixture
def api_db(tmp_path: Path, clock: FakeClock, db_url: str) -> Iterator[Api]:
    """An app whose service database is ``db_url``: a SQLite file, then PostgreSQL."""
    yield from start_api(tmp_path, clock, database_url=db_url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_and_confirm(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Register through the API, follow the mailed link; return the confirmed user."""
    response = api.client.post("/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 202, response.text
    token = api.mailer.outbox[-1].link.split("token=")[1]
    response = api.client.post("/v1/auth/confirm", json={"token": token})
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()
    return user


def sign_in(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = api.client.post("/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def register_box(api: Api, serial: str, code: str) -> None:
    """What the factory does: store the hash of the starter code printed on the box."""
    services = api.services
    services.accounts.register_starter_code(serial, services.hasher.hash(code), api.clock())


@dataclass
class World:
    """Two tenants and one principal of every role.

    Site A belongs to ``owner``, has ``supporter`` granted, the factory-service switch on, box A
    paired and wallbox ``ev`` set up. Site B belongs to ``stranger`` with ``supporter_b``
    granted and box B paired.
    """

    api: Api
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    site_a: str = ""
    site_b: str = ""
    box_a: str = ""
    box_b: str = ""

    def headers(self, principal: str) -> dict[str, str]:
        return {} if principal == "anonymous" else bearer(self.tokens[principal])


def _mint(api: Api, user_id: str, role: str) -> str:
    token, _ = encode_access_token(user_id, role, api.clock(), timedelta(hours=1), JWT_SECRET)
    return token


def build_world(api: Api) -> World:
    world = World(api)
    accounts, hasher, now = api.services.accounts, api.services.hasher, api.clock()
    roles = {
        "owner": "customer",
        "stranger": "customer",
        "supporter": "customer",
        "supporter_b": "customer",
        "factory_service": "factory_service",
        "trader": "trader",
        "analyst": "analyst",
    }
    for name, role in roles.items():
        user = accounts.create_user(
            f"{name}@example.org", hasher.hash(PASSWORD), role, now, confirmed=True
        )  # type: ignore[arg-type]
        world.user_ids[name] = user.id
        world.tokens[name] = _mint(api, user.id, role)
    client = api.client
    for owner, attr, supporter, serial in (
        ("owner", "site_a", "supporter", "HB-A-0001"),
        ("stranger", "site_b", "supporter_b", "HB-B-0001"),
    ):
        site = client.post("/v1/app/sites", json={"name": attr}, headers=world.headers(owner))
        site_id = site.json()["id"]
        setattr(world, attr, site_id)
        grant = client.put(
            f"/v1/app/sites/{site_id}/grants/{world.user_ids[supporter]}",
            headers=world.headers(owner),
        )
        assert grant.status_code == 200, grant.text
        register_box(api, serial, "STARTCODE" + serial[-4:])
        paired = client.post(
            f"/v1/app/sites/{site_id}/boxes",
            json={"serial": serial, "starter_code": "STARTCODE" + serial[-4:]},
            headers=world.headers(owner),
        )
        assert paired.status_code == 201, paired.text
        prefs = client.put(
            f"/v1/app/sites/{site_id}/wallboxes/ev",
            json={"mode": "smart"},
            headers=world.headers(owner),
        )
        assert prefs.status_code == 200, prefs.text
        box_attr = "box_a" if attr == "site_a" else "box_b"
        setattr(world, box_attr, paired.json()["box"]["id"])
        world.tokens[box_attr] = paired.json()["token"]
    world.tokens["box"] = world.tokens["box_a"]
    switch = client.put(
        f"/v1/app/sites/{world.site_a}/factory-service",
        json={"enabled": True},
        headers=world.headers("owner"),
    )
    assert switch.status_code == 200
    return world


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api)
