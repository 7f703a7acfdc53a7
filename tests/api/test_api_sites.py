"""Sites, grants, the factory-service switch, box pairing, export and account deletion."""

from __future__ import annotations

import json
import sqlite3

from tests.api.conftest import (
    PASSWORD,
    Api,
    World,
    bearer,
    register_and_confirm,
    register_box,
    sign_in,
)
from tests.pg_server import database_text


def test_owner_has_several_sites_and_sees_only_own(world: World) -> None:
    client = world.api.client
    second = client.post(
        "/v1/app/sites",
        json={"name": "Cabin", "timezone": "Europe/Vienna"},
        headers=world.headers("owner"),
    )
    assert second.status_code == 201
    listed = client.get("/v1/app/sites", headers=world.headers("owner")).json()
    assert {s["id"] for s in listed} == {world.site_a, second.json()["id"]}
    assert {s["your_role"] for s in listed} == {"owner"}
    assert world.site_b not in {s["id"] for s in listed}


def test_grant_gives_supporter_read_access_and_revoke_takes_it_away(world: World) -> None:
    client = world.api.client
    site = f"/v1/app/sites/{world.site_a}"
    seen = client.get(site, headers=world.headers("supporter"))
    assert seen.status_code == 200
    assert seen.json()["your_role"] == "supporter"
    listed = client.get("/v1/app/sites", headers=world.headers("supporter")).json()
    assert [s["id"] for s in listed] == [world.site_a]
    # Read, not manage.
    assert (
        client.patch(site, json={"name": "x"}, headers=world.headers("supporter")).status_code
        == 403
    )
    assert client.get(f"{site}/grants", headers=world.headers("supporter")).status_code == 403
    revoke = client.delete(
        f"{site}/grants/{world.user_ids['supporter']}", headers=world.headers("owner")
    )
    assert revoke.status_code == 204
    gone = client.get(site, headers=world.headers("supporter"))
    assert gone.status_code == 404
    assert set(gone.json()) == {"error"}
    assert client.get("/v1/app/sites", headers=world.headers("supporter")).json() == []


def test_grant_to_unknown_or_staff_user_is_404(world: World) -> None:
    client = world.api.client
    for target in ("usr_doesnotexist", world.user_ids["trader"]):
        response = client.put(
            f"/v1/app/sites/{world.site_a}/grants/{target}", headers=world.headers("owner")
        )
        assert response.status_code == 404


def test_factory_service_switch(world: World) -> None:
    client = world.api.client
    site = f"/v1/app/sites/{world.site_a}"
    assert client.get(site, headers=world.headers("factory_service")).json()["your_role"] == (
        "factory_service"
    )
    listed = client.get("/v1/app/sites", headers=world.headers("factory_service")).json()
    assert [s["id"] for s in listed] == [world.site_a]
    off = client.put(
        f"{site}/factory-service", json={"enabled": False}, headers=world.headers("owner")
    )
    assert off.json()["factory_service"] is False
    assert client.get(site, headers=world.headers("factory_service")).status_code == 404
    assert client.get("/v1/app/sites", headers=world.headers("factory_service")).json() == []


def test_box_pairing_is_single_use_and_revocation_is_immediate(world: World) -> None:
    api, client = world.api, world.api.client
    boxes = f"/v1/app/sites/{world.site_a}/boxes"
    register_box(api, "HB-C-0042", "LABELCODE42")
    wrong = client.post(
        boxes,
        json={"serial": "HB-C-0042", "starter_code": "WRONGCODE0"},
        headers=world.headers("owner"),
    )
    assert wrong.status_code == 409
    body = {"serial": "HB-C-0042", "starter_code": "LABELCODE42"}
    paired = client.post(boxes, json=body, headers=world.headers("owner"))
    assert paired.status_code == 201
    token = paired.json()["token"]
    assert token.startswith("hbb_")
    # The code is used up, also for another tenant.
    again = client.post(
        f"/v1/app/sites/{world.site_b}/boxes", json=body, headers=world.headers("stranger")
    )
    assert again.status_code == 409
    ack = {
        "etag": '"x"',
        "applied_at": "2026-03-29T00:30:00Z",
        "setpoints": {"battery-power_kw": 1.5},
    }
    assert client.post("/v1/gateway/acks", json=ack, headers=bearer(token)).status_code == 201
    box_id = paired.json()["box"]["id"]
    assert client.delete(f"{boxes}/{box_id}", headers=world.headers("owner")).status_code == 204
    assert client.post("/v1/gateway/acks", json=ack, headers=bearer(token)).status_code == 401
    listed = {b["id"]: b for b in client.get(boxes, headers=world.headers("owner")).json()}
    assert listed[box_id]["active"] is False
    # The token is kept only as a digest.
    dump = "\n".join(sqlite3.connect(api.services.settings.database_path).iterdump())
    assert token not in dump
    assert "LABELCODE42" not in dump


def test_acks_are_visible_to_site_viewers_only(world: World) -> None:
    client = world.api.client
    ack = {"etag": '"abc"', "applied_at": "2026-03-29T00:31:00Z", "setpoints": {"ev-power_kw": 7.4}}
    assert (
        client.post("/v1/gateway/acks", json=ack, headers=world.headers("box")).status_code == 201
    )
    for principal in ("owner", "supporter", "factory_service"):
        acks = client.get(f"/v1/app/sites/{world.site_a}/acks", headers=world.headers(principal))
        assert acks.json()[0]["setpoints"] == {"ev-power_kw": 7.4}
    other = client.get(f"/v1/app/sites/{world.site_b}/acks", headers=world.headers("stranger"))
    assert other.json() == []


def test_export_holds_the_sites_data_and_no_secrets(world: World) -> None:
    client = world.api.client
    client.post(
        "/v1/gateway/acks",
        json={
            "etag": '"e1"',
            "applied_at": "2026-03-29T00:31:00Z",
            "setpoints": {"battery-power_kw": 1.0},
        },
        headers=world.headers("box"),
    )
    client.patch(
        f"/v1/trading/sites/{world.site_a}/parameters",
        json={"mip_gap": 0.02},
        headers=world.headers("trader"),
    )
    response = client.get(f"/v1/app/sites/{world.site_a}/export", headers=world.headers("owner"))
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["site"]["id"] == world.site_a
    assert [g["supporter_id"] for g in document["grants"]] == [world.user_ids["supporter"]]
    assert [b["id"] for b in document["boxes"]] == [world.box_a]
    assert document["setpoint_acks"][0]["setpoints"] == {"battery-power_kw": 1.0}
    assert document["trading_parameters"]["mip_gap"] == 0.02
    assert document["parameter_audit"][0]["field"] == "mip_gap"
    text = json.dumps(document)
    assert world.tokens["box_a"] not in text
    assert world.site_b not in text
    assert "hash" not in text


def test_delete_account_removes_all_its_data(api_db: Api) -> None:
    api = api_db
    client = api.client
    user = register_and_confirm(api, "gone@example.org")
    headers = bearer(sign_in(api, "gone@example.org")["access_token"])
    site = client.post("/v1/app/sites", json={"name": "Home"}, headers=headers).json()
    register_box(api, "HB-D-0001", "LABELCODE01")
    box = client.post(
        f"/v1/app/sites/{site['id']}/boxes",
        json={"serial": "HB-D-0001", "starter_code": "LABELCODE01"},
        headers=headers,
    ).json()
    client.post(
        "/v1/gateway/acks",
        json={
            "etag": '"e"',
            "applied_at": "2026-03-29T00:31:00Z",
            "setpoints": {"battery-power_kw": 1.0},
        },
        headers=bearer(box["token"]),
    )
    keeper = register_and_confirm(api, "stays@example.org")
    assert client.delete("/v1/app/me", headers=headers).status_code == 204

    dump = database_text(api.services.accounts.engine)
    for trace in (user["id"], "gone@example.org", site["id"], box["box"]["id"]):
        assert trace not in dump, trace
    assert keeper["id"] in dump
    assert (
        client.post(
            "/v1/auth/token", json={"email": "gone@example.org", "password": PASSWORD}
        ).status_code
        == 401
    )
