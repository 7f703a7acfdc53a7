"""Bad input at the gateway and the insight routes: a 422 naming the field, never a 500, and
nothing poisoned in the store (no infinite aggregate, no duplicate acknowledgement)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from adapters.heartbeat.backlog import RETENTION_S
from adapters.store.telemetry import INT32_KW
from api.routers.gateway import BACKLOG_MARGIN
from tests.api.conftest import World


def _ack(world: World, **setpoints: Any) -> dict[str, Any]:
    applied = world.api.clock() - timedelta(seconds=10)
    return {"etag": '"e1"', "applied_at": applied.isoformat(), "setpoints": setpoints}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_ack_with_a_non_finite_value_is_a_422(world: World, literal: str) -> None:
    applied = world.api.clock().isoformat()
    setpoints = f'{{"battery-power_kw": {literal}}}'
    body = f'{{"etag": "e1", "applied_at": "{applied}", "setpoints": {setpoints}}}'
    response = world.api.client.post(
        "/v1/gateway/acks",
        content=body,
        headers={**world.headers("box"), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "body.setpoints.battery-power_kw"


def test_ack_beyond_the_register_range_is_a_422(world: World) -> None:
    body = _ack(world, **{"battery-power_kw": INT32_KW * 1.01})
    response = world.api.client.post("/v1/gateway/acks", json=body, headers=world.headers("box"))
    assert response.status_code == 422


def test_a_repeated_ack_is_recorded_once(world: World) -> None:
    client, body = world.api.client, _ack(world, **{"battery-power_kw": 2.0})
    first = client.post("/v1/gateway/acks", json=body, headers=world.headers("box"))
    again = client.post("/v1/gateway/acks", json=body, headers=world.headers("box"))
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    acks = client.get(f"/v1/app/sites/{world.site_a}/acks", headers=world.headers("owner"))
    assert len(acks.json()) == 1


def test_huge_power_is_rejected_and_the_aggregate_stays_finite(world: World) -> None:
    now = pd.Timestamp(world.api.clock())
    ts = (now.floor("15min") - pd.Timedelta(minutes=15)).isoformat()
    samples = [
        {"ts": ts, "device": "grid", "fields": {"power_kw": 1.7e308}},
        {"ts": ts, "device": "pv", "fields": {"power_kw": 2.0}},
    ]
    response = world.api.client.post(
        "/v1/gateway/telemetry", json={"samples": samples}, headers=world.headers("box")
    )
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 1
    assert result["rejected"][0]["index"] == 0
    assert "grid.power_kw" in result["rejected"][0]["reason"]
    store = world.api.services.telemetry
    assert store is not None
    window = store.window(world.site_a, now.floor("15min") - pd.Timedelta(hours=1), now)
    assert window.abs().max().max() < INT32_KW


def test_the_service_accepts_all_of_a_full_box_backlog() -> None:
    # The box keeps 5 days; the service must take its oldest minute with at least a day spare.
    accepted = timedelta(days=5) + BACKLOG_MARGIN
    assert accepted >= timedelta(seconds=RETENTION_S) + timedelta(hours=12)


def test_oldest_minute_of_a_five_day_backlog_is_accepted(world: World) -> None:
    now = pd.Timestamp(world.api.clock())
    oldest = now - pd.Timedelta(seconds=RETENTION_S) - pd.Timedelta(minutes=30)  # slow upload
    samples = [{"ts": oldest.isoformat(), "device": "pv", "fields": {"power_kw": 1.0}}]
    response = world.api.client.post(
        "/v1/gateway/telemetry", json={"samples": samples}, headers=world.headers("box")
    )
    assert response.json() == {"accepted": 1, "rejected": []}


@pytest.mark.parametrize("route", ["highlights", "highlights/card.png"])
@pytest.mark.parametrize(
    ("query", "field"), [("end=1600-01-01", "query.end"), ("end=2300-01-01", "query.end"),
                         ("start=1500-01-01&end=2025-01-01", "query.start")]
)  # fmt: skip
def test_highlight_dates_outside_pandas_range_are_a_422(
    world: World, route: str, query: str, field: str
) -> None:
    response = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/{route}?{query}", headers=world.headers("owner")
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field
