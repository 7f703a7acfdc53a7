"""Fleet flexibility over stored plans (hand-computed sums) and fresh solves; plan reasons."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from adapters.store import Plan, PlanSummary
from tests.api.conftest import START, World

BATTERY_A = {
    "capacity_kwh": 10.0,
    "charge_kw": 5.0,
    "discharge_kw": 5.0,
    "soc_min": 0.1,
    "soc_max": 0.9,
    "charge_efficiency": 1.0,
    "discharge_efficiency": 1.0,
}
BATTERY_B = {
    "capacity_kwh": 5.0,
    "charge_kw": 3.0,
    "discharge_kw": 2.5,
    "soc_min": 0.0,
    "soc_max": 1.0,
    "charge_efficiency": 0.9,
    "discharge_efficiency": 0.9,
}


def _equip(world: World, site: str, owner: str, battery: dict[str, float]) -> None:
    response = world.api.client.put(
        f"/v1/app/sites/{site}/equipment",
        json={"battery": battery, "wallboxes": [], "heat_pumps": []},
        headers=world.headers(owner),
    )
    assert response.status_code == 200, response.text


def _store_plan(world: World, site: str, columns: dict[str, list[float]]) -> None:
    n = len(next(iter(columns.values())))
    index = pd.date_range(START, periods=n, freq="15min")  # START is 00:30 UTC, a slot start
    plan = Plan(
        site_id=site,
        created_at=START - timedelta(minutes=5),
        slots=pd.DataFrame(columns, index=index),
        summary=PlanSummary(status="optimal", objective_eur=0.0),
    )
    world.api.services.plans.save_plan(plan)


def _flex(world: World, group: str = "default", **query: Any) -> dict[str, Any]:
    response = world.api.client.get(
        f"/v1/trading/groups/{group}/flexibility",
        params=query,
        headers=world.headers("trader"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_sums_over_two_sites_equal_hand_computed_values(world: World) -> None:
    _equip(world, world.site_a, "owner", BATTERY_A)
    _equip(world, world.site_b, "stranger", BATTERY_B)
    _store_plan(
        world,
        world.site_a,
        {
            "battery-charge_kw": [2.0, 0.0, 0.0, 0.0],
            "battery-discharge_kw": [0.0, 4.0, 0.0, 5.0],
            "battery-soc": [0.55, 0.45, 0.45, 0.1],
        },
    )
    # Site B's plan gives only net power (+ = discharge) and covers two slots.
    _store_plan(world, world.site_b, {"battery-power_kw": [0.0, -1.0], "battery-soc": [0.98, 1.0]})
    world.api.clock.advance(minutes=3)  # inside the first slot

    body = _flex(world, hours=1)
    assert {s["site_id"]: s["source"] for s in body["sites"]} == {
        world.site_a: "plan",
        world.site_b: "plan",
    }
    assert body["skipped"] == []
    slots = body["slots"]
    assert [s["sites"] for s in slots] == [2, 2, 1, 1]
    # Site A (lossless): E 5.0/5.5/4.5/2.25, up 7/1/5/0, down 3/9/5/10 (see test_flexibility).
    # Site B (90 % each way): E 4.9/4.775, up 2.5/3.5, down 0.444/0.
    assert [s["energy_kwh"] for s in slots] == pytest.approx([9.9, 10.275, 4.5, 2.25])
    assert [s["up_kw"] for s in slots] == pytest.approx([9.5, 4.5, 5.0, 0.0])
    assert [s["down_kw"] for s in slots] == pytest.approx([3.0 + 0.1 / 0.225, 9.0, 5.0, 10.0])
    assert slots[0]["start"].startswith("2026-03-29T00:30")


def test_site_without_plan_is_solved_or_skipped(world: World) -> None:
    accounts = world.api.services.accounts
    accounts.assign_fleet_group(world.site_a, "solo", world.user_ids["trader"], START)
    body = _flex(world, "solo", hours=2, start="2024-06-12T22:00Z")
    assert body["sites"] == [
        {"site_id": world.site_a, "source": "solve", "price_estimate_slots": 0}
    ]
    battery = {"capacity_kwh": 10.0, "charge_kw": 5.0, "discharge_kw": 5.0}  # the default home
    for slot in body["slots"]:
        assert slot["sites"] == 1
        assert 0.05 * battery["capacity_kwh"] - 1e-6 <= slot["energy_kwh"] <= 10.0 + 1e-6
        assert 0.0 <= slot["up_kw"] <= battery["discharge_kw"] + battery["charge_kw"] + 1e-6
        assert 0.0 <= slot["down_kw"] <= battery["discharge_kw"] + battery["charge_kw"] + 1e-6
    # Now (2026) is past the bundled prices and nothing was fetched: the site is still
    # solved, on flagged estimated prices in every slot of the 24 h.
    body = _flex(world, "solo")
    assert body["skipped"] == []
    assert body["sites"] == [
        {"site_id": world.site_a, "source": "solve", "price_estimate_slots": 96}
    ]
    assert all(s["sites"] == 1 and s["energy_kwh"] >= 0.5 - 1e-6 for s in body["slots"])
    assert world.api.services.plans.latest_plan(world.site_a) is None  # nothing stored


def test_unknown_group_and_bad_query(world: World) -> None:
    client = world.api.client
    missing = client.get("/v1/trading/groups/nobody/flexibility", headers=world.headers("trader"))
    assert missing.status_code == 404
    bad = client.get(
        "/v1/trading/groups/default/flexibility?hours=0", headers=world.headers("trader")
    )
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "query.hours"
    owner = client.get("/v1/trading/groups/default/flexibility", headers=world.headers("owner"))
    assert owner.status_code == 403


def test_plan_view_explains_each_devices_next_action(world: World) -> None:
    # Slots from 00:30 UTC (01:30 in Berlin, CET until 01:00 UTC): cheap now, dear later.
    prices = [0.20, 0.22, 0.40, 0.40]
    _store_plan(
        world,
        world.site_a,
        {
            "import-eur_per_kwh": prices,
            "pv-power_kw": [0.0] * 4,
            "load-power_kw": [0.4] * 4,
            "battery-charge_kw": [3.0, 0.0, 0.0, 0.0],
            "battery-discharge_kw": [0.0, 0.0, 2.0, 2.0],
            "battery-soc": [0.6, 0.6, 0.55, 0.5],
            "ev-power_kw": [0.0, 11.0, 0.0, 0.0],
            "ev-phases": [0.0, 3.0, 0.0, 0.0],
            "hp-power_kw": [0.0, 0.0, 0.0, 0.0],
            "hp-sgready": [1.0] * 4,
        },
    )
    response = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/plan", headers=world.headers("supporter")
    )
    assert response.status_code == 200, response.text
    reasons = {r["device"]: r for r in response.json()["reasons"]}
    assert reasons["battery"]["code"] == "grid_cheap"
    assert "20.0 ct/kWh" in reasons["battery"]["text"]
    assert reasons["ev"]["code"] == "wait_cheaper"  # mode smart (set by the world)
    assert reasons["ev"]["text"] == "waiting for cheaper hours (from 01:45)"
    assert reasons["hp"]["code"] == "off_warm"
    assert reasons["battery"]["slot_start"].startswith("2026-03-29T00:30")


def test_new_routes_are_in_the_authorization_matrix() -> None:
    from api.deps import route_roles
    from tests.api.test_api_authz_matrix import ROUTES

    roles = {(m, p): set(route_roles(r.dependant) or ()) for m, p, r in ROUTES}
    assert roles[("GET", "/v1/app/sites/{site_id}/equipment")] == {
        "owner",
        "supporter",
        "factory_service",
    }
    assert roles[("PUT", "/v1/app/sites/{site_id}/equipment")] == {"owner"}
    assert roles[("POST", "/v1/trading/sites/{site_id}/what-if")] == {"trader", "analyst"}
    assert roles[("GET", "/v1/trading/groups/{group}/flexibility")] == {"trader", "analyst"}


def test_reasons_and_flexibility_from_a_real_solve_stored_like_the_scheduler(world: World) -> None:
    from optimizer import optimize
    from scheduler.scenario import Home, scenario_problem
    from scheduler.site_model import store_column

    problem, _ = scenario_problem(Home(), "2024-06-12T22:00Z", 6)
    plan = optimize(problem)
    slots = plan.slots.rename(columns=store_column)
    slots.index = pd.date_range(START, periods=len(slots), freq="15min")  # moved to "now"
    world.api.services.plans.save_plan(
        Plan(world.site_a, START, slots, PlanSummary(status="optimal", objective_eur=0.0))
    )
    response = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/plan", headers=world.headers("owner")
    )
    reasons = response.json()["reasons"]
    assert [r["kind"] for r in reasons] == ["battery", "wallbox", "heat_pump"]
    first = response.json()["slots"][0]["values"]
    assert reasons[0]["power_kw"] == pytest.approx(first["battery-power_kw"], abs=1e-3)
    body = _flex(world, hours=2)
    assert {s["site_id"]: s["source"] for s in body["sites"]}[world.site_a] == "plan"
    # site A: 6 planned slots of 8; site B has no plan: solved on estimated 2026 prices
    assert [s["sites"] for s in body["slots"]] == [2] * 6 + [1] * 2
    solved = {s["site_id"]: s for s in body["sites"]}[world.site_b]
    assert solved["source"] == "solve" and solved["price_estimate_slots"] == 8
    assert 0.5 - 1e-6 <= body["slots"][0]["energy_kwh"] <= 10.0 + 1e-6
