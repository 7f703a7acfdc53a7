"""Owner's device settings: charging mode, departure and target per wallbox; comfort band."""

from __future__ import annotations

import pytest

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


def test_weekly_departure_plan_and_one_off_override(world: World) -> None:
    client, owner = world.api.client, world.headers("owner")
    path = f"/v1/app/sites/{world.site_a}/wallboxes/ev"
    body = {
        "mode": "smart",
        "weekly": {
            "mon": {"time": "07:30", "target_soc_pct": 80},
            "sat": {"time": "10:00", "target_kwh": 30},
        },
        "departure": "2026-03-31T05:00:00+02:00",
        "target_soc_pct": 90,
    }
    saved = client.put(path, json=body, headers=owner)
    assert saved.status_code == 200, saved.text
    assert saved.json()["weekly"]["mon"] == {
        "time": "07:30",
        "target_kwh": None,
        "target_soc_pct": 80.0,
    }
    assert client.get(path, headers=owner).json()["target_soc_pct"] == 90.0
    for bad, field in (
        ({"weekly": {"mon": {"time": "7:30"}}}, "body.weekly.mon.time"),
        ({"weekly": {"mon": {"time": "24:00"}}}, "body.weekly.mon.time"),
        ({"weekly": {"monday": {"time": "07:30"}}}, "body.weekly.monday.[key]"),
        ({"weekly": {"mon": {"time": "07:30", "target_soc_pct": 120}}}, None),
        ({"target_kwh": 40, "target_soc_pct": 80}, "body.target_soc_pct"),
        (
            {"weekly": {"fri": {"time": "07:30", "target_kwh": 4, "target_soc_pct": 8}}},
            "body.weekly.fri.target_soc_pct",
        ),
    ):
        refused = client.put(path, json={"mode": "smart", **bad}, headers=owner)
        assert refused.status_code == 422, bad
        fields = [f["field"] for f in refused.json()["error"]["fields"]]
        assert fields == [field or "body.weekly.mon.target_soc_pct"], refused.text
    assert client.get(path, headers=owner).json()["weekly"]["sat"]["target_kwh"] == 30.0


def test_preferences_stored_before_the_weekly_plan_still_read(world: World) -> None:
    """Rows written before the weekly plan existed (mode, departure, target_kwh) stay valid."""
    from api.accounts_store import DevicePreferences

    old = '{"mode": "solar", "departure": null, "target_kwh": 35.0}'
    world.api.services.accounts.set_device_preferences(
        DevicePreferences(world.site_a, "wallbox", "ev", old, world.api.clock(), "usr_x")
    )
    read = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/wallboxes/ev", headers=world.headers("owner")
    ).json()
    assert (read["mode"], read["target_kwh"], read["weekly"]) == ("solar", 35.0, {})


def test_plan_shows_energy_at_departure_and_why_a_target_is_missed(world: World) -> None:
    import pandas as pd

    from adapters.store import Plan, PlanSummary

    client, owner = world.api.client, world.headers("owner")
    now = pd.Timestamp(world.api.clock())  # 00:30 UTC
    index = pd.date_range(now, periods=16, freq="15min")
    energy = [20.0 + 2.0 * (k + 1) for k in range(16)]  # 8 kW into the car, 2 kWh per slot
    slots = pd.DataFrame({"ev-power_kw": 8.0, "ev-energy_kwh": energy}, index=index)
    world.api.services.plans.save_plan(
        Plan(
            world.site_a,
            now.to_pydatetime(),
            slots,
            PlanSummary(status="optimal", objective_eur=1.0, violations={"ev-target_energy": 2.0}),
        )
    )
    plan_path = f"/v1/app/sites/{world.site_a}/plan"
    wallbox = f"/v1/app/sites/{world.site_a}/wallboxes/ev"

    def outlook(**prefs: object) -> dict[str, object]:
        body = {"mode": "smart", "departure": "2026-03-29T03:00:00Z", **prefs}
        assert client.put(wallbox, json=body, headers=owner).status_code == 200
        (one,) = client.get(plan_path, headers=owner).json()["departures"]
        return one

    # departure 03:00 UTC = end of the 10th slot: 20 + 10 x 2 = 40 kWh in the car
    met = outlook(target_kwh=30)
    assert (met["source"], met["expected_kwh"], met["reachable"]) == ("one_off", 40.0, True)
    assert met["expected_soc"] == 40.0 / 60.0
    # 50 kWh: from 20 kWh the 11.04 kW charger cannot add 30 kWh in 2.5 h
    late = outlook(target_soc_pct=100 * 50 / 60)
    assert late["reachable"] is False
    assert late["shortfall_kwh"] == pytest.approx(10.0)
    assert late["reason"].startswith("Not enough time: in the 2.5 h left")
    short = outlook(target_kwh=42)
    assert short["reachable"] is False and "short of the target" in short["reason"]
    assert "The solver reports the target missed by 2.0 kWh." in short["reason"]
    solar = outlook(target_kwh=42, mode="solar")
    assert "solar surplus" in solar["reason"]
    beyond = outlook(departure="2026-03-30T06:00:00Z", target_kwh=42)
    assert beyond["reachable"] is None and beyond["expected_kwh"] is None
    assert "does not reach this departure yet" in beyond["reason"]


def test_the_plan_summary_is_typed_and_survives_a_field_of_another_type(world: World) -> None:
    """The plan view's summary says which heat-store loss the plan used (a schema field, not
    a free dict); a stored field of an unexpected type is left out, never a 5xx."""
    import pandas as pd

    from adapters.store import Plan, PlanSummary

    client, owner = world.api.client, world.headers("owner")
    now = pd.Timestamp(world.api.clock())
    slots = pd.DataFrame(
        {"hp-power_kw": [1.0] * 4}, index=pd.date_range(now, periods=4, freq="15min")
    )
    plan_path = f"/v1/app/sites/{world.site_a}/plan"
    assert client.get(plan_path, headers=owner).json()["summary"]["status"] is None

    def store(minutes: int, **fields: object) -> dict[str, object]:
        summary = PlanSummary(status="optimal", objective_eur=1.5, **fields)
        created = (now + pd.Timedelta(minutes=minutes)).to_pydatetime()
        world.api.services.plans.save_plan(Plan(world.site_a, created, slots, summary))
        response = client.get(plan_path, headers=owner)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()["summary"]
        return body

    said = "0.220 kW/K learned from 71 h (configured 0.150)"
    good = store(0, heat_loss_kw_per_k=0.22, heat_loss_source="learned", heat_loss=said,
                 solve_ms=12.5, newer_field=[1, 2])  # fmt: skip
    assert (good["heat_loss_kw_per_k"], good["heat_loss_source"]) == (0.22, "learned")
    assert good["heat_loss"] == said and good["newer_field"] == [1, 2]
    odd = store(1, heat_loss_kw_per_k="much", heat_loss_source="guessed", solve_ms=3.0)
    assert odd["heat_loss_kw_per_k"] is None and odd["heat_loss_source"] is None
    assert (odd["status"], odd["objective_eur"], odd["solve_ms"]) == ("optimal", 1.5, 3.0)
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "heat_loss_source" in schema["PlanSummaryPublic"]["properties"]
