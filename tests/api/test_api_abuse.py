"""Abuse through the API: oversized bodies, password guessing, stream floods, stale tokens,
reset-link floods, serial probing, a locked database, and what deletion leaves on disk."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pwdlib import PasswordHash

from adapters.store import Plan, PlanSummary
from api.accounts_store import request_log_table
from api.connections import AUTH_BODY_BYTES, uvicorn_config
from api.main import create_app
from core.errors import CliError
from tests.api.conftest import (
    PASSWORD,
    Api,
    World,
    bearer,
    make_settings,
    register_and_confirm,
    register_box,
    sign_in,
    start_api,
)
from tests.pg_server import database_files


class CountingHasher:
    """The app's hasher, counting calls and the most that ran at once."""

    def __init__(self, inner: PasswordHash, delay_s: float = 0.0) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.calls = self.running = self.most = 0
        self._lock = threading.Lock()

    def _run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.delay_s)
            return fn(*args)
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return str(self._run(self.inner.hash, password))

    def verify(self, password: str, stored: str) -> bool:
        return bool(self._run(self.inner.verify, password, stored))

    def verify_and_update(self, password: str, stored: str) -> Any:
        return self._run(self.inner.verify_and_update, password, stored)


def _counting(api: Api, delay_s: float = 0.0) -> CountingHasher:
    hasher = CountingHasher(api.services.hasher, delay_s)
    api.services.hasher = hasher  # type: ignore[assignment]
    return hasher


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Api]:
    """An app whose back-off starts after 3 wrong passwords and tops out at 1 s."""
    yield from start_api(
        tmp_path, signin_free_failures=3, signin_backoff_cap_s=1.0, signin_ip_limit="1000/minute"
    )


# -- bodies -------------------------------------------------------------------------------------
def test_an_oversized_auth_body_is_a_413_naming_the_limit(api: Api) -> None:
    response = api.client.post("/v1/auth/token", content=b"x" * (AUTH_BODY_BYTES + 1))
    assert response.status_code == 413
    assert str(AUTH_BODY_BYTES) in response.json()["error"]["message"]
    assert response.json()["error"]["fields"][0]["field"] == "body"


def test_a_chunked_body_over_the_limit_is_a_413(api: Api) -> None:
    chunks = (b"y" * 1024 for _ in range(100))  # no Content-Length: counted as it streams
    response = api.client.post("/v1/auth/register", content=chunks)
    assert response.status_code == 413
    assert str(AUTH_BODY_BYTES) in response.json()["error"]["message"]


def test_telemetry_batches_get_a_larger_limit_checked_before_the_token(world: World) -> None:
    now = pd.Timestamp(world.api.clock()).floor("min")
    samples = [
        {"ts": (now - pd.Timedelta(minutes=i)).isoformat(), "device": "pv",
         "fields": {"power_kw": 1.0}}
        for i in range(6000)
    ]  # fmt: skip
    body = json.dumps({"samples": samples})
    assert AUTH_BODY_BYTES < len(body) < 1_000_000
    ok = world.api.client.post(
        "/v1/gateway/telemetry",
        content=body,
        headers={**world.headers("box"), "Content-Type": "application/json"},
    )
    assert ok.status_code == 200, ok.text[:200]
    huge = world.api.client.post("/v1/gateway/telemetry", content=b"[" * 5_000_000)
    assert huge.status_code == 413  # not 401: the size is checked before anything else


# -- sign-in guessing ---------------------------------------------------------------------------
def test_sixty_wrong_passwords_leave_the_61st_guess_throttled_not_the_owner_locked(
    strict: Api,
) -> None:
    register_and_confirm(strict, "victim@example.org")
    hasher = _counting(strict)
    statuses = [
        strict.client.post(
            "/v1/auth/token", json={"email": "victim@example.org", "password": f"guess-{i}"}
        ).status_code
        for i in range(60)
    ]
    assert statuses[:3] == [401, 401, 401]
    assert set(statuses[3:]) == {429}
    assert hasher.calls == 3  # a throttled guess costs the server no argon2 work
    right = {"email": "victim@example.org", "password": PASSWORD}
    guess_61 = strict.client.post("/v1/auth/token", json=right)
    assert guess_61.status_code == 429  # even the right password waits its turn
    wait = int(guess_61.headers["Retry-After"])
    assert 1 <= wait <= 1
    time.sleep(wait + 0.1)
    assert strict.client.post("/v1/auth/token", json=right).status_code == 200


def test_unknown_emails_are_throttled_like_known_ones(strict: Api) -> None:
    body = {"email": "nobody@example.org", "password": "whatever123"}
    statuses = [strict.client.post("/v1/auth/token", json=body).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.fixture
def apis(tmp_path: Path) -> Iterator[Any]:
    """Start apps with settings of the test's choosing; each stops at the end of the test."""
    running: list[Iterator[Api]] = []

    def start(**overrides: Any) -> Api:
        running.append(start_api(tmp_path, **overrides))
        return next(running[-1])

    yield start
    for generator in running:
        next(generator, None)


def test_one_address_is_limited_across_accounts(apis: Any) -> None:
    api = apis(signin_ip_limit="5/minute")
    statuses = [
        api.client.post(
            "/v1/auth/token", json={"email": f"u{i}@example.org", "password": "x"}
        ).status_code
        for i in range(7)
    ]
    assert statuses == [401] * 5 + [429, 429]
    last = api.client.post("/v1/auth/token", json={"email": "z@example.org", "password": "x"})
    assert 1 <= int(last.headers["Retry-After"]) <= 60


def test_parallel_guessers_hash_two_at_a_time(apis: Any) -> None:
    api = apis(signin_ip_limit="1000/minute", password_hash_concurrency=2)
    hasher = _counting(api, delay_s=0.05)

    def guess(i: int) -> None:
        api.client.post("/v1/auth/token", json={"email": f"g{i}@example.org", "password": "x"})

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.calls == 12
    assert hasher.most == 2


# -- live streams -------------------------------------------------------------------------------
def test_live_streams_per_account_are_capped(world: World) -> None:
    services, user = world.api.services, world.user_ids["owner"]
    path = f"/v1/app/sites/{world.site_a}/live/stream"
    # a stream that ends returns its slot
    assert world.api.client.get(path, headers=world.headers("owner")).status_code == 200
    streams = services.throttles.streams
    assert streams.open_streams(user) == 0
    for _ in range(services.settings.live_streams_per_user):  # as if open on other workers
        streams.storage.incr(f"live-streams/{user}", streams.expiry_s)
    refused = world.api.client.get(path, headers=world.headers("owner"))
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    # another account is not affected
    assert world.api.client.get(path, headers=world.headers("supporter")).status_code == 200


# -- tokens -------------------------------------------------------------------------------------
def test_logout_voids_the_access_token_at_once(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    tokens = sign_in(api, "ada@example.org")
    headers = bearer(tokens["access_token"])
    assert api.client.get("/v1/app/me", headers=headers).status_code == 200
    out = api.client.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    assert api.client.get("/v1/app/me", headers=headers).status_code == 401
    fresh = sign_in(api, "ada@example.org")
    assert api.client.get("/v1/app/me", headers=bearer(fresh["access_token"])).status_code == 200


def _reset_links(api: Api) -> list[str]:
    return [m.link.split("token=")[1] for m in api.mailer.outbox if "reset" in m.link]


def test_password_reset_voids_access_tokens_and_older_links(api: Api) -> None:
    register_and_confirm(api, "bob@example.org")
    headers = bearer(sign_in(api, "bob@example.org")["access_token"])
    for _ in range(2):
        api.client.post("/v1/auth/password-reset", json={"email": "bob@example.org"})
    older, newer = _reset_links(api)
    new_password = "a new long password"
    stale = {"token": older, "new_password": new_password}
    assert api.client.post("/v1/auth/password-reset/confirm", json=stale).status_code == 400
    fresh = {"token": newer, "new_password": new_password}
    assert api.client.post("/v1/auth/password-reset/confirm", json=fresh).status_code == 204
    assert api.client.get("/v1/app/me", headers=headers).status_code == 401


def test_thirty_reset_requests_send_three_mails(api: Api) -> None:
    register_and_confirm(api, "carl@example.org")
    for _ in range(30):
        answer = api.client.post("/v1/auth/password-reset", json={"email": "carl@example.org"})
        assert answer.status_code == 202
    assert len(_reset_links(api)) == 3


def test_used_link_voids_the_older_ones_still_unused(api: Api) -> None:
    register_and_confirm(api, "dora@example.org")
    accounts, user = (
        api.services.accounts,
        api.services.accounts.get_user_by_email("dora@example.org"),
    )
    assert user is not None
    later = api.clock() + pd.Timedelta(hours=1)
    accounts.add_email_token("a" * 64, user.id, "reset", later)
    # a second token written straight to the table (as an older version could have left it)
    with sqlite3.connect(accounts.path) as conn:
        conn.execute(
            "INSERT INTO email_tokens VALUES (?, ?, 'reset', ?, NULL)",
            ("b" * 64, user.id, later.isoformat()),
        )
    assert accounts.consume_email_token("a" * 64, "reset", api.clock()) == user.id
    assert accounts.consume_email_token("b" * 64, "reset", api.clock()) is None


# -- pairing ------------------------------------------------------------------------------------
def test_pairing_hashes_once_whatever_the_serial(world: World) -> None:
    register_box(world.api, "HB-FREE-0001", "RIGHTCODE1")
    hasher = _counting(world.api)
    path = f"/v1/app/sites/{world.site_a}/boxes"
    for serial in ("HB-FREE-0001", "HB-NONE-0001", "HB-A-0001"):  # unused, unknown, used
        before = hasher.calls
        response = world.api.client.post(
            path,
            json={"serial": serial, "starter_code": "WRONGCODE1"},
            headers=world.headers("owner"),
        )
        assert response.status_code == 409
        assert hasher.calls - before == 1, serial


# -- database -----------------------------------------------------------------------------------
def test_a_locked_account_database_is_a_quick_503(world: World) -> None:
    other = sqlite3.connect(world.api.services.accounts.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an outside process holds the write lock
    try:
        started = time.monotonic()
        response = world.api.client.post(
            "/v1/app/sites", json={"name": "blocked"}, headers=world.headers("owner")
        )
        took = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert took < 2.0
        # reads go on (WAL)
        assert world.api.client.get("/v1/app/me", headers=world.headers("owner")).status_code == 200
    finally:
        other.execute("ROLLBACK")
        other.close()
    ok = world.api.client.post(
        "/v1/app/sites", json={"name": "free"}, headers=world.headers("owner")
    )
    assert ok.status_code == 201


# -- signing key --------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["", "x", "short-key-0123456789"])
def test_production_refuses_a_weak_signing_key(tmp_path: Path, key: str) -> None:
    with pytest.raises(CliError, match=r"HBOPT_JWT_SECRET.*secrets\.token_urlsafe"):
        create_app(make_settings(tmp_path, mode="production", jwt_secret=key))


def test_demo_and_test_mode_make_a_random_key(tmp_path: Path) -> None:
    one = make_settings(tmp_path, mode="demo", jwt_secret="")
    two = make_settings(tmp_path, mode="demo", jwt_secret="")
    assert len(one.jwt_secret.get_secret_value()) >= 32
    assert one.jwt_secret.get_secret_value() != two.jwt_secret.get_secret_value()


def test_keep_alive_outlasts_the_poll_interval(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mode="production")
    config = uvicorn_config(object(), settings, "127.0.0.1", 8000, "warning")
    assert config.timeout_keep_alive >= 3 * 10  # boxes poll every 10 s (5 s at the fastest)


# -- deletion and export ------------------------------------------------------------------------
EMAIL = "erase.me.please@example.org"
SITE_NAME = "Villa Kunterbunt Erasable"
BOX_HOST = "box-erasable.home.example.net"  # the box's address can place the home


def _owner_with_data(api: Api) -> tuple[dict[str, str], str, str, str]:
    user = register_and_confirm(api, EMAIL)
    headers = bearer(sign_in(api, EMAIL)["access_token"])
    site = api.client.post("/v1/app/sites", json={"name": SITE_NAME}, headers=headers).json()["id"]
    register_box(api, "HB-ERASE-01", "ERASECODE1")
    paired = api.client.post(
        f"/v1/app/sites/{site}/boxes",
        json={"serial": "HB-ERASE-01", "starter_code": "ERASECODE1"},
        headers=headers,
    ).json()
    box = bearer(paired["token"])
    now = pd.Timestamp(api.clock()).floor("min")
    samples = [
        {"ts": (now - pd.Timedelta(minutes=i)).isoformat(), "device": "battery",
         "fields": {"power_kw": 1.0, "soc": 0.5}}
        for i in range(300)
    ]  # fmt: skip
    api.client.post("/v1/gateway/telemetry", json={"samples": samples}, headers=box)
    ack = {"etag": '"x"', "applied_at": now.isoformat(), "setpoints": {"battery-power_kw": 1.0}}
    api.client.post("/v1/gateway/acks", json=ack, headers=box)
    slots = pd.DataFrame(
        {"battery-power_kw": [1.0, 2.0]}, index=pd.date_range(now, periods=2, freq="15min")
    )
    summary = PlanSummary(status="optimal", objective_eur=1.0)
    api.services.plans.save_plan(Plan(site, now.to_pydatetime(), slots, summary))
    api.services.accounts.set_box_link("HB-ERASE-01", BOX_HOST, 502, 1, now.to_pydatetime())
    return headers, str(user["id"]), site, paired["box"]["id"]


def test_export_of_the_account_covers_the_person(api: Api) -> None:
    headers, *_ = _owner_with_data(api)
    document = api.client.get("/v1/app/me/export", headers=headers).json()
    assert document["account"][0]["email"] == EMAIL
    assert document["sessions"] and document["email_links"]
    assert any(r["path"] == "/v1/auth/token" and r["ip"] for r in document["request_log"])
    (owned,) = document["sites_owned"]
    assert owned["site"]["name"] == SITE_NAME
    assert len(owned["telemetry"]["raw"]) == 300
    assert len(owned["telemetry"]["plans"]) == 1 and len(owned["telemetry"]["plan_slots"]) == 2
    assert [r["applied"] for r in owned["telemetry"]["setpoints"]] == [1.0]
    assert "password_hash" not in json.dumps(document)


def test_deletion_leaves_nothing_readable_in_the_database_files(
    api_db: Api, db_url: str, request: pytest.FixtureRequest
) -> None:
    api = api_db
    register_and_confirm(api, "kept.account@example.org")
    headers, user_id, site, box_id = _owner_with_data(api)
    api.services.request_log.flush()
    settings = api.services.settings
    # data of a real account has long been checkpointed from the WAL into the main file
    for path in (settings.telemetry_path, *_sqlite_file(db_url)):
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert api.client.delete("/v1/app/me", headers=headers).status_code == 204
    api.services.request_log.flush()
    log = request_log_table
    with api.services.accounts.engine.connect() as conn:
        signins = conn.execute(
            sa.select(sa.func.count()).where(log.c.path == "/v1/auth/token")
        ).scalar_one()
    assert signins == 0  # the sign-in rows with their IP addresses went too
    files = database_files(db_url, request) + [
        Path(f"{settings.telemetry_path}{suffix}") for suffix in ("", "-wal", "-shm")
    ]
    raw = b"".join(path.read_bytes() for path in files if path.exists())
    assert len(raw) > 0
    assert b"kept.account@example.org" in raw  # the files read are the ones rows live in
    for secret in (EMAIL, user_id, site, box_id, SITE_NAME, BOX_HOST):
        assert secret.encode() not in raw, secret


def _sqlite_file(db_url: str) -> list[str]:
    return [sa.make_url(db_url).database or ""] if db_url.startswith("sqlite") else []


def test_a_wrong_then_right_password_leaves_no_stale_throttle(strict: Api) -> None:
    register_and_confirm(strict, "erin@example.org")
    wrong = {"email": "erin@example.org", "password": "not the password"}
    right = {"email": "erin@example.org", "password": PASSWORD}
    assert strict.client.post("/v1/auth/token", json=wrong).status_code == 401
    for _ in range(3):  # later sessions of the owner sign in at once, every time
        assert strict.client.post("/v1/auth/token", json=right).status_code == 200
