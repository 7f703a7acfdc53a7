"""The service on today's date (2026-12-05), 14 months after the bundled prices end, with no
network: highlights, what-if and fleet flexibility answer on flagged estimated prices (never a
503, 422 or a skipped site) and say which slots are estimates; prices the price job stored are
used where they exist. Tariffs are chosen per site by id or uploaded as TOML."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.api.conftest import Api, FakeClock, World, build_world, start_api

#: Saturday 07:00 CET; in the past of the real clock, which the JWT library checks ``iat`` on
NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
#: de_dynamic_example's levies, tax and (flat) grid fee with de_fixed_example's 14 ct energy:
#: (0.14 + 0.085 + 0.00277 + 0.00816 + 0.01558 + 0.0159 + 0.0205) x 1.19, by hand
FIXED_IMPORT_EUR_PER_KWH = 0.28791 * 1.19
FIXED_EXPORT_EUR_PER_KWH = 0.0786
BROKEN_TOML = """
name = "no grid fee low price"
supplier_margin_eur_per_kwh = 0.02
electricity_tax_eur_per_kwh = 0.0205
vat_rate = 0.19
levies = []
[grid_fee]
standard_eur_per_kwh = 0.085
high_eur_per_kwh = 0.10
[export]
mode = "fixed"
fixed_eur_per_kwh = 0.08
"""


@pytest.fixture
def today(tmp_path: Path) -> Iterator[World]:
    apis = start_api(tmp_path, FakeClock(NOW))
    api: Api = next(apis)
    world = build_world(api)
    battery_only = {"wallboxes": [], "heat_pumps": [], "battery": {"capacity_kwh": 10.0}}
    for owner, site in (("owner", world.site_a), ("stranger", world.site_b)):
        put = api.client.put(
            f"/v1/app/sites/{site}/equipment", json=battery_only, headers=world.headers(owner)
        )
        assert put.status_code == 200, put.text
    yield world
    next(apis, None)


def _choose(world: World, tariff_id: str, site: str | None = None, who: str = "owner") -> Any:
    return world.api.client.put(
        f"/v1/app/sites/{site or world.site_a}/tariff",
        json={"tariff_id": tariff_id},
        headers=world.headers(who),
    )


def _what_if(world: World, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = world.api.client.post(
        f"/v1/trading/sites/{world.site_a}/what-if",
        json=body or {},
        headers=world.headers("trader"),
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_what_if_today_runs_on_flagged_estimates(today: World) -> None:
    result = _what_if(today)
    assert result["start"].startswith("2026-12-05T06:00")
    slots = result["slots"]
    assert len(slots) == 96 and result["price_estimate_share"] == 1.0
    assert len(result["price_estimate_slots"]) == 96
    assert all(s["values"]["price-is_estimate"] == 1.0 for s in slots)
    # no weather fetched (no network): clear sky x measured scale, flagged
    assert result["weather_estimate_share"] == 1.0
    assert all(s["values"]["weather-is_estimate"] == 1.0 for s in slots)
    assert "estimated prices in 96 of 96 slots" in result["inputs"]
    assert "clear-sky weather" in result["inputs"]
    # physics: SOC inside the battery's window, energy balance per slot
    for s in slots:
        v = s["values"]
        assert 0.05 - 1e-6 <= v["battery-soc"] <= 1.0 + 1e-6
        supply = v["grid-import_kw"] + v["pv-power_kw"] + v["battery-discharge_kw"]
        demand = v["grid-export_kw"] + v["load-power_kw"] + v["battery-charge_kw"]
        assert supply == pytest.approx(demand, abs=1e-6)


def test_a_tiny_time_limit_still_answers_a_plan_that_serves_the_load(today: World) -> None:
    # the plan's limit is shared by its solver calls, each of which gets a minimum
    # (optimizer.lazy.MIN_CALL_S): the answer is a real plan, never an all-zero one
    response = today.api.client.post(
        f"/v1/trading/sites/{today.site_a}/what-if",
        json={"parameters": {"time_limit_s": 1e-9}},
        headers=today.headers("trader"),
    )
    assert response.status_code == 200, response.text
    scenario = response.json()["scenario"]
    assert scenario["import_kwh"] > 0 and scenario["cost_eur"] != 0


def test_fixed_tariff_money_by_hand(today: World) -> None:
    chosen = _choose(today, "de_fixed_example")
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["source"] == "catalog" and chosen.json()["tariff_id"] == "de_fixed_example"
    base = _what_if(today)["baseline"]
    expected = (
        base["import_kwh"] * FIXED_IMPORT_EUR_PER_KWH
        - base["export_kwh"] * FIXED_EXPORT_EUR_PER_KWH
    )
    assert base["cost_eur"] == pytest.approx(expected, rel=1e-6)


def test_stored_prices_are_used_and_the_rest_is_flagged(today: World) -> None:
    store = today.api.services.inputs
    assert store is not None
    # what the price job would have stored: today from 07:00 CET to 17:00 CET
    known = pd.date_range(NOW, periods=40, freq="15min")
    store.prices.write("DE_LU", pd.Series(0.30, index=known), "smard")
    result = _what_if(today)
    flagged = [pd.Timestamp(t) for t in result["price_estimate_slots"]]
    assert len(flagged) == 56 and flagged[0] == pd.Timestamp("2026-12-05T16:00Z")
    assert [s["values"]["price-is_estimate"] for s in result["slots"][:40]] == [0.0] * 40


def test_highlights_today_on_estimated_prices(today: World) -> None:
    world = today
    _choose(world, "de_fixed_example")
    # local day 2026-12-04 (yesterday): 12 h of 2 kW PV, 1 kW house
    index = pd.date_range("2026-12-03 23:00", periods=96, freq="15min", tz="UTC")
    samples = []
    for i, ts in enumerate(index):
        pv = 2.0 if 32 <= i < 56 else 0.0  # 6 h of winter sun
        flows = {"pv": pv, "house": 1.0, "battery": 0.0, "grid": 1.0 - pv}
        samples += [
            {"ts": ts.isoformat(), "device": d, "fields": {"power_kw": v}} for d, v in flows.items()
        ]
    posted = world.api.client.post(
        "/v1/gateway/telemetry", json={"samples": samples}, headers=world.headers("box")
    )
    assert posted.json() == {"accepted": 384, "rejected": []}
    response = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/highlights?period=day&start=2026-12-04&end=2026-12-05",
        headers=world.headers("owner"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["price_estimate_share"] == 1.0
    (day,) = body["periods"]
    assert day["import_kwh"] == pytest.approx(18.0) and day["export_kwh"] == pytest.approx(6.0)
    # the fixed tariff does not depend on the (estimated) spot price: money by hand
    expected = 18.0 * FIXED_IMPORT_EUR_PER_KWH - 6.0 * FIXED_EXPORT_EUR_PER_KWH
    assert day["cost_eur"] == pytest.approx(expected, rel=1e-6)


def test_flexibility_today_includes_every_site(today: World) -> None:
    response = today.api.client.get(
        "/v1/trading/groups/default/flexibility?hours=4", headers=today.headers("trader")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["skipped"] == []
    assert {s["site_id"]: s["price_estimate_slots"] for s in body["sites"]} == {
        today.site_a: 16,
        today.site_b: 16,
    }
    assert all(s["sites"] == 2 for s in body["slots"])


def test_tariff_routes(today: World) -> None:
    client, owner = today.api.client, today.headers("owner")
    listed = client.get("/v1/app/tariffs", headers=owner).json()
    assert {t["id"]: t["kind"] for t in listed} == {
        "de_dynamic_example": "dynamic",
        "de_dynamic_flat_fee_example": "dynamic",
        "de_fixed_example": "fixed",
    }
    path = f"/v1/app/sites/{today.site_a}/tariff"
    first = client.get(path, headers=today.headers("supporter")).json()
    assert first["source"] == "default" and first["tariff_id"] == "de_dynamic_example"
    unknown = _choose(today, "de_cheapest")
    assert unknown.status_code == 422
    assert unknown.json()["error"]["fields"][0]["field"] == "body.tariff_id"
    assert _choose(today, "de_fixed_example", who="supporter").status_code == 403
    assert _choose(today, "de_fixed_example", site=today.site_b).status_code == 404
    toml = {"Content-Type": "application/toml", **owner}
    missing = client.put(f"{path}/toml", content=BROKEN_TOML, headers=toml)
    assert missing.status_code == 422
    assert missing.json()["error"]["fields"][0]["field"] == "body.grid_fee.low_eur_per_kwh"
    garbage = client.put(f"{path}/toml", content="name = [unclosed", headers=toml)
    assert garbage.status_code == 422
    assert garbage.json()["error"]["fields"][0]["field"] == "body"
    overlapping = BROKEN_TOML.replace(
        "[grid_fee]",
        "[grid_fee]\nlow_eur_per_kwh = 0.02\nwindows = ["
        '{quarters=[4], weekdays=["sat"], start="00:00", end="06:00", zone="low"},'
        '{quarters=[4], weekdays=["sat"], start="05:00", end="07:00", zone="high"}]',
    )
    assert client.put(f"{path}/toml", content=overlapping, headers=toml).status_code == 422
    good = BROKEN_TOML.replace("[grid_fee]", "[grid_fee]\nlow_eur_per_kwh = 0.02")
    uploaded = client.put(f"{path}/toml", content=good, headers=toml)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["source"] == "uploaded"
    assert uploaded.json()["name"] == "no grid fee low price"
    assert client.get(path, headers=owner).json()["tariff"]["supplier_margin_eur_per_kwh"] == 0.02
    # nothing stored is lost: a rejected upload left the uploaded tariff in place
    client.put(f"{path}/toml", content="x", headers=toml)
    assert client.get(path, headers=owner).json()["source"] == "uploaded"
    # the owner's data export carries it
    export = client.get(f"/v1/app/sites/{today.site_a}/export", headers=owner).json()
    assert export["tariff"]["tariff_id"] == "uploaded" and export["tariff"]["tariff_toml"] == good
