"""Gateway: telemetry batches into the store, schedule with ETag/304, acknowledgements; and
the app's live view, plan and export built on the same store."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import timedelta
from typing import Any

import pandas as pd

from adapters.store import Plan, PlanSummary
from scheduler.plan_store import SqlPlanStore
from tests.api.conftest import World


def _sample(ts: pd.Timestamp, device: str = "battery", **fields: float) -> dict[str, Any]:
    return {"ts": ts.isoformat(), "device": device, "fields": fields or {"power_kw": 1.0}}


def _save_plan(world: World, created_offset_min: float = -5.0) -> Plan:
    """A 4-slot plan from the current quarter-hour: battery discharges 2, 1.5, 0, -1 kW."""
    now = pd.Timestamp(world.api.clock())
    index = pd.date_range(now.floor("15min"), periods=4, freq="15min")
    slots = pd.DataFrame(
        {"battery-power_kw": [2.0, 1.5, 0.0, -1.0], "battery-soc": [0.6, 0.5, 0.45, 0.5]},
        index=index,
    )
    plan = Plan(
        site_id=world.site_a,
        created_at=(now + pd.Timedelta(minutes=created_offset_min)).to_pydatetime(),
        slots=slots,
        summary=PlanSummary(status="optimal", objective_eur=1.25),
    )
    world.api.services.plans.save_plan(plan)
    world.api.services.plan_cache.forget(world.site_a)
    return plan


def test_telemetry_batch_is_idempotent_and_rejects_per_sample(world: World) -> None:
    client, now = world.api.client, pd.Timestamp(world.api.clock())
    batch = {
        "samples": [
            _sample(now - pd.Timedelta(minutes=2), power_kw=2.5, soc=0.61),
            _sample(now - pd.Timedelta(minutes=1), "pv", power_kw=4.2),
            _sample(now - pd.Timedelta(minutes=1), power_kw=2.0, soc=1.3),  # SOC out of range
            _sample(now - pd.Timedelta(days=6, minutes=1), "grid", power_kw=0.3),  # too old
            _sample(now + pd.Timedelta(hours=1), "grid", power_kw=0.3),  # in the future
            _sample(now - pd.Timedelta(minutes=1), "toaster", power_kw=0.3),  # unknown device
        ]
    }
    first = client.post("/v1/gateway/telemetry", json=batch, headers=world.headers("box"))
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["accepted"] == 2
    reasons = {r["index"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "soc" in reasons[2]
    assert "backlog" in reasons[3]
    assert "future" in reasons[4]
    assert "toaster" in reasons[5]
    # The box re-sends the same buffer after an outage: nothing is stored twice.
    again = client.post("/v1/gateway/telemetry", json=batch, headers=world.headers("box"))
    assert again.json()["accepted"] == 2
    store_file = world.api.services.settings.telemetry_path
    rows = sqlite3.connect(store_file).execute("SELECT count(*) FROM raw").fetchone()[0]
    assert rows == 2
    # A sample 4 days 23 hours old is inside the backlog.
    late = {"samples": [_sample(now - pd.Timedelta(days=4, hours=23), "grid", power_kw=-1.0)]}
    assert client.post("/v1/gateway/telemetry", json=late, headers=world.headers("box")).json() == {
        "accepted": 1,
        "rejected": [],
    }


def test_telemetry_lands_on_the_boxs_own_site_and_shows_in_the_live_view(world: World) -> None:
    client, clock = world.api.client, world.api.clock
    ts = pd.Timestamp(clock()) - pd.Timedelta(seconds=30)
    batch = {"samples": [_sample(ts, power_kw=-3.0, soc=0.42), _sample(ts, "grid", power_kw=1.1)]}
    client.post("/v1/gateway/telemetry", json=batch, headers=world.headers("box"))
    clock.advance(seconds=15)
    live = client.get(f"/v1/app/sites/{world.site_a}/live", headers=world.headers("supporter"))
    assert live.status_code == 200
    devices = {d["device"]: d for d in live.json()["devices"]}
    assert devices["battery"]["fields"] == {"power_kw": -3.0, "soc": 0.42}
    assert devices["battery"]["age_s"] == 45.0
    assert devices["grid"]["fields"]["power_kw"] == 1.1
    other = client.get(f"/v1/app/sites/{world.site_b}/live", headers=world.headers("stranger"))
    assert other.json()["devices"] == []


def test_schedule_etag_gives_304_until_plan_or_slot_changes(world: World) -> None:
    client, clock, box = world.api.client, world.api.clock, world.headers("box")
    empty = client.get("/v1/gateway/schedule", headers=box)
    assert empty.status_code == 200
    assert empty.json()["slots"] == []
    assert empty.json()["plan_created_at"] is None

    _save_plan(world)
    first = client.get("/v1/gateway/schedule", headers=box)
    assert first.status_code == 200
    body, etag = first.json(), first.headers["etag"]
    assert etag != empty.headers["etag"]
    assert body["setpoints"] == {"battery-power_kw": 2.0, "battery-soc": 0.6}
    assert len(body["slots"]) == 4
    assert body["step_minutes"] == 15

    same = client.get("/v1/gateway/schedule", headers={**box, "If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    weak = client.get("/v1/gateway/schedule", headers={**box, "If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304

    clock.advance(minutes=15)  # the current slot ended: new setpoints, new ETag
    next_slot = client.get("/v1/gateway/schedule", headers={**box, "If-None-Match": etag})
    assert next_slot.status_code == 200
    assert next_slot.json()["setpoints"]["battery-power_kw"] == 1.5
    assert len(next_slot.json()["slots"]) == 3

    newer = _save_plan(world, created_offset_min=0.0)
    fresh = client.get(
        "/v1/gateway/schedule", headers={**box, "If-None-Match": next_slot.headers["etag"]}
    )
    assert fresh.status_code == 200
    assert pd.Timestamp(fresh.json()["plan_created_at"]) == pd.Timestamp(newer.created_at)


def test_a_plan_stored_by_another_process_reaches_the_box_after_the_watch(world: World) -> None:
    client, box, services = world.api.client, world.headers("box"), world.api.services
    first = _save_plan(world)
    assert client.get("/v1/gateway/schedule", headers=box).status_code == 200  # now cached
    # the control process stores a new plan on its own connection; this process is not told
    control = SqlPlanStore.open(services.settings.accounts_url())
    newer = dataclasses.replace(first, created_at=first.created_at + timedelta(minutes=4))
    control.save_plan(newer)
    control.close()
    stale = client.get("/v1/gateway/schedule", headers=box).json()["plan_created_at"]
    assert pd.Timestamp(stale) == pd.Timestamp(first.created_at)  # the cache, until the watch
    assert services.plan_cache.watch(services.plans) == [world.site_a]
    fresh = client.get("/v1/gateway/schedule", headers=box).json()["plan_created_at"]
    assert pd.Timestamp(fresh) == pd.Timestamp(newer.created_at)


def test_plan_view_for_site_viewers(world: World) -> None:
    _save_plan(world)
    response = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/plan", headers=world.headers("factory_service")
    )
    assert response.status_code == 200
    plan = response.json()
    assert plan["summary"]["objective_eur"] == 1.25
    assert [s["values"]["battery-power_kw"] for s in plan["slots"]] == [2.0, 1.5, 0.0, -1.0]


def test_ack_is_recorded_as_applied_setpoint_in_the_store(world: World) -> None:
    client = world.api.client
    applied = world.api.clock() - timedelta(seconds=10)
    ack = {
        "etag": '"abc"',
        "applied_at": applied.isoformat(),
        "setpoints": {"battery-power_kw": 2.0, "ev-power_kw": 7.4},
    }
    assert (
        client.post("/v1/gateway/acks", json=ack, headers=world.headers("box")).status_code == 201
    )
    frame = world.api.services.plans.setpoints(
        world.site_a, applied, applied + timedelta(seconds=1)
    )
    got = {(r.device, r.quantity): r.applied for r in frame.itertuples()}
    assert got == {("battery", "power_kw"): 2.0, ("ev", "power_kw"): 7.4}
    bad = {**ack, "setpoints": {"battery": 2.0}}
    response = client.post("/v1/gateway/acks", json=bad, headers=world.headers("box"))
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"].startswith("body.setpoints")


def test_export_includes_telemetry_and_deletion_removes_it(world: World) -> None:
    client, now = world.api.client, pd.Timestamp(world.api.clock())
    batch = {"samples": [_sample(now - pd.Timedelta(minutes=1), power_kw=1.5, soc=0.5)]}
    client.post("/v1/gateway/telemetry", json=batch, headers=world.headers("box"))
    _save_plan(world)
    export = client.get(f"/v1/app/sites/{world.site_a}/export", headers=world.headers("owner"))
    telemetry = export.json()["telemetry"]
    assert [(r["device"], r["power_kw"], r["soc"]) for r in telemetry["raw"]] == [
        ("battery", 1.5, 0.5)
    ]
    assert telemetry["plans"]
    assert client.delete("/v1/app/me", headers=world.headers("owner")).status_code == 204
    store = world.api.services.telemetry
    assert store is not None
    assert store.latest(world.site_a) == {}
    assert world.api.services.plans.latest_plan(world.site_a) is None


def test_plan_starting_later_has_slots_but_no_live_setpoints(world: World) -> None:
    now = pd.Timestamp(world.api.clock())
    index = pd.date_range(now.floor("15min") + pd.Timedelta(hours=1), periods=2, freq="15min")
    plan = Plan(
        site_id=world.site_a,
        created_at=now.to_pydatetime(),
        slots=pd.DataFrame({"battery-power_kw": [3.0, 3.0]}, index=index),
        summary=PlanSummary(status="optimal", objective_eur=0.0),
    )
    world.api.services.plans.save_plan(plan)
    body = world.api.client.get("/v1/gateway/schedule", headers=world.headers("box")).json()
    assert body["setpoints"] == {}
    assert [s["values"]["battery-power_kw"] for s in body["slots"]] == [3.0, 3.0]
