"""What-if: solve a site with other parameters or prices, compare, store nothing."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from adapters.store import Plan, PlanSummary
from pricing import load_tariff
from scheduler.scenario import example_tariff_path
from tests.api.conftest import World

START = "2024-01-16T23:00Z"  # a winter day inside the bundled prices (Q1 grid-fee windows)
#: Exact optima and a fixed end value make the money comparisons below exact inequalities.
EXACT = {"mip_gap": 0.0, "mip_abs_gap_eur": 0.0, "terminal_value_eur_per_kwh": 0.2}


@pytest.fixture
def site(world: World) -> World:
    """Site A as a battery-only home with exact solver settings."""
    client = world.api.client
    equipment = {"wallboxes": [], "heat_pumps": [], "battery": {"capacity_kwh": 10.0}}
    put = client.put(
        f"/v1/app/sites/{world.site_a}/equipment", json=equipment, headers=world.headers("owner")
    )
    assert put.status_code == 200, put.text
    patch = client.patch(
        f"/v1/trading/sites/{world.site_a}/parameters", json=EXACT, headers=world.headers("trader")
    )
    assert patch.status_code == 200, patch.text
    # The box reports a nearly empty battery: the plan has to import overnight.
    sample = {"ts": world.api.clock().isoformat(), "device": "battery"}
    sample["fields"] = {"power_kw": 0.0, "soc": 0.1}  # type: ignore[assignment]
    posted = client.post(
        "/v1/gateway/telemetry", json={"samples": [sample]}, headers=world.headers("box_a")
    )
    assert posted.status_code == 200 and posted.json()["rejected"] == [], posted.text
    return world


def what_if(world: World, body: dict[str, Any], principal: str = "trader") -> dict[str, Any]:
    response = world.api.client.post(
        f"/v1/trading/sites/{world.site_a}/what-if",
        json={"start": START, **body},
        headers=world.headers(principal),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_unchanged_what_if_equals_baseline(site: World) -> None:
    result = what_if(site, {})
    first = result["slots"][0]["values"]
    # Starts from the measured SOC: 10 % of 10 kWh plus what the first slot charges.
    assert first["battery-soc"] * 10 == pytest.approx(
        1.0 + 0.95 * first["battery-charge_kw"] * 0.25 - first["battery-discharge_kw"] * 0.25 / 0.95
    )
    assert result["baseline"]["import_kwh"] > 1.0
    assert result["applied"] is False
    assert len(result["slots"]) == 96 and result["step_minutes"] == 15
    assert result["scenario"]["cost_eur"] == pytest.approx(result["baseline"]["cost_eur"])
    assert all(abs(v) < 1e-9 for v in result["difference"].values())
    assert result["parameters"]["mip_gap"] == 0.0


def test_higher_wear_cost_means_fewer_cycles_and_a_higher_bill(site: World) -> None:
    result = what_if(site, {"parameters": {"battery_wear_eur_per_kwh": 0.3}})
    base, scen = result["baseline"], result["scenario"]
    assert base["battery_cycles"] > 0.3  # the baseline does use the battery
    assert scen["battery_cycles"] < base["battery_cycles"] - 0.2
    assert result["difference"]["battery_cycles"] < 0
    # Optimality both ways: the part of the objective without wear can only get worse.
    assert scen["objective_eur"] - scen["battery_wear_eur"] >= (
        base["objective_eur"] - base["battery_wear_eur"] - 1e-6
    )
    assert result["parameters"]["battery_wear_eur_per_kwh"] == 0.3


def test_import_price_up_raises_cost_within_the_bounds_optimality_gives(site: World) -> None:
    base = what_if(site, {})
    imports = [s["values"]["import-eur_per_kwh"] for s in base["slots"]]
    result = what_if(site, {"prices": {"import_eur_per_kwh": [p + 0.1 for p in imports]}})
    b, s = result["baseline"], result["scenario"]
    delta = s["objective_eur"] - b["objective_eur"]
    # The baseline plan stays feasible (cost + 0.1 per kWh it imports) and vice versa.
    assert 0.1 * s["import_kwh"] - 1e-6 <= delta <= 0.1 * b["import_kwh"] + 1e-6
    assert result["difference"]["cost_eur"] > 0
    diffs = [d["values"]["import-eur_per_kwh"] for d in result["slot_differences"]]
    assert diffs == pytest.approx([0.1] * 96)


def test_spot_shift_goes_through_the_tariff(site: World) -> None:
    vat = load_tariff(example_tariff_path()).vat_rate
    result = what_if(site, {"prices": {"spot_shift_eur_per_kwh": 0.05}})
    diffs = [d["values"]["import-eur_per_kwh"] for d in result["slot_differences"]]
    assert diffs == pytest.approx([0.05 * (1 + vat)] * 96)
    assert result["difference"]["cost_eur"] > 0


def test_what_if_stores_nothing(site: World) -> None:
    services = site.api.services
    audit_before = services.accounts.audit_trail(limit=1000)
    params_before = services.accounts.get_site_parameters(site.site_a)
    what_if(site, {"parameters": {"battery_wear_eur_per_kwh": 0.5}}, principal="analyst")
    assert services.plans.latest_plan(site.site_a) is None
    assert services.accounts.audit_trail(limit=1000) == audit_before
    assert services.accounts.get_site_parameters(site.site_a) == params_before
    schedule = site.api.client.get("/v1/gateway/schedule", headers=site.headers("box_a"))
    assert schedule.json()["slots"] == [] and schedule.json()["setpoints"] == {}


def test_errors_name_the_field(site: World) -> None:
    client = site.api.client
    path = f"/v1/trading/sites/{site.site_a}/what-if"
    cases = [
        (
            {"start": START, "prices": {"import_eur_per_kwh": [0.3] * 5}},
            "body.prices.import_eur_per_kwh",
        ),
        ({"start": START, "parameters": {"mip_gap": 2}}, "body.parameters.mip_gap"),
        ({"start": START, "parameters": {"mip_gap": None}}, "body.parameters.mip_gap"),
        ({"start": "2024-06-12T22:00"}, "body.start"),  # naive
        ({"start": START, "horizon_hours": 49}, "body.horizon_hours"),
    ]
    for body, field in cases:
        response = client.post(path, json=body, headers=site.headers("trader"))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["fields"][0]["field"] == field, (body, response.text)
    unknown = f"/v1/trading/sites/site_{'0' * 32}/what-if"
    assert client.post(unknown, json={}, headers=site.headers("trader")).status_code == 404
    owner = client.post(path, json={"start": START}, headers=site.headers("owner"))
    assert owner.status_code == 403


def test_what_if_plans_on_the_heat_loss_the_controller_learned(world: World) -> None:
    """The controller's latest plan says it learned a leakier store than configured (0.25 kW/K
    against 0.15): a what-if plans exactly as if 0.25 were configured (more heat bought), and
    on the configured loss when the controller used that."""
    client = world.api.client

    def configure(loss: float) -> None:
        equipment = {"wallboxes": [], "battery": None,
                     "heat_pumps": [{"name": "hp", "loss_kw_per_k": loss}]}  # fmt: skip
        put = client.put(
            f"/v1/app/sites/{world.site_a}/equipment",
            json=equipment,
            headers=world.headers("owner"),
        )
        assert put.status_code == 200, put.text

    def store(source: str, loss: float, minutes: int) -> None:
        created = pd.Timestamp(START) - pd.Timedelta(minutes=minutes)
        slots = pd.DataFrame({"hp-power_kw": [0.0]}, index=[pd.Timestamp(START)])
        summary = PlanSummary(status="optimal", objective_eur=0.0, heat_loss_kw_per_k=loss,
                              heat_loss_source=source)  # fmt: skip
        world.api.services.plans.save_plan(
            Plan(world.site_a, created.to_pydatetime(), slots, summary)
        )

    def heat_kwh(result: dict[str, Any]) -> float:
        return 0.25 * sum(s["values"]["hp-power_kw"] for s in result["slots"])

    configure(0.15)
    patch = client.patch(
        f"/v1/trading/sites/{world.site_a}/parameters", json=EXACT, headers=world.headers("trader")
    )
    assert patch.status_code == 200, patch.text
    configured = what_if(world, {})
    store("configured", 0.15, 15)
    assert heat_kwh(what_if(world, {})) == pytest.approx(heat_kwh(configured), abs=1e-6)
    store("learned", 0.25, 10)
    learned = what_if(world, {})
    assert "0.250 kW/K" in learned["inputs"] and "learned" in learned["inputs"]
    configure(0.25)
    store("configured", 0.25, 5)
    as_configured = what_if(world, {})
    assert heat_kwh(learned) == pytest.approx(heat_kwh(as_configured), abs=1e-6)
    assert learned["baseline"]["cost_eur"] == pytest.approx(as_configured["baseline"]["cost_eur"])
    # the store loses 0.10 kW/K more over some 25-35 K for a day: 60-84 kWh of heat more,
    # 15-40 kWh of electricity at a winter COP of 2-4
    assert 15.0 < heat_kwh(learned) - heat_kwh(configured) < 40.0
    assert "learned" not in as_configured["inputs"]
