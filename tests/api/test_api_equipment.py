"""Site equipment: round trip, 422s naming the field, who may read and write it."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import World

EQUIPMENT: dict[str, Any] = {
    "latitude": 52.5,
    "longitude": 13.4,
    "pv": {"peak_kw": 9.9, "tilt_deg": 30.0, "azimuth_deg": 200.0},
    "battery": {
        "capacity_kwh": 12.0,
        "charge_kw": 6.0,
        "discharge_kw": 6.0,
        "charge_efficiency": 0.96,
        "discharge_efficiency": 0.96,
        "soc_min": 0.1,
        "soc_max": 0.95,
        "reserve_soc": 0.2,
    },
    "wallboxes": [
        {"name": "ev", "max_current_a": 16, "phases": 3, "switch_phases": True},
        {"name": "ev_garage", "max_current_a": 32, "phases": 1},
    ],
    "heat_pumps": [{"name": "hp", "max_kw": 2.5, "comfort_min_c": 20.5, "comfort_max_c": 22.0}],
    "grid": {
        "import_limit_kw": 25.0,
        "export_limit_kw": 10.0,
        "feed_in_cap_kw": 5.94,
        "negative_price_rule": "no_payment_at_negative_spot",
    },
    "annual_consumption_kwh": 4100.0,
}


def url(world: World) -> str:
    return f"/v1/app/sites/{world.site_a}/equipment"


def test_default_until_set_then_round_trip(world: World) -> None:
    client = world.api.client
    before = client.get(url(world), headers=world.headers("owner")).json()
    assert before["source"] == "default" and before["updated_by"] is None
    assert before["equipment"]["battery"]["capacity_kwh"] == 10.0

    put = client.put(url(world), json=EQUIPMENT, headers=world.headers("owner"))
    assert put.status_code == 200, put.text
    for viewer in ("owner", "supporter", "factory_service"):
        got = client.get(url(world), headers=world.headers(viewer))
        assert got.status_code == 200, (viewer, got.text)
        body = got.json()
        assert body["source"] == "site"
        assert body["updated_by"] == world.user_ids["owner"]
        equipment = body["equipment"]
        for section in ("pv", "battery", "grid"):
            for key, value in EQUIPMENT[section].items():
                assert equipment[section][key] == value, (section, key)
        assert [w["name"] for w in equipment["wallboxes"]] == ["ev", "ev_garage"]
        assert equipment["wallboxes"][1]["phases"] == 1
        assert equipment["heat_pumps"][0]["max_kw"] == 2.5
        assert equipment["annual_consumption_kwh"] == 4100.0
    export = client.get(f"/v1/app/sites/{world.site_a}/export", headers=world.headers("owner"))
    assert export.json()["equipment"]["equipment"]["pv"]["peak_kw"] == 9.9


def _field_error(world: World, document: dict[str, Any]) -> str:
    response = world.api.client.put(url(world), json=document, headers=world.headers("owner"))
    assert response.status_code == 422, response.text
    fields = [f["field"] for f in response.json()["error"]["fields"]]
    assert len(fields) >= 1
    return fields[0]


def test_invalid_equipment_is_a_422_naming_the_field_and_stores_nothing(world: World) -> None:
    # pydantic ranges
    assert _field_error(world, {"battery": {"capacity_kwh": -1}}) == "body.battery.capacity_kwh"
    assert _field_error(world, {"pv": {"azimuth_deg": 400}}) == "body.pv.azimuth_deg"
    assert _field_error(world, {"wallboxes": [{"phases": 2}]}) == "body.wallboxes.0.phases"
    assert _field_error(world, {"grid": {"negative_price_rule": "x"}}) == (
        "body.grid.negative_price_rule"
    )
    assert _field_error(world, {"battery": {"volts": 400}}) == "body.battery.volts"
    # the optimizer's own cross-field rules
    assert _field_error(world, {"battery": {"soc_min": 0.9, "soc_max": 0.5}}) == (
        "body.battery.soc_min"
    )
    assert (
        _field_error(world, {"heat_pumps": [{"comfort_min_c": 24, "comfort_max_c": 20}]})
        == "body.heat_pumps.0.comfort_min_c"
    )
    assert _field_error(world, {"wallboxes": [{"name": "hp"}, {}], "heat_pumps": [{}]}) in {
        "body.heat_pumps.0.name",
        "body.wallboxes.1.name",
    }
    got = world.api.client.get(url(world), headers=world.headers("owner")).json()
    assert got["source"] == "default"


def test_only_the_owner_writes(world: World) -> None:
    for principal in ("supporter", "factory_service"):
        response = world.api.client.put(
            url(world), json=EQUIPMENT, headers=world.headers(principal)
        )
        assert response.status_code == 403, response.text
    foreign = f"/v1/app/sites/{world.site_b}/equipment"
    response = world.api.client.put(foreign, json=EQUIPMENT, headers=world.headers("owner"))
    assert response.status_code == 404


def test_equipment_goes_with_the_site(world: World) -> None:
    client = world.api.client
    assert client.put(url(world), json=EQUIPMENT, headers=world.headers("owner")).status_code == 200
    deleted = client.delete(f"/v1/app/sites/{world.site_a}", headers=world.headers("owner"))
    assert deleted.status_code == 204
    assert world.api.services.accounts.get_equipment(world.site_a) is None
