"""The live view as server-sent events, and the impact card: what the dashboard reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.api.conftest import Api, FakeClock, World, build_world, start_api


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, object]]]:
    event = ""
    for line in lines:
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield event, json.loads(line.removeprefix("data:"))


@pytest.fixture
def streaming_world(tmp_path: Path) -> Iterator[World]:
    apis = start_api(tmp_path, live_stream_max_s=30.0, live_stream_interval_s=0.01)
    api: Api = next(apis)
    yield build_world(api)
    next(apis, None)


def _post(world: World, ts: str, pv: float) -> None:
    sample = {"ts": ts, "device": "pv", "fields": {"power_kw": pv}}
    response = world.api.client.post(
        "/v1/gateway/telemetry", json={"samples": [sample]}, headers=world.headers("box")
    )
    assert response.json()["accepted"] == 1, response.text


def test_stream_sends_the_live_view_then_ends(world: World) -> None:
    _post(world, "2026-03-29T00:29:00Z", 1.5)
    path = f"/v1/app/sites/{world.site_a}/live/stream"
    with world.api.client.stream("GET", path, headers=world.headers("supporter")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(_events(response.iter_lines()))
    # conftest's live_stream_max_s=0: one live event, then the end
    (live_event, live), (end_event, end) = events
    assert (live_event, end_event, end) == ("live", "end", {"reason": "stream_limit"})
    assert live["devices"] == [
        {
            "device": "pv",
            "ts": "2026-03-29T00:29:00Z",
            "age_s": 60.0,
            "fields": {"power_kw": 1.5},
        }
    ]
    assert world.api.client.get(path, headers=world.headers("stranger")).status_code == 404


def test_stream_ends_when_the_grant_is_revoked(streaming_world: World) -> None:
    world = streaming_world
    path = f"/v1/app/sites/{world.site_a}/live/stream"
    with world.api.client.stream("GET", path, headers=world.headers("supporter")) as response:
        events = _events(response.iter_lines())
        assert next(events)[0] == "live"
        world.api.services.accounts.remove_grant(world.site_a, world.user_ids["supporter"])
        rest = list(events)
    assert rest[-1] == ("end", {"reason": "access_lost"})
    assert all(name == "live" for name, _ in rest[:-1])


def test_stream_ends_when_the_token_expires(streaming_world: World) -> None:
    world = streaming_world
    path = f"/v1/app/sites/{world.site_a}/live/stream"
    with world.api.client.stream("GET", path, headers=world.headers("owner")) as response:
        events = _events(response.iter_lines())
        assert next(events)[0] == "live"
        world.api.clock.advance(hours=2)  # the world's tokens live one hour
        rest = list(events)
    assert rest[-1] == ("end", {"reason": "token_expired"})


@pytest.fixture
def world_2025(tmp_path: Path) -> Iterator[World]:
    apis = start_api(tmp_path, FakeClock(datetime(2025, 6, 3, 9, 0, tzinfo=UTC)))
    yield build_world(next(apis))
    next(apis, None)


def test_highlights_cut_to_the_telemetry_and_the_card(world_2025: World) -> None:
    world = world_2025
    # 2025-06-01 00:00 Berlin to 2025-06-03 09:00 UTC: a day and a half of 2 kW PV, 1 kW house.
    index = pd.date_range("2025-05-31 22:00", "2025-06-03 09:00", freq="15min", tz="UTC")
    samples = [
        {"ts": ts.isoformat(), "device": d, "fields": {"power_kw": v}}
        for ts in index
        for d, v in {"pv": 2.0, "house": 1.0, "grid": -1.0}.items()
    ]
    posted = world.api.client.post(
        "/v1/gateway/telemetry", json={"samples": samples}, headers=world.headers("box")
    )
    assert posted.status_code == 200, posted.text
    base = f"/v1/app/sites/{world.site_a}/highlights"
    # A range starting a week before the first sample and ending after today.
    query = "period=day&start=2025-05-25&end=2025-06-04"
    response = world.api.client.get(f"{base}?{query}", headers=world.headers("supporter"))
    assert response.status_code == 200, response.text
    days = response.json()["periods"]
    starts = [pd.Timestamp(d["start"]).tz_convert("Europe/Berlin") for d in days]
    assert [f"{s:%Y-%m-%d %H:%M}" for s in starts] == [
        "2025-06-01 00:00",
        "2025-06-02 00:00",
        "2025-06-03 00:00",
    ]
    assert [d["complete"] for d in days] == [True, True, False]
    assert days[0]["pv_kwh"] == pytest.approx(48.0)
    assert days[0]["export_kwh"] == pytest.approx(24.0)

    card = world.api.client.get(f"{base}/card.png?{query}", headers=world.headers("supporter"))
    assert card.status_code == 200
    assert card.headers["content-type"] == "image/png"
    assert card.content.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(card.content[16:20], "big")
    assert width == 1200
