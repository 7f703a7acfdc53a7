"""Owner's device settings: charging mode, departure and target per wallbox; comfort band."""

from __future__ import annotations

from optimizer import ChargingMode
from tests.api.conftest import World


def test_owner_sets_wallbox_mode_and_departure_supporter_reads(world: World) -> None:
    client = world.api.client
    path = f"/v1/app/sites/{world.site_a}/wallboxes/ev"
    missing = f"/v1/app/sites/{world.site_a}/wallboxes/second_ev"
    assert client.get(missing, headers=world.headers("owner")).status_code == 404
    body = {"mode": "smart", "departure": "2026-03-30T06:30:00+02:00", "target_kwh": 40.0}
    saved = client.put(path, json=body, headers=world.headers("owner"))
    assert saved.status_code == 200, saved.text
    assert saved.json()["mode"] == ChargingMode.SMART
    assert saved.json()["departure"] == "2026-03-30T04:30:00Z"
    read = client.get(f"/v1/app/sites/{world.site_a}/wallboxes", headers=world.headers("supporter"))
    assert [(w["name"], w["target_kwh"]) for w in read.json()] == [("ev", 40.0)]
    denied = client.put(path, json=body, headers=world.headers("supporter"))
    assert denied.status_code == 403
    every_mode = [m.value for m in ChargingMode]
    for mode in every_mode:
        changed = client.put(path, json={"mode": mode}, headers=world.headers("owner"))
        assert changed.json()["mode"] == mode
    bad = client.put(path, json={"mode": "turbo"}, headers=world.headers("owner"))
    assert [f["field"] for f in bad.json()["error"]["fields"]] == ["body.mode"]
    naive = client.put(
        path,
        json={"mode": "smart", "departure": "2026-03-30T06:30:00"},
        headers=world.headers("owner"),
    )
    assert [f["field"] for f in naive.json()["error"]["fields"]] == ["body.departure"]


def test_heatpump_comfort_band_is_validated(world: World) -> None:
    client = world.api.client
    path = f"/v1/app/sites/{world.site_a}/heatpumps/hp"
    ok = client.put(
        path, json={"comfort_min_c": 20.5, "comfort_max_c": 22.0}, headers=world.headers("owner")
    )
    assert ok.status_code == 200
    inverted = client.put(
        path, json={"comfort_min_c": 23.0, "comfort_max_c": 21.0}, headers=world.headers("owner")
    )
    assert inverted.status_code == 422
    assert [f["field"] for f in inverted.json()["error"]["fields"]] == ["body.comfort_max_c"]
    listed = client.get(
        f"/v1/app/sites/{world.site_a}/heatpumps", headers=world.headers("factory_service")
    )
    assert [(h["name"], h["comfort_min_c"], h["comfort_max_c"]) for h in listed.json()] == [
        ("hp", 20.5, 22.0)
    ]
    export = client.get(
        f"/v1/app/sites/{world.site_a}/export", headers=world.headers("owner")
    ).json()
    assert export["device_preferences"][0]["preferences"]["comfort_max_c"] == 22.0
