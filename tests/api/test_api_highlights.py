"""Highlights from telemetry posted by the box: energy balance and money of one local day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.api.conftest import Api, FakeClock, World, build_world, start_api


@pytest.fixture
def world_2025(tmp_path: Path) -> Iterator[World]:
    """A world on 2025-06-02, inside the bundled price data."""
    apis = start_api(tmp_path, FakeClock(datetime(2025, 6, 2, 0, 30, tzinfo=UTC)))
    api: Api = next(apis)
    yield build_world(api)
    next(apis, None)


def test_day_highlights_from_box_telemetry(world_2025: World) -> None:
    world = world_2025
    # Local day 2025-06-01 in Europe/Berlin: 96 quarter-hours from 2025-05-31 22:00 UTC.
    index = pd.date_range("2025-05-31 22:00", periods=96, freq="15min", tz="UTC")
    samples = []
    for i, ts in enumerate(index):
        pv = 2.0 if 24 <= i < 72 else 0.0  # 12 h of 2 kW
        flows = {"pv": pv, "house": 1.0, "battery": 0.0, "grid": 1.0 - pv}  # grid + = import
        samples += [
            {"ts": ts.isoformat(), "device": d, "fields": {"power_kw": v}} for d, v in flows.items()
        ]
    posted = world.api.client.post(
        "/v1/gateway/telemetry", json={"samples": samples}, headers=world.headers("box")
    )
    assert posted.json() == {"accepted": 384, "rejected": []}

    response = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/highlights?period=day&start=2025-06-01&end=2025-06-02",
        headers=world.headers("supporter"),
    )
    assert response.status_code == 200, response.text
    (day,) = response.json()["periods"]
    assert day["complete"] is True
    assert day["pv_kwh"] == pytest.approx(24.0)
    assert day["consumption_kwh"] == pytest.approx(24.0)
    assert day["import_kwh"] == pytest.approx(12.0)
    assert day["export_kwh"] == pytest.approx(12.0)
    assert day["self_consumption_rate"] == pytest.approx(0.5)
    assert day["autarky"] == pytest.approx(0.5)
    assert day["cost_eur"] > 0
    assert day["co2_caused_kg"] > 0


def test_highlights_errors(world: World) -> None:
    client, headers = world.api.client, world.headers("owner")
    path = f"/v1/app/sites/{world.site_a}/highlights"
    empty = client.get(path, headers=headers)
    assert empty.status_code == 422
    assert empty.json()["error"]["code"] == "no_telemetry"
    backwards = client.get(f"{path}?start=2026-03-10&end=2026-03-01", headers=headers)
    assert [f["field"] for f in backwards.json()["error"]["fields"]] == ["query.start"]
    bad_period = client.get(f"{path}?period=decade", headers=headers)
    assert [f["field"] for f in bad_period.json()["error"]["fields"]] == ["query.period"]
