"""Notification routes: the feed and its unread count, settings with their 422s, push
subscriptions, and the monthly-report announcement reaching the owner's feed once."""

from __future__ import annotations

import base64
import os
import time
from datetime import timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.maintenance import run_maintenance
from notifications import EventKind
from tests.api.conftest import World


def _wait_feed(world: World, principal: str, n: int) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while True:
        body = world.api.client.get("/v1/app/me/notifications", headers=world.headers(principal))
        assert body.status_code == 200, body.text
        data: dict[str, object] = body.json()
        if len(data["items"]) >= n or time.monotonic() > deadline:  # type: ignore[arg-type]
            return data
        time.sleep(0.02)


def test_monthly_report_announcement_reaches_the_owner_feed_once(world: World) -> None:
    services = world.api.services
    clock = world.api.clock
    # the sites were made at the clock's start; on the 1st of the month after next, the
    # report of the month before is announced, by every hourly run of the first three days
    started = clock.now
    first = (clock.now.replace(day=1) + timedelta(days=62)).replace(day=1, hour=6)
    clock.now = first
    for _ in range(3):
        run_maintenance(services)
        clock.advance(hours=1)
    clock.now = started  # the test's access tokens were minted then
    assert services.notifier is not None
    services.notifier.drain()
    owner = _wait_feed(world, "owner", 1)
    items = owner["items"]
    month = (first - timedelta(days=1)).strftime("%Y-%m")
    assert [i["kind"] for i in items] == [EventKind.MONTHLY_REPORT_READY.value]  # site A only
    assert all(month in i["title"] for i in items)
    assert owner["unread"] == 1
    # the supporter of site A is not its owner: no message
    assert _wait_feed(world, "supporter", 0)["items"] == []
    # mark read
    marked = world.api.client.post(
        "/v1/app/me/notifications/read", json={}, headers=world.headers("owner")
    )
    assert marked.json() == {"updated": 1}
    assert _wait_feed(world, "owner", 1)["unread"] == 0
    missing = world.api.client.post(
        "/v1/app/me/notifications/read", json={"id": 999999}, headers=world.headers("owner")
    )
    assert missing.status_code == 404


def test_settings_round_trip_and_errors(world: World) -> None:
    client, headers = world.api.client, world.headers("owner")
    current = client.get("/v1/app/me/notification-settings", headers=headers).json()
    assert "email" in current["channels"]["ev_target_at_risk"]
    assert "email" not in current["channels"]["ev_charged"]
    # a kind to the webhook needs a URL
    bad = client.put(
        "/v1/app/me/notification-settings",
        json={"channels": {"ev_charged": ["webhook"]}},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "body.webhook"
    unknown = client.put(
        "/v1/app/me/notification-settings",
        json={"channels": {"ev_charged": ["pigeon"]}},
        headers=headers,
    )
    assert unknown.status_code == 422
    ok = client.put(
        "/v1/app/me/notification-settings",
        json={
            "channels": {"ev_charged": ["feed", "webhook"], "box_offline": []},
            "webhook": {"url": "https://ntfy.example.test/home", "format": "ntfy"},
            "offline_minutes": 45,
        },
        headers=headers,
    )
    assert ok.status_code == 200, ok.text
    again = client.get("/v1/app/me/notification-settings", headers=headers).json()
    assert again["channels"]["ev_charged"] == ["feed", "webhook"]
    assert again["channels"]["box_offline"] == []
    assert again["webhook"] == {"url": "https://ntfy.example.test/home", "format": "ntfy"}
    assert again["offline_minutes"] == 45
    # another customer still has the defaults
    other = client.get("/v1/app/me/notification-settings", headers=world.headers("supporter"))
    assert other.json()["channels"]["box_offline"] != []


def test_push_subscription_round_trip(world: World) -> None:
    client, headers = world.api.client, world.headers("owner")
    key = client.get("/v1/app/push/key", headers=headers).json()["application_server_key"]
    assert len(base64.urlsafe_b64decode(key + "==")) == 65  # an uncompressed P-256 point
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    sub = {
        "endpoint": "https://push.example.test/send/abc",
        "keys": {
            "p256dh": base64.urlsafe_b64encode(point).rstrip(b"=").decode(),
            "auth": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(),
        },
    }
    assert (
        client.post("/v1/app/me/push-subscriptions", json=sub, headers=headers).status_code == 204
    )
    store = world.api.services.notifications
    assert store is not None and len(store.subscriptions(world.user_ids["owner"])) == 1
    bad = client.post(
        "/v1/app/me/push-subscriptions",
        json={**sub, "keys": {"p256dh": "x", "auth": "y"}},
        headers=headers,
    )
    assert bad.status_code == 422
    gone = client.delete(
        "/v1/app/me/push-subscriptions",
        params={"endpoint": sub["endpoint"]},
        headers=headers,
    )
    assert gone.status_code == 204
    assert store.subscriptions(world.user_ids["owner"]) == []
