"""A site under control on today's date (2026-12-05, 14 months after the bundled prices end)
with the service's live inputs: the real box simulator on 127.0.0.1, an accelerated clock, no
network. The plan runs on flagged estimated prices and clear-sky weather and says so; when
prices arrive from a (local) SMARD server the price job stores them and the site replans."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from adapters.heartbeat.client import HeartbeatClient
from pricing.bundled import data_path
from pricing.smard import read_smard_json
from scheduler.controller import SiteConfig, SiteController
from scheduler.inputs import InputSettings, LiveInputs
from scheduler.simulate import scripted_twin

from .closed_loop import Rig

NOW = "2026-12-05T12:30:00Z"  # Saturday, 13:30 CET: tomorrow's auction is published
SMARD_WEEK = data_path("prices", "smard_4169_DE-LU_quarterhour_1760911200000.json")
#: 58 whole weeks: SMARD's real 20-26 Oct 2025 quarter-hours moved onto 30 Nov-6 Dec 2026
SHIFT_MS = 58 * 7 * 86_400_000
WEEK_MS = 1760911200000 + SHIFT_MS


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=1) as executor:
        yield executor


@pytest.fixture
def smard() -> Iterator[tuple[str, threading.Event]]:
    """A SMARD directory on 127.0.0.1 that answers 503 until ``online`` is set."""
    doc = json.loads(SMARD_WEEK.read_text())
    doc["series"] = [[t + SHIFT_MS, v] for t, v in doc["series"]]
    files = {
        "/4169/DE-LU/index_quarterhour.json": json.dumps({"timestamps": [WEEK_MS]}),
        f"/4169/DE-LU/4169_DE-LU_quarterhour_{WEEK_MS}.json": json.dumps(doc),
    }
    online = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path, "").encode()
            status = 503 if not online.is_set() else 200 if body else 404
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if status == 200 else 0))
            self.end_headers()
            if status == 200:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", online
    server.shutdown()
    server.server_close()


def test_today_without_network_then_prices_arrive(
    tmp_path: Path, pool: ProcessPoolExecutor, smard: tuple[str, threading.Event]
) -> None:
    smard_url, online = smard
    twin = scripted_twin("2026-12-05T00:00Z", 2, [])
    config = SiteConfig("test-site", pv_forecast="weather", horizon_slots=96)

    async def scenario() -> tuple[Rig, SiteController, LiveInputs, list[str], Any, Any]:
        rig = await Rig.start(twin, NOW, tmp_path, pool)
        cfg = replace(config, host=rig.sim.host, port=rig.sim.port)
        now = lambda: pd.Timestamp(rig.clock.now(), unit="s", tz="UTC")  # noqa: E731
        settings = InputSettings(
            price_store_path=tmp_path / "prices.sqlite3",
            smard_url=smard_url,
            weather_url=f"http://127.0.0.1:{_closed_port()}",  # no weather provider reachable
            http_timeout_s=2,
        )
        inputs = LiveInputs(settings, clock=now)
        home = cfg.home
        system = home.pv_system
        client = HeartbeatClient(cfg.host, cfg.port, controller_id=1, clock=rig.clock.sim)
        ctl = SiteController(
            cfg,
            rig.clock,
            rig.store,
            inputs.price_feed("DE_LU", home.retail_tariff(), home.export_rules()),
            rig.executor,
            weather=inputs.site_weather(system.latitude, system.longitude),
            client=client,
            plan_store=rig.plans,
        )
        announced: list[str] = []

        def replan(zone: str) -> None:
            announced.append(zone)
            ctl.new_prices()

        inputs.add_price_listener(replan)
        job = inputs.jobs[0]
        await job.refresh()  # SMARD answers 503: nothing stored
        await asyncio.to_thread(inputs.weather.refresh_due)  # connection refused
        await ctl.start()
        await rig.run_until(pd.Timestamp(NOW) + pd.Timedelta(minutes=5))
        first_stored = rig.plans.latest_plan("test-site")
        online.set()
        await job.refresh()  # the next attempt gets the prices: replan
        await rig.run_until(pd.Timestamp(NOW) + pd.Timedelta(minutes=10))
        await ctl.stop()
        last_stored = rig.plans.latest_plan("test-site")
        await rig.close()
        return rig, ctl, inputs, announced, first_stored, last_stored

    _, ctl, inputs, announced, stored_first, stored_last = asyncio.run(scenario())
    assert all(r.ok for r in ctl.reports), [r.error for r in ctl.reports if not r.ok]
    assert announced == ["DE_LU"]
    assert "new prices" in ctl.reports[-1].reasons
    first, last = ctl.plans[0][1], ctl.plans[-1][1]
    # 24 h on estimates; once the prices are out the plan reaches their end (Sunday, local)
    assert len(first) == 96 and len(last) == 138
    assert last.index[-1] == pd.Timestamp("2026-12-06T22:45Z")
    # the first plan: every slot on estimated prices and clear sky, and it says so
    assert stored_first.slots["price-is_estimate"].eq(1.0).all()
    assert stored_first.slots["weather-is_estimate"].eq(1.0).all()
    summary = stored_first.summary.model_dump()
    assert summary["price_estimate_slots"] == 96 and summary["weather_estimate_slots"] == 96
    assert "estimated prices" in summary["inputs"] and "clear-sky" in summary["inputs"]
    # after the prices arrived: published to the end of Sunday (local) = the whole horizon
    assert stored_last is not None
    assert stored_last.slots["price-is_estimate"].eq(0.0).all()
    assert stored_last.summary.model_dump()["price_estimate_slots"] == 0
    # money: the replan priced its slots with SMARD's (moved) quarter-hours through the tariff
    spot = read_smard_json(SMARD_WEEK.read_text(), "quarterhour")
    spot.index = spot.index + pd.Timedelta(milliseconds=SHIFT_MS)
    problem = ctl.last_problem
    assert problem is not None and problem.inputs.spot_eur_per_kwh is not None
    expected = spot.reindex(problem.inputs.index).to_numpy()
    assert problem.inputs.spot_eur_per_kwh == pytest.approx(expected)
    # physics: the battery stays in its window, PV is clear sky (flagged) but never negative
    assert last["battery_soc"].between(0.05 - 1e-6, 1.0 + 1e-6).all()
    assert (last["pv_kw"] >= 0).all()
    # status words for the site tile
    status = inputs.status("DE_LU", 51.296, 6.7686)
    assert not status.price_estimate and "smard" in status.prices
    assert status.weather_estimate and "clear-sky" in status.weather
