"""The simulated box uploads its backlog through the gateway route of a real uvicorn server."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from adapters.clock import SimClock
from adapters.heartbeat.backlog import MeasurementBuffer, MinuteRecord
from adapters.heartbeat.gateway_sink import GatewaySink
from api.accounts_store import AccountStore
from api.security import password_hasher
from simulation.box import BoxConfig, HeartbeatBox
from simulation.twin import Twin
from tests.api.test_api_uvicorn import server  # noqa: F401  (the real-server fixture)

EMAIL, PASSWORD = "box-owner@example.org", "long enough pw"


def pair_a_box(base: str, database: Path) -> tuple[dict[str, str], str, str]:
    """Register and confirm an owner, create a site, pair a box: (owner headers, site, token)."""
    with httpx.Client(base_url=base, timeout=5.0) as client:
        client.post("/v1/auth/register", json={"email": EMAIL, "password": PASSWORD})
        accounts = AccountStore(database)
        user = accounts.get_user_by_email(EMAIL)
        assert user is not None
        accounts.confirm_user(user.id, user.created_at)
        accounts.register_starter_code(
            "HB-SIM-01", password_hasher(1, 64).hash("PRINTED02"), user.created_at
        )
        accounts.close()
        token = client.post("/v1/auth/token", json={"email": EMAIL, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        site = client.post("/v1/app/sites", json={"name": "Sim"}, headers=headers).json()["id"]
        paired = client.post(
            f"/v1/app/sites/{site}/boxes",
            json={"serial": "HB-SIM-01", "starter_code": "PRINTED02"},
            headers=headers,
        )
        assert paired.status_code == 201, paired.text
        return headers, site, paired.json()["token"]


def test_box_backlog_arrives_once_after_an_outage(server: tuple[str, Path]) -> None:  # noqa: F811
    base, database = server
    headers, site, box_token = pair_a_box(base, database)
    start = pd.Timestamp(datetime.now(UTC) - timedelta(hours=1)).floor("min")
    clock = SimClock(start)
    down = GatewaySink("http://127.0.0.1:9", box_token, timeout_s=0.5)  # nothing listens
    box = HeartbeatBox(Twin.from_bundled_data(start), clock, BoxConfig(site_id=site), sink=down)
    clock.advance(30 * 60)
    box.tick()
    assert box.upload_backlog() == 0  # the service is unreachable: the box keeps everything
    kept = len(box.buffer)
    assert kept >= 29
    first_batch = box.buffer.pending()[:10]
    box.sink = GatewaySink(base, box_token)
    assert box.upload_backlog(batch_size=10) == kept
    assert len(box.buffer) == 0

    with httpx.Client(base_url=base, timeout=5.0, headers=headers) as client:
        live = client.get(f"/v1/app/sites/{site}/live").json()
        devices = {d["device"]: d for d in live["devices"]}
        assert set(devices) == {"pv", "grid", "battery", "house", "wallbox", "heatpump"}
        last = pd.Timestamp(devices["battery"]["ts"])
        assert last == start + pd.Timedelta(minutes=kept - 1)
        soc = devices["battery"]["fields"]["soc"]
        assert 0.0 <= soc <= 1.0
        # the energy balance of the last minute holds as posted
        f = {d: devices[d]["fields"]["power_kw"] for d in devices}
        use = f["house"] + f["wallbox"] + f["heatpump"]
        assert f["grid"] == pytest.approx(use - f["pv"] - f["battery"], abs=1e-6)

        # the box lost an acknowledgement and sends the same minutes again: nothing doubles
        export = f"/v1/app/sites/{site}/export"
        before = client.get(export).json()["telemetry"]
        box.sink.send(first_batch, "resent")
        after = client.get(export).json()["telemetry"]
        assert after == before
        assert sum(len(rows) for rows in after.values()) >= kept * 6


def test_a_nan_record_is_quarantined_and_the_rest_uploads(server: tuple[str, Path]) -> None:  # noqa: F811
    base, database = server
    headers, site, box_token = pair_a_box(base, database)
    start = int(pd.Timestamp(datetime.now(UTC) - timedelta(hours=1)).floor("min").timestamp())
    buffer = MeasurementBuffer(site)
    for minute in range(30):
        soc = math.nan if minute == 3 else 0.5
        buffer.append(MinuteRecord(start + 60 * minute, 1.0, 0.5, 0.2, soc, 1.3, 0.0, 0.4))
    sink = GatewaySink(base, box_token)
    assert buffer.flush(sink, batch_size=10) == 29
    assert len(buffer) == 0
    assert [r.t for r in buffer.quarantine] == [start + 180]
    with httpx.Client(base_url=base, timeout=5.0, headers=headers) as client:
        raw = client.get(f"/v1/app/sites/{site}/export").json()["telemetry"]["raw"]
    assert len({r["ts"] for r in raw}) == 29
