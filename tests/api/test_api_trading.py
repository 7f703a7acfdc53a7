"""Trading parameters: inheritance group -> site, validation naming the field, audit trail."""

from __future__ import annotations

import dataclasses
import json

import pytest

from api.schemas import TradingParameters
from optimizer import Tuning
from tests.api.conftest import World


def _get(world: World, path: str, principal: str = "trader") -> dict:  # type: ignore[type-arg]
    response = world.api.client.get(path, headers=world.headers(principal))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_defaults_then_group_then_site(world: World) -> None:
    client = world.api.client
    site = f"/v1/trading/sites/{world.site_a}/parameters"
    start = _get(world, site)
    assert start["source"] == "default"
    assert start["parameters"] == TradingParameters().model_dump()

    group = client.patch(
        "/v1/trading/groups/default/parameters",
        json={"battery_wear_eur_per_kwh": 0.08},
        headers=world.headers("trader"),
    )
    assert group.status_code == 200
    inherited = _get(world, site)
    assert inherited["source"] == "group"
    assert inherited["parameters"]["battery_wear_eur_per_kwh"] == 0.08

    own = client.patch(
        site,
        json={"co2_price_eur_per_t": 85.0, "export_strategy": "self_consumption"},
        headers=world.headers("trader"),
    )
    assert own.status_code == 200
    body = own.json()
    assert body["source"] == "site"
    assert body["updated_by"] == world.user_ids["trader"]
    assert body["parameters"]["co2_price_eur_per_t"] == 85.0
    assert body["parameters"]["battery_wear_eur_per_kwh"] == 0.08  # kept from the group
    # Site B still follows the group.
    other = _get(world, f"/v1/trading/sites/{world.site_b}/parameters")
    assert other["source"] == "group"
    assert other["parameters"]["co2_price_eur_per_t"] == 0.0

    reset = client.delete(site, headers=world.headers("trader"))
    assert reset.json()["source"] == "group"
    assert reset.json()["parameters"]["co2_price_eur_per_t"] == 0.0


def test_audit_trail_records_who_changed_what_old_to_new(world: World) -> None:
    client = world.api.client
    site = f"/v1/trading/sites/{world.site_a}/parameters"
    client.patch(site, json={"mip_gap": 0.05}, headers=world.headers("trader"))
    world.api.clock.advance(minutes=5)
    client.patch(
        site, json={"mip_gap": 0.02, "time_limit_s": 10.0}, headers=world.headers("trader")
    )
    trail = _get(world, f"/v1/trading/audit?scope=site&key={world.site_a}", "analyst")
    # Newest first; the unchanged time limit is not recorded.
    assert [
        (e["field"], json.loads(e["old_value"]), json.loads(e["new_value"])) for e in trail
    ] == [
        ("mip_gap", 0.05, 0.02),
        ("mip_gap", Tuning().mip_gap, 0.05),
    ]
    assert {e["actor_id"] for e in trail} == {world.user_ids["trader"]}
    assert trail[0]["at"] > trail[1]["at"]


def test_fleet_group_move_is_audited_and_changes_inheritance(world: World) -> None:
    client = world.api.client
    client.patch(
        "/v1/trading/groups/pilot-2026/parameters",
        json={"terminal_value_eur_per_kwh": 0.2},
        headers=world.headers("trader"),
    )
    moved = client.put(
        f"/v1/trading/sites/{world.site_a}/fleet-group",
        json={"fleet_group": "pilot-2026"},
        headers=world.headers("trader"),
    )
    assert moved.status_code == 200
    params = _get(world, f"/v1/trading/sites/{world.site_a}/parameters")
    assert params["parameters"]["terminal_value_eur_per_kwh"] == 0.2
    assert "pilot-2026" in _get(world, "/v1/trading/groups")
    fleet = _get(world, "/v1/trading/sites?fleet_group=pilot-2026")
    assert fleet == [
        {"id": world.site_a, "fleet_group": "pilot-2026", "has_site_parameters": False}
    ]
    trail = _get(world, f"/v1/trading/audit?key={world.site_a}")
    assert trail[0]["field"] == "fleet_group"
    assert json.loads(trail[0]["new_value"]) == "pilot-2026"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("battery_wear_eur_per_kwh", -0.01),
        ("battery_wear_eur_per_kwh", 1.5),
        ("terminal_value_eur_per_kwh", 3.0),
        ("export_strategy", "sell_everything"),
        ("co2_price_eur_per_t", 1e6),
        ("mip_gap", 0.9),
        ("time_limit_s", 0),
        ("time_limit_s", "fast"),
        ("not_a_parameter", 1),
        ("mip_gap", None),
    ],
)
def test_invalid_parameters_are_422_naming_the_field(
    world: World, field: str, value: object
) -> None:
    site = f"/v1/trading/sites/{world.site_a}/parameters"
    response = world.api.client.patch(site, json={field: value}, headers=world.headers("trader"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["fields"]] == [f"body.{field}"]
    assert field in error["message"]
    # Nothing stored, nothing audited.
    assert _get(world, site)["source"] == "default"
    assert _get(world, "/v1/trading/audit") == []


def test_null_terminal_value_means_price_based(world: World) -> None:
    site = f"/v1/trading/sites/{world.site_a}/parameters"
    client, trader = world.api.client, world.headers("trader")
    set_value = client.patch(site, json={"terminal_value_eur_per_kwh": 0.15}, headers=trader)
    assert set_value.json()["parameters"]["terminal_value_eur_per_kwh"] == 0.15
    cleared = client.patch(site, json={"terminal_value_eur_per_kwh": None}, headers=trader)
    assert cleared.status_code == 200
    assert cleared.json()["parameters"]["terminal_value_eur_per_kwh"] is None


def test_parameters_map_onto_the_optimizer_tuning() -> None:
    """Every optimizer Tuning field is tunable here, under the same name and default."""
    tuning_fields = {f.name: f.default for f in dataclasses.fields(Tuning)}
    params = TradingParameters()
    assert set(tuning_fields) <= set(TradingParameters.model_fields)
    assert params.to_tuning() == Tuning()
    changed = TradingParameters(co2_price_eur_per_t=120.0, mip_gap=0.02).to_tuning()
    assert (changed.co2_price_eur_per_t, changed.mip_gap) == (120.0, 0.02)


def test_analyst_reads_but_cannot_tune(world: World) -> None:
    site = f"/v1/trading/sites/{world.site_a}/parameters"
    assert _get(world, site, "analyst")["source"] == "default"
    response = world.api.client.patch(site, json={"mip_gap": 0.1}, headers=world.headers("analyst"))
    assert response.status_code == 403


def test_trader_sees_no_personal_data(world: World) -> None:
    fleet = _get(world, "/v1/trading/sites")
    assert {s["id"] for s in fleet} == {world.site_a, world.site_b}
    assert all(set(s) == {"id", "fleet_group", "has_site_parameters"} for s in fleet)
    assert (
        world.api.client.get(
            f"/v1/app/sites/{world.site_a}", headers=world.headers("trader")
        ).status_code
        == 404
    )
