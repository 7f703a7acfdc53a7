"""Per-session EV report from telemetry posted by the box: target, delivered, price, met."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.store import Setpoint
from api.site_problem import stored_tariff
from pricing import site_prices
from scheduler.site_model import SiteEquipment, site_home
from tests.api.conftest import Api, FakeClock, World, build_world, start_api

INDEX = pd.date_range("2025-06-08 00:00", periods=192, freq="15min", tz="UTC")
NIGHT = (pd.Timestamp("2025-06-08 18:00Z"), pd.Timestamp("2025-06-09 05:00Z"))
NOON = (pd.Timestamp("2025-06-09 10:00Z"), pd.Timestamp("2025-06-09 11:00Z"))


@pytest.fixture
def world_june(tmp_path: Path) -> Iterator[World]:
    apis = start_api(tmp_path, FakeClock(datetime(2025, 6, 10, 0, 30, tzinfo=UTC)))
    api: Api = next(apis)
    yield build_world(api)
    next(apis, None)


def _between(a: object, b: object) -> np.ndarray:
    lo, hi = pd.Timestamp(a), pd.Timestamp(b)  # type: ignore[arg-type]
    return np.asarray((lo <= INDEX) & (hi > INDEX))


def _telemetry() -> tuple[list[dict[str, object]], np.ndarray]:
    """Night: 11 kW 22:00-23:00 (11 kWh), then nothing while offered (full). Noon: 4 kW for
    half an hour (2 kWh) from a PV surplus (the grid exports), then unplugged."""
    ev = np.zeros(len(INDEX))
    ev[_between("2025-06-08 22:00Z", "2025-06-08 23:00Z")] = 11.0
    ev[_between(NOON[0], NOON[0] + pd.Timedelta(minutes=30))] = 4.0
    noon = _between(*NOON)
    plugged = _between(*NIGHT) | noon
    grid = np.where(noon, -3.0, 0.5 + ev)
    samples: list[dict[str, object]] = []
    for ts, kw, on, g in zip(INDEX, ev, plugged, grid, strict=True):
        stamp = ts.isoformat()
        samples.append({"ts": stamp, "device": "wallbox",
                        "fields": {"power_kw": float(kw), "connected": float(on)}})  # fmt: skip
        samples.append({"ts": stamp, "device": "grid", "fields": {"power_kw": float(g)}})
    return samples, ev


def test_sessions_report_target_delivered_price_and_met(world_june: World) -> None:
    world = world_june
    samples, ev = _telemetry()
    posted = world.api.client.post(
        "/v1/gateway/telemetry", json={"samples": samples}, headers=world.headers("box")
    )
    assert posted.json()["accepted"] == len(samples)
    offered = pd.Timestamp("2025-06-08 23:00Z").to_pydatetime()
    world.api.services.plans.save_setpoints(
        world.site_a, [Setpoint("wallbox", "current_a", offered, 16.0)]
    )
    response = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/ev-sessions?start=2025-06-08&end=2025-06-10",
        headers=world.headers("supporter"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    night, noon = body["sessions"]
    assert (body["met"], body["total"]) == (1, 2)
    # no history: the service's default, 75 % of the 60 kWh car from 20 kWh, in AC terms
    equipment = SiteEquipment()
    eff = site_home(equipment).site.wallboxes[0].efficiency
    assert night["target_source"] == noon["target_source"] == "configured"
    assert night["target_kwh"] == pytest.approx((45.0 - 20.0) / eff, abs=1e-3)
    assert night["delivered_kwh"] == pytest.approx(11.0)
    assert night["full"] is True and night["met"] is True
    assert pd.Timestamp(night["plugin"]) == NIGHT[0] and pd.Timestamp(night["plugout"]) == NIGHT[1]
    assert noon["delivered_kwh"] == pytest.approx(2.0)
    assert noon["full"] is False and noon["met"] is False
    # money: night energy at the import price of its slots, noon at the feed-in price forgone
    tariff = stored_tariff(world.api.services.accounts, world.site_a).tariff
    prices = site_prices(INDEX, tariff, site_home(equipment).export_rules(), seasonal=True)
    at = ev * 0.25
    night_cost = float((at * prices["import_eur_per_kwh"].to_numpy())[~_between(*NOON)].sum())
    noon_cost = float((at * prices["export_eur_per_kwh"].to_numpy())[_between(*NOON)].sum())
    assert night["cost_eur"] == pytest.approx(night_cost, abs=1e-3)
    assert night["avg_price_eur_per_kwh"] == pytest.approx(night_cost / 11.0, abs=1e-3)
    assert noon["avg_price_eur_per_kwh"] == pytest.approx(noon_cost / 2.0, abs=1e-3)


def test_sessions_report_bad_range_names_the_field(world: World) -> None:
    client, headers = world.api.client, world.headers("owner")
    path = f"/v1/app/sites/{world.site_a}/ev-sessions"
    backwards = client.get(f"{path}?start=2026-03-10&end=2026-03-01", headers=headers)
    assert backwards.status_code == 422
    assert [f["field"] for f in backwards.json()["error"]["fields"]] == ["query.start"]
    long = client.get(f"{path}?start=2026-01-01&end=2026-03-01", headers=headers)
    assert [f["field"] for f in long.json()["error"]["fields"]] == ["query.start"]
    empty = client.get(path, headers=headers)
    assert empty.status_code == 200 and empty.json()["total"] == 0
