"""The service end to end: ``hbopt serve`` under uvicorn controlling box simulators.

Real parts: the service runs as its own process (``python -m hbopt serve``, SQLite files),
three box simulators are real pymodbus servers on 127.0.0.1 in this process, and a fourth box
pulls over ``/v1/gateway``. Service and boxes share an accelerated clock (x30: a 15-minute
slot is 30 s, the 60 s watchdog 2 s) by the same start, anchor and speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from adapters.heartbeat.esi_types import ControlState, Layer
from api.settings import get_settings
from hbopt.cli import main as hbopt_main
from scheduler.clock import ScaledRealClock
from scheduler.commands import battery_command
from simulation.box import BoxConfig, HeartbeatBox
from simulation.box_sim import BoxSimulator, start_box_simulator
from simulation.twin import Twin

START = pd.Timestamp("2024-06-12T08:00Z")
SPEED = 30.0
PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    """The service process and what it needs to be restarted identically."""

    tmp: Path
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    def cli(self, *args: str) -> str:
        """``hbopt ARGS`` in this process, on the service's database; its output."""
        out = io.StringIO()
        saved = os.environ.get("HBOPT_DATABASE_PATH")
        os.environ["HBOPT_DATABASE_PATH"] = self.env["HBOPT_DATABASE_PATH"]
        get_settings.cache_clear()
        try:
            with contextlib.redirect_stdout(out):
                assert hbopt_main(list(args)) == 0
        finally:
            if saved is None:
                os.environ.pop("HBOPT_DATABASE_PATH")
            else:
                os.environ["HBOPT_DATABASE_PATH"] = saved
            get_settings.cache_clear()
        return out.getvalue().strip()

    async def start(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hbopt", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(1200):
                with_error = None
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError as exc:
                    with_error = exc
                await asyncio.sleep(0.05)
        raise AssertionError(f"service did not start: {with_error}\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Owner:
    client: httpx.AsyncClient
    token: str
    site_id: str = ""
    boxes: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.client.request(method, path, headers=self.auth, **kwargs)
        assert response.status_code < 300, (path, response.text)
        return response.json() if response.content else None

    async def status(self, site_id: str) -> dict[str, Any]:
        status: dict[str, Any] = await self.call("GET", f"/v1/app/sites/{site_id}/status")
        return status


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> float:
    """Poll ``check`` until true; the wall seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if await check():
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


@asynccontextmanager
async def boxes(clock: ScaledRealClock, n: int) -> AsyncIterator[list[BoxSimulator]]:
    twin_start = START.floor("D")
    sims = []
    for i in range(n):
        twin = Twin.from_bundled_data(twin_start, 2)
        box = HeartbeatBox(twin, clock, BoxConfig(f"box-{i}", watchdog_timeout_s=60))
        sims.append(await start_box_simulator(box, tick_interval_s=0.02))
    try:
        yield sims
    finally:
        for sim in sims:
            await sim.stop()


def service_env(tmp: Path, anchor: float) -> dict[str, str]:
    return {
        **os.environ,
        "HBOPT_DATABASE_PATH": str(tmp / "accounts.sqlite3"),
        "HBOPT_TELEMETRY_PATH": str(tmp / "telemetry.sqlite3"),
        "HBOPT_JWT_SECRET": "test-secret-test-secret-test-secret",
        "HBOPT_ACCESS_TOKEN_TTL_S": "3600",
        "HBOPT_PASSWORD_TIME_COST": "1",
        "HBOPT_PASSWORD_MEMORY_COST_KIB": "64",
        "HBOPT_SCHEDULE_CACHE_S": "0",
        # live inputs with no network: SMARD and Open-Meteo at a closed port on 127.0.0.1
        "HBOPT_SMARD_URL": "http://127.0.0.1:9/app/chart_data",
        "HBOPT_WEATHER_URL": "http://127.0.0.1:9",
        "HBOPT_CLOCK_SPEED": str(SPEED),
        "HBOPT_CLOCK_START": START.isoformat(),
        "HBOPT_CLOCK_ANCHOR": repr(anchor),
        "HBOPT_SOLVER_WORKERS": "1",
        "HBOPT_HORIZON_SLOTS": "48",
        "HBOPT_SCHEDULE_SLOTS": "48",
    }


async def sign_up(service: Service, client: httpx.AsyncClient, email: str) -> Owner:
    """Register over HTTP, confirm with the link the service logged, sign in."""
    body = {"email": email, "password": PASSWORD}
    assert (await client.post("/v1/auth/register", json=body)).status_code == 202

    async def mailed() -> bool:
        return email in service.log.read_text()

    await until(mailed, 5, "confirmation mail in the log")
    line = next(ln for ln in service.log.read_text().splitlines() if email in ln)
    token = re.search(r"token=([A-Za-z0-9_\-.]+)", line)
    assert token is not None, line
    confirmed = await client.post("/v1/auth/confirm", json={"token": token.group(1)})
    assert confirmed.status_code == 200, confirmed.text
    tokens = (await client.post("/v1/auth/token", json=body)).json()
    return Owner(client, tokens["access_token"])


EQUIPMENT = {
    "pv": {"peak_kw": 8.0},
    "battery": {"capacity_kwh": 10.0, "charge_kw": 5.0, "discharge_kw": 5.0},
    "wallboxes": [{"name": "ev", "max_current_a": 16.0, "phases": 3}],
    "heat_pumps": [{"name": "hp", "max_kw": 3.0}],
}


async def add_site(owner: Owner, name: str, serial: str, code: str) -> str:
    body = {"name": name, "timezone": "Europe/Berlin"}
    site = await owner.call("POST", "/v1/app/sites", json=body)
    paired = await owner.call(
        "POST", f"/v1/app/sites/{site['id']}/boxes", json={"serial": serial, "starter_code": code}
    )
    owner.boxes[site["id"]] = paired["token"]
    await owner.call("PUT", f"/v1/app/sites/{site['id']}/equipment", json=EQUIPMENT)
    return str(site["id"])


def applied_matches_plan(box: HeartbeatBox, plan: dict[str, Any], now: float) -> bool:
    """The box's live commands are the plan's current slot.

    Battery: the mode and power :func:`~scheduler.commands.battery_command` makes of the
    slot's planned battery and grid power; wallbox: paused when the plan charges nothing, else
    the planned power as current on the planned phases (230 V); heat pump: the SG-Ready state.
    """
    slots = [s for s in plan["slots"] if pd.Timestamp(s["start"]).timestamp() <= now]
    if not slots or box.live is None:
        return False
    slot, live = slots[-1]["values"], box.live
    mode, battery_kw = battery_command(slot["battery-power_kw"], slot["grid-power_kw"])
    battery_ok = live["battery_mode"] == int(mode) and (
        battery_kw is None or abs((live["battery_power_w"] or 0) / 1000 - battery_kw) < 0.002
    )
    current = (live["wallbox_current_ma"] or 0) / 1000
    ev_kw = slot.get("ev-power_kw", 0.0)
    if ev_kw < 0.05:
        wallbox_ok = current == 0
    else:
        expected = ev_kw * 1000 / (230 * slot["ev-phases"])
        wallbox_ok = abs(current - min(max(expected, 6.0), 16.0)) < 0.05
    return bool(battery_ok and wallbox_ok and live["hp_sgready_state"] == slot["hp-sgready"])


def test_service_controls_boxes_over_modbus_and_pull(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp: Path) -> None:
    anchor = time.time()
    clock = ScaledRealClock(START.timestamp(), SPEED, anchor)
    service = Service(tmp, service_env(tmp, anchor), _free_port(), tmp / "service.log")
    async with boxes(clock, 3) as sims:
        codes = [
            service.cli("api-box", "--serial", f"SN-{i}", "--modbus", f"127.0.0.1:{sim.port}")
            for i, sim in enumerate(sims)
        ]
        pull_code = service.cli("api-box", "--serial", "SN-PULL")
        await service.start()
        try:
            async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
                await _story(service, client, sims, codes, pull_code, clock)
        finally:
            service.stop()


async def _story(  # noqa: PLR0917 - the parts of one story
    service: Service,
    client: httpx.AsyncClient,
    sims: list[BoxSimulator],
    codes: list[str],
    pull_code: str,
    clock: ScaledRealClock,
) -> None:
    owner = await sign_up(service, client, "owner@example.com")
    sites = [await add_site(owner, f"home {i}", f"SN-{i}", c) for i, c in enumerate(codes)]

    # within one cycle: every box REMOTE with a schedule, the live commands = the plan's slot
    async def all_remote() -> bool:
        states = [await owner.status(s) for s in sites]
        return all(s["state"] == "remote" and s["last_plan_at"] for s in states)

    await until(all_remote, 30, "every box in remote control with a plan")
    for sim, site in zip(sims, sites, strict=True):
        status = await owner.status(site)
        assert status["state_text"] == "remote control" and status["link"] == "modbus"
        assert sim.box.control_state(clock.now()) == ControlState.REMOTE_LIVE
        assert sim.box.persistent.schedule is not None

        async def applied(sim: BoxSimulator = sim, site: str = site) -> bool:
            plan = await owner.call("GET", f"/v1/app/sites/{site}/plan")
            return applied_matches_plan(sim.box, plan, clock.now())

        await until(applied, 5, "the live commands are the plan's current slot")
        assert status["reasons"], status
        # no network: the forecast provider is unreachable, so the plan ran on clear sky and
        # says so per slot (prices are the bundled history for this date)
        plan = await owner.call("GET", f"/v1/app/sites/{site}/plan")
        flags = [slot["values"].get("weather-is_estimate") for slot in plan["slots"]]
        assert flags and all(flags), flags[:4]

    # a mode change over the API is in a new plan within 2 s
    before = (await owner.status(sites[0]))["last_plan_at"]
    t0 = time.monotonic()
    await owner.call(
        "PUT", f"/v1/app/sites/{sites[0]}/wallboxes/ev", json={"mode": "now", "target_kwh": 40}
    )

    async def replanned() -> bool:
        status = await owner.status(sites[0])
        triggered = "owner settings changed" in status["last_cycle_triggers"]
        return bool(status["last_plan_at"] != before and triggered)

    await until(replanned, 2.0, "a new plan after the mode change")
    assert time.monotonic() - t0 < 2.0

    # an unreachable box shows "unreachable"; the others carry on
    await sims[2].stop()

    async def third_unreachable() -> bool:
        return (await owner.status(sites[2]))["state"] == "unreachable"

    await until(third_unreachable, 20, "the stopped box unreachable")
    assert (await owner.status(sites[2]))["last_error"]
    for site in sites[:2]:
        assert (await owner.status(site))["state"] == "remote"
    await sims[2]._serve(sims[2].port, 0.02)

    # kill -9: the watchdog of every box fires within its timeout (60 s simulated): live
    # setpoints are dropped and the fallback latch is set; the box then executes the uploaded
    # schedule (precedence: live > schedule > fallback mode), as the map intends for outages
    seqs = [sim.box.applied_seq for sim in sims]
    service.kill()
    killed_at = clock.now()

    async def all_fallback() -> bool:
        return all(s.box.latched and s.box.live is None for s in sims[:2])

    await until(all_fallback, 70 / SPEED + 1, "watchdog fallback after the kill")
    assert clock.now() - killed_at <= 60 + 10
    for sim in sims[:2]:
        assert sim.box.control_state(clock.now()) == ControlState.SCHEDULE

    # restart: control resumes, no command applied twice (command_seq only moves on)
    applied: list[list[int]] = [[s] for s in seqs]
    await service.start()

    async def resumed() -> bool:
        for i, sim in enumerate(sims[:2]):
            if sim.box.applied_seq != applied[i][-1]:
                applied[i].append(sim.box.applied_seq)
        return all(s.box.control_state(clock.now()) == ControlState.REMOTE_LIVE for s in sims[:2])

    await until(resumed, 30, "remote control again after the restart")
    for seq in applied[:2]:
        assert seq == sorted(set(seq)), seq

    # unpairing releases the box at once: no live commands, its own logic for every device
    box_id = (await owner.call("GET", f"/v1/app/sites/{sites[1]}/boxes"))[0]["id"]
    await owner.call("DELETE", f"/v1/app/sites/{sites[1]}/boxes/{box_id}")
    box = sims[1].box

    async def released() -> bool:
        layers = box.resolve(clock.now()).layers
        return box.live is None and all(v == Layer.LOCAL for v in layers.values())

    await until(released, 10, "the unpaired box released")
    # released by the service, not by its watchdog: no fallback latch, and the schedule in
    # force is the one without commands (flags 7: battery auto, no wallbox, no heat-pump command)
    assert not box.latched
    schedule = box.persistent.schedule
    assert schedule is not None and all(slot["flags"] == 7 for slot in schedule.slots)

    async def not_configured() -> bool:
        return (await owner.status(sites[1]))["state"] == "not_configured"

    await until(not_configured, 3, "the unpaired site not configured")

    await _pull_box(owner, pull_code, clock)


async def _pull_box(owner: Owner, code: str, clock: ScaledRealClock) -> None:
    """A box without a Modbus address pulls: telemetry in, schedule out with ETag/304."""
    site = await add_site(owner, "pull home", "SN-PULL", code)
    box = {"Authorization": f"Bearer {owner.boxes[site]}"}
    client = owner.client

    async def post_soc(soc: float) -> None:
        now = pd.Timestamp(clock.now(), unit="s", tz="UTC").floor("s")
        samples = [
            {"device": "battery", "ts": now.isoformat(), "fields": {"power_kw": 0.0, "soc": soc}},
            {"device": "grid", "ts": now.isoformat(), "fields": {"power_kw": 0.5}},
            {"device": "house", "ts": now.isoformat(), "fields": {"power_kw": 0.5}},
            {"device": "pv", "ts": now.isoformat(), "fields": {"power_kw": 0.0}},
        ]
        r = await client.post("/v1/gateway/telemetry", json={"samples": samples}, headers=box)
        assert r.status_code == 200 and r.json()["accepted"] == 4, r.text

    await post_soc(0.95)

    async def planned() -> bool:
        status = await owner.status(site)
        return status["state"] == "schedule_only" and bool(status["last_plan_at"])

    await until(planned, 15, "the pull box planned")
    first = await client.get("/v1/gateway/schedule", headers=box)
    assert first.status_code == 200 and first.json()["slots"], first.text
    again = await client.get(
        "/v1/gateway/schedule", headers=box | {"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    # the posted SOC is where the plan starts: 95 % +- one slot of 5 kW on 10 kWh
    soc0 = first.json()["slots"][0]["values"]["battery-soc"]
    assert abs(soc0 - 0.95) <= 5 * 0.25 / 10 + 1e-6, soc0
