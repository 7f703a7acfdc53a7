"""The web dashboard in a real browser: Playwright driving Debian's Chromium against the app
under uvicorn on a free loopback port.

The server runs on a clock that moves with real time but starts on 2025-06-10 04:00 UTC,
inside the bundled price and weather data, so highlights and plans have real prices. The test
posts telemetry through the gateway with a paired box's token while the page is open, and plays
the scheduler's part for plans: it solves the bundled home with the charging mode the API
reports and stores the plan, as the scheduler does. Screenshots go to ``out/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn

from adapters.store import Plan as StoredPlan
from adapters.store import PlanSummary as StoredSummary
from adapters.store import StoreSettings, TelemetryStore, make_store
from adapters.store.telemetry import Sample
from api.deps import Services
from api.mailer import OutboxMailer
from api.main import create_app
from api.settings import Settings
from optimizer import ChargingMode, optimize
from scheduler.scenario import Home, scenario_problem

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIM_START = datetime(2025, 6, 10, 4, 0, tzinfo=UTC)  # 06:00 in Berlin
PASSWORD = "correct horse battery"
SCREENSHOTS = Path(
    os.environ.get("HBOPT_SCREENSHOTS", Path(__file__).resolve().parents[2] / "out" / "screenshots")
)
#: Desktop and phone widths every page is shot at; nothing may scroll sideways at the phone's.
WIDTHS = (1440, 360)
#: The long-history site's telemetry starts here (prices are bundled from 2024-01-01 on).
HISTORY_START = datetime(2024, 12, 1, tzinfo=UTC)
TIMEOUT_MS = 10_000

if not CHROMIUM.exists() or shutil.which("chromium") is None:
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} missing: scripts/install-test-servers installs chromium")
    pytest.skip(
        f"{CHROMIUM} missing (apt-get install chromium, or run scripts/install-test-servers)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

from adapters.clock import SimClock  # noqa: E402
from adapters.heartbeat.gateway_sink import GatewaySink  # noqa: E402
from notifications import EventKind, SiteSnapshot, SiteWatch  # noqa: E402
from scheduler.site_model import store_column  # noqa: E402
from simulation.box import BoxConfig, HeartbeatBox  # noqa: E402
from simulation.twin import Twin  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Dash:
    """The running service, its users and sites, and helpers that act as box and scheduler."""

    base: str
    services: Services
    clock: Any
    owner_email: str
    supporter_email: str
    home: str
    cottage: str
    box_token: str
    farm: str = ""

    def api(self, email: str) -> httpx.Client:
        tokens = httpx.post(
            f"{self.base}/v1/auth/token", json={"email": email, "password": PASSWORD}
        )
        assert tokens.status_code == 200, tokens.text
        headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        return httpx.Client(base_url=self.base, timeout=10.0, headers=headers)

    def post_telemetry(self, samples: list[dict[str, Any]]) -> None:
        response = httpx.post(
            f"{self.base}/v1/gateway/telemetry",
            json={"samples": samples},
            headers={"Authorization": f"Bearer {self.box_token}"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.text

    def post_reading(self, ts: datetime, pv: float, soc: float) -> None:
        """One reading of every device; the house balances PV, battery, grid, EV and HP."""
        flows = {"pv": pv, "battery": -0.5, "wallbox": 0.0, "heatpump": 0.8, "house": 0.7}
        grid = flows["house"] + flows["wallbox"] + flows["heatpump"] - pv - flows["battery"]
        fields: dict[str, dict[str, float]] = {
            "pv": {"power_kw": pv},
            "battery": {"power_kw": -0.5, "soc": soc},
            "wallbox": {"power_kw": 0.0, "connected": 1, "state": 2},
            "heatpump": {"power_kw": 0.8, "sgready": 2, "tank_temp_degc": 48.5},
            "house": {"power_kw": 0.7},
            "grid": {"power_kw": round(grid, 3)},
        }
        stamp = ts.isoformat()
        self.post_telemetry([{"ts": stamp, "device": d, "fields": f} for d, f in fields.items()])

    def schedule(self, site_id: str) -> str:
        """Plan the site as the scheduler would, with the charging mode the API reports."""
        with self.api(self.owner_email) as client:
            mode = client.get(f"/v1/app/sites/{site_id}/wallboxes/ev").json()["mode"]
        now = self.clock()
        start = pd.Timestamp(now).floor("15min")
        problem, _ = scenario_problem(Home(), start, periods=144, mode=ChargingMode(mode))
        plan = optimize(problem)
        slots = plan.slots.rename(columns=store_column)
        summary = StoredSummary(
            status=plan.summary.status,
            objective_eur=plan.summary.objective_eur,
            cost_eur=plan.summary.cost_eur,
            violations={v.name: v.amount for v in plan.summary.violations},
        )
        self.services.plans.save_plan(StoredPlan(site_id, now, slots, summary))
        return str(mode)


def _history(dash: Dash, start: datetime, end: datetime) -> None:
    """15-minute telemetry of every device from ``start`` to ``end`` (a sunny June day)."""
    samples = []
    for ts in pd.date_range(start, end, freq="15min", inclusive="left"):
        hour = ts.tz_convert("Europe/Berlin").hour + ts.minute / 60
        pv = round(max(0.0, 6.0 * (1 - ((hour - 13.0) / 7.0) ** 2)), 3)
        house, ev, hp = 0.5, (7.0 if 12 <= hour < 14 else 0.0), 0.6
        battery = 0.4 if hour >= 20 or hour < 2 else 0.0
        grid = round(house + ev + hp - pv - battery, 3)
        for device, power in (
            ("pv", pv),
            ("house", house),
            ("wallbox", ev),
            ("heatpump", hp),
            ("battery", battery),
            ("grid", grid),
        ):
            samples.append({"ts": ts.isoformat(), "device": device, "fields": {"power_kw": power}})
    dash.post_telemetry(samples)


def _long_history(dash: Dash, site_id: str, start: datetime, end: datetime) -> None:
    """15-minute telemetry of a home through the seasons, written to the store directly (the
    gateway path is covered above; 120 000 samples through HTTP would take too long).

    PV peaks at 1.5 kW in winter and 7 kW in summer with a cloudiness per day, the heat pump
    draws more in winter, the EV charges 7 kW for two hours every third day, a 10 kWh battery
    stores the surplus and covers the evening, and the grid balances the rest.
    """
    index = pd.date_range(start, end, freq="15min", inclusive="left")
    local = index.tz_convert("Europe/Berlin")
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60
    doy = local.dayofyear.to_numpy()
    rng = np.random.default_rng(7)
    clouds = rng.uniform(0.3, 1.0, size=doy.max() + 1)[doy]
    summer = 0.5 - 0.5 * np.cos(2 * np.pi * (doy - 10) / 365)  # 0 in January, 1 in July
    half_day = 4.0 + 4.0 * summer
    pv = np.clip(1 - ((hour - 13.0) / half_day) ** 2, 0, None) * (1.5 + 5.5 * summer) * clouds
    house = 0.35 + 0.6 * ((hour >= 18) & (hour < 22))
    hp = 0.3 + 1.2 * (1 - summer)
    ev = np.where((local.day.to_numpy() % 3 == 0) & (hour >= 18) & (hour < 20), 7.0, 0.0)
    load = house + hp + ev
    battery = np.zeros(len(index))  # + discharge
    energy = 5.0
    for k, surplus in enumerate(pv - load):
        power = float(np.clip(-surplus, -3.0, 3.0))  # charge the surplus, cover the deficit
        power = min(power, energy * 4) if power > 0 else max(power, (energy - 10.0) * 4)
        energy -= power / 4
        battery[k] = power
    grid = load - pv - battery
    samples = []
    for k, ts in enumerate(index.to_pydatetime()):
        for device, value in (
            ("pv", pv[k]),
            ("house", house[k]),
            ("heatpump", hp[k]),
            ("wallbox", ev[k]),
            ("battery", battery[k]),
            ("grid", grid[k]),
        ):
            samples.append(Sample(site_id, device, ts, {"power_kw": round(float(value), 4)}))
    assert dash.services.telemetry is not None
    written = dash.services.telemetry.write(samples)
    assert written.rejected == (), written.rejected[:3]


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    tmp = tmp_path_factory.mktemp("dashboard")
    shift = datetime.now(UTC) - SIM_START

    def clock() -> datetime:
        return datetime.now(UTC) - shift

    settings = Settings(
        database_path=tmp / "api.sqlite3",
        telemetry_path=tmp / "telemetry.sqlite3",
        jwt_secret="dashboard-test-secret-0123456789abcdef",
        password_time_cost=1,
        password_memory_cost_kib=64,
        live_stream_interval_s=0.25,
        live_stream_max_s=60.0,
        input_jobs=False,
    )

    def telemetry(settings: Settings, clock: Any) -> TelemetryStore:
        # raw samples kept for over a year: the long-history site's year is written at once
        store = StoreSettings(
            backend="sqlite",
            data_dir=settings.telemetry_path.parent,
            sqlite_file=settings.telemetry_path.name,
            raw_retention=timedelta(days=400),
        )
        return make_store(store, clock)

    app = create_app(settings, mailer=OutboxMailer(), clock=clock, telemetry_factory=telemetry)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # a loaded CI machine starts slowly
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    services: Services = app.state.services
    base = f"http://127.0.0.1:{port}"
    try:
        yield _populate(base, services, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _populate(base: str, services: Services, clock: Any) -> Dash:
    accounts, hasher, now = services.accounts, services.hasher, clock()
    for email in ("owner@example.org", "supporter@example.org"):
        accounts.create_user(email, hasher.hash(PASSWORD), "customer", now, confirmed=True)
    accounts.register_starter_code("HB-DASH-0001", hasher.hash("PRINTED01"), now)
    dash = Dash(base, services, clock, "owner@example.org", "supporter@example.org", "", "", "")
    with dash.api(dash.owner_email) as client:
        dash.home = client.post("/v1/app/sites", json={"name": "Home"}).json()["id"]
        dash.cottage = client.post("/v1/app/sites", json={"name": "Cottage"}).json()["id"]
        paired = client.post(
            f"/v1/app/sites/{dash.home}/boxes",
            json={"serial": "HB-DASH-0001", "starter_code": "PRINTED01"},
        )
        assert paired.status_code == 201, paired.text
        dash.box_token = paired.json()["token"]
        departure = (now + timedelta(days=1)).replace(hour=5, minute=0, second=0, microsecond=0)
        wallbox = client.put(
            f"/v1/app/sites/{dash.home}/wallboxes/ev",
            json={"mode": "smart", "departure": departure.isoformat(), "target_kwh": 48},
        )
        assert wallbox.status_code == 200, wallbox.text
        heatpump = client.put(
            f"/v1/app/sites/{dash.home}/heatpumps/hp",
            json={"comfort_min_c": 45, "comfort_max_c": 55},
        )
        assert heatpump.status_code == 200, heatpump.text
        dash.farm = client.post("/v1/app/sites", json={"name": "Farmhouse"}).json()["id"]
    _long_history(dash, dash.farm, HISTORY_START, now - timedelta(minutes=15))
    # Yesterday and today so far in Berlin (2025-06-08 22:00 UTC on), then a first reading.
    _history(dash, datetime(2025, 6, 8, 22, 0, tzinfo=UTC), now - timedelta(minutes=1))
    dash.post_reading(now - timedelta(seconds=30), pv=0.2, soc=0.55)
    return dash


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _page(browser: Browser, **context: Any) -> Page:
    # A browser far from the site: every time on the page must still be the site's (Berlin).
    page = browser.new_context(
        viewport={"width": 1100, "height": 900},
        locale="en-GB",
        timezone_id="America/New_York",
        **context,
    ).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    return page


def _sign_in(page: Page, dash: Dash, email: str) -> None:
    page.goto(f"{dash.base}/ui/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form#signin button[type=submit]")
    expect(page.get_by_role("heading", name="Your sites")).to_be_visible()


def _shot(page: Page, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def test_sign_in_and_switch_sites(browser: Browser, dash: Dash) -> None:
    page = _page(browser)
    page.goto(f"{dash.base}/")  # the front page redirects to the dashboard
    page.fill("input[name=email]", dash.owner_email)
    page.fill("input[name=password]", "wrong password!")
    page.click("form#signin button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    _shot(page, "01-sign-in")
    _sign_in(page, dash, dash.owner_email)
    sites = page.locator("#site-list li")
    expect(sites).to_have_count(3)
    expect(sites.filter(has_text="Home")).to_contain_text("owner")
    expect(page.locator("nav#tabs")).to_be_hidden()  # no site chosen yet
    _shot(page, "02-sites")
    page.click("#site-list a:has-text('Home')")
    expect(page.get_by_role("heading", name="Home: live")).to_be_visible()
    expect(page.locator(".tile[data-device=battery] [data-field=soc]")).to_have_text("SOC 55 %")
    page.select_option("#site-select", label="Cottage")
    expect(page.get_by_role("heading", name="Cottage: live")).to_be_visible()
    expect(page.locator(".tile[data-device=pv] .age")).to_have_text("no data")
    page.select_option("#site-select", label="Home")
    expect(page.get_by_role("heading", name="Home: live")).to_be_visible()
    page.context.close()


def test_live_values_follow_the_box(browser: Browser, dash: Dash) -> None:
    page = _page(browser)
    _sign_in(page, dash, dash.owner_email)
    page.goto(f"{dash.base}/ui/#/site/{dash.home}/live")
    expect(page.locator("#stream-status")).to_have_class("stream on")
    page.evaluate("window.__same_page = true")
    pv = page.locator(".tile[data-device=pv] [data-field=power_kw]")
    grid = page.locator(".tile[data-device=grid]")
    sunny = (dash.clock() - timedelta(seconds=2)).replace(microsecond=0)
    dash.post_reading(sunny, pv=3.21, soc=0.57)
    expect(pv).to_have_text("3.21 kW")
    # house 0.7 + HP 0.8 + battery charging 0.5 - PV 3.21 = 1.21 kW exported
    expect(grid.locator("[data-field=power_kw]")).to_have_text("1.21 kW")
    expect(grid.locator(".flow")).to_have_text("exporting to the grid")
    expect(page.locator("#flowline")).to_contain_text(
        "From solar 3.21 kW → to house 0.70 kW + heat pump 0.80 kW"
        " + battery 0.50 kW + grid 1.21 kW."
    )
    expect(page.locator(".tile[data-device=battery] [data-field=soc]")).to_have_text("SOC 57 %")
    # the diagram: solar and nothing else feeds the busbar; grid and battery take from it
    diagram = page.locator("#flow-diagram")
    expect(diagram.locator("g.node[data-node=pv]")).to_have_attribute("data-kw", "3.21")
    expect(diagram.locator("g.node[data-node=grid]")).to_contain_text("export 1.21 kW")
    for device, direction in (
        ("pv", "in"),
        ("grid", "out"),
        ("battery", "out"),
        ("wallbox", "none"),
    ):
        flow = diagram.locator(f"path.flow[data-device={device}]")
        expect(flow).to_have_attribute("data-direction", direction)
    thick = [
        float(diagram.locator(f"path.flow[data-device={d}]").get_attribute("stroke-width") or 0)
        for d in ("pv", "grid", "house")
    ]
    assert thick[0] > thick[1] > thick[2]  # 3.21 kW > 1.21 kW > 0.70 kW
    expect(diagram.locator("g.node[data-node=heatpump]")).to_contain_text("store 48.5 °C")
    # today so far: the day's highlights in words (kWh and EUR)
    expect(page.locator("#today")).to_contain_text("Today so far: used")
    expect(page.locator("#today")).to_contain_text("EUR")
    # a reading's own time (as the API reports it), never "0 s ago" on a frozen clock
    with dash.api(dash.owner_email) as client:
        live = client.get(f"/v1/app/sites/{dash.home}/live").json()
    (pv_reading,) = [d for d in live["devices"] if d["device"] == "pv"]
    assert pd.Timestamp(pv_reading["ts"]).floor("s") == pd.Timestamp(sunny)
    shown = pd.Timestamp(pv_reading["ts"]).tz_convert("Europe/Berlin").strftime("%H:%M:%S")
    expect(page.locator(".tile[data-device=pv] .age")).to_have_text(f"measured {shown}")
    dash.post_reading(dash.clock(), pv=0.4, soc=0.58)
    expect(pv).to_have_text("0.40 kW")
    expect(grid.locator(".flow")).to_have_text("importing from the grid")
    expect(grid.locator("[data-field=power_kw]")).to_have_text("1.60 kW")
    expect(page.locator(".tile[data-device=heatpump]")).to_contain_text("SG-Ready 2 normal")
    expect(page.locator("#as-of")).to_contain_text("Europe/Berlin")
    assert page.evaluate("window.__same_page") is True  # updated in place, not reloaded
    _shot(page, "03-live")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.locator("#tiles .tile")).to_have_count(6)
    _shot(page, "03-live-phone")
    page.context.close()


def test_live_values_follow_the_simulated_box(browser: Browser, dash: Dash) -> None:
    """The box simulator (physical twin on the bundled data) uploads its one-minute records
    through the gateway route with its own token, and the open page follows them."""
    accounts, now = dash.services.accounts, dash.clock()
    accounts.register_starter_code("HB-DASH-SIM", dash.services.hasher.hash("PRINTED03"), now)
    with dash.api(dash.owner_email) as client:
        paired = client.post(
            f"/v1/app/sites/{dash.cottage}/boxes",
            json={"serial": "HB-DASH-SIM", "starter_code": "PRINTED03"},
        )
        assert paired.status_code == 201, paired.text
    # PV follows the weather data (hourly reference year on this date): step an hour at a
    # time, ending before "now"
    start = pd.Timestamp(now).floor("h") - pd.Timedelta(hours=2)
    sim = SimClock(start)
    sink = GatewaySink(dash.base, paired.json()["token"])
    box = HeartbeatBox(Twin.from_bundled_data(start), sim, BoxConfig(dash.cottage), sink=sink)
    page = _page(browser)
    _sign_in(page, dash, dash.owner_email)
    page.goto(f"{dash.base}/ui/#/site/{dash.cottage}/live")
    expect(page.locator("#stream-status")).to_have_class("stream on")
    pv = page.locator(".tile[data-device=pv] [data-field=power_kw]")
    soc = page.locator(".tile[data-device=battery] [data-field=soc]")
    shown = []
    for _ in range(2):
        sim.advance(60 * 60)
        box.tick()
        last = box.buffer.pending()[-1]
        assert box.upload_backlog() == 60
        expect(pv).to_have_text(f"{last.pv_kw:.2f} kW")
        expect(soc).to_have_text(f"SOC {last.battery_soc * 100:.0f} %")
        shown.append(last.pv_kw)
    assert shown[0] != shown[1]  # morning sun: the values moved while the page stayed open
    _shot(page, "03-live-simulated-box")
    page.context.close()


def test_charging_mode_changes_the_plan(browser: Browser, dash: Dash) -> None:
    assert dash.schedule(dash.home) == "smart"
    page = _page(browser)
    _sign_in(page, dash, dash.owner_email)
    page.goto(f"{dash.base}/ui/#/site/{dash.home}/plan")
    ev = page.locator("#reasons [data-device='EV charger ev']")
    expect(ev.locator(".now")).to_have_text("waiting")
    expect(ev.locator(".why")).to_contain_text("waiting for cheaper hours")
    expect(page.locator(".chart")).to_have_count(4)  # prices, power, SOC, SG-Ready
    expect(page.locator("#plan-meta")).to_contain_text("144 slots of 15 min")
    expect(page.locator("#plan-bill")).to_contain_text(
        re.compile(r"you (pay|earn) \d+\.\d\d EUR net")
    )
    # the departure card says what the API computed from the plan, in the site's time
    with dash.api(dash.owner_email) as client:
        (outlook,) = client.get(f"/v1/app/sites/{dash.home}/plan").json()["departures"]
    card = page.locator("#departures .outlook[data-wallbox=ev]")
    expect(card).to_contain_text("leaves Wed 07:00")
    expect(card.locator(".expected")).to_have_text(
        f"{outlook['expected_kwh']:.1f} kWh ({outlook['expected_soc'] * 100:.0f} %)"
    )
    if outlook["reachable"] is False:
        expect(card).to_contain_text("Target cannot be reached")
    _shot(page, "04-plan")

    page.click("nav#tabs a[data-tab=settings]")
    form = page.locator("form[data-wallbox=ev]")
    expect(form.locator("input[name=departure]")).to_have_value(
        pd.Timestamp(dash.clock() + timedelta(days=1))
        .tz_convert("Europe/Berlin")
        .strftime("%Y-%m-%dT07:00")
    )
    form.locator("select[name=mode]").select_option("now")
    form.locator("input[name=time-mon]").fill("07:30")
    form.locator("input[name=mon-target]").fill("80")
    form.locator("select[name=mon-unit]").select_option("pct")
    form.locator("input[name=time-sat]").fill("10:00")
    form.locator("input[name=sat-target]").fill("30")
    form.locator("button[type=submit]").click()
    expect(form.locator(".saved")).to_have_text("Saved: mode now, 2 weekly departures.")
    with dash.api(dash.owner_email) as client:
        stored = client.get(f"/v1/app/sites/{dash.home}/wallboxes/ev").json()
    assert stored["weekly"] == {
        "mon": {"time": "07:30", "target_kwh": None, "target_soc_pct": 80.0},
        "sat": {"time": "10:00", "target_kwh": 30.0, "target_soc_pct": None},
    }
    assert stored["target_kwh"] == 48.0  # the one-off trip is kept
    _shot(page, "05-settings")

    assert dash.schedule(dash.home) == "now"  # the next plan, made with the new mode
    page.click("nav#tabs a[data-tab=plan]")
    ev = page.locator("#reasons [data-device='EV charger ev']")
    expect(ev.locator(".now")).to_have_text("charging")
    expect(ev.locator(".why")).to_contain_text("mode 'now' charges at once")
    # the wallbox's full three-phase power at once (16 A x 3 x 230 V)
    expect(ev).to_contain_text("11.04 kW from")
    page.context.close()


def test_highlights_and_impact_card(browser: Browser, dash: Dash) -> None:
    page = _page(browser)
    _sign_in(page, dash, dash.owner_email)
    page.goto(f"{dash.base}/ui/#/site/{dash.home}/highlights")
    rows = page.locator("#highlights-table tbody tr")
    expect(rows).to_have_count(2)  # yesterday and today so far
    yesterday = rows.nth(1)
    expect(yesterday).to_contain_text("9 Jun 2025")
    # 7 kW EV for 2 h + 0.5 house and 0.6 HP for 24 h = 40.4 kWh consumed
    expect(yesterday.locator("td").nth(2)).to_have_text("40.4 kWh")
    card = page.locator("#share-card")
    expect(card).to_have_js_property("naturalWidth", 1200)
    page.click(".periods button[data-period=week]")
    expect(page.locator(".periods button[data-period=week]")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(rows).to_have_count(1)  # 9 and 10 June are in one ISO week
    expect(page.locator("#share-card")).to_have_js_property("naturalWidth", 1200)
    _shot(page, "06-highlights")
    page.context.close()


def test_grant_and_revoke_a_supporter(browser: Browser, dash: Dash) -> None:
    supporter = _page(browser)
    _sign_in(supporter, dash, dash.supporter_email)
    expect(supporter.locator("#no-sites")).to_be_visible()
    supporter_id = supporter.locator("#my-user-id").inner_text()

    owner = _page(browser)
    _sign_in(owner, dash, dash.owner_email)
    owner.goto(f"{dash.base}/ui/#/site/{dash.home}/settings")
    owner.fill("#grant-form input[name=supporter]", supporter_id)
    owner.click("#grant-form button[type=submit]")
    expect(owner.locator(f"#grants li[data-supporter='{supporter_id}']")).to_be_visible()
    _shot(owner, "07-settings-grants")

    supporter.reload()
    expect(supporter.locator("#site-list li")).to_have_count(1)
    expect(supporter.locator("#site-list li")).to_contain_text("supporter")
    supporter.click("#site-list a:has-text('Home')")
    expect(supporter.locator("#stream-status")).to_have_class("stream on")
    expect(supporter.locator(".tile[data-device=battery] [data-field=soc]")).to_have_text(
        "SOC 58 %"
    )
    supporter.click("nav#tabs a[data-tab=settings]")
    expect(supporter.locator("form[data-wallbox=ev] select[name=mode]")).to_be_disabled()
    expect(supporter.locator("#grant-form")).to_have_count(0)  # grants are the owner's
    _shot(supporter, "08-supporter-settings")
    supporter.click("nav#tabs a[data-tab=live]")
    expect(supporter.locator("#stream-status")).to_have_class("stream on")

    owner.click(f"#grants li[data-supporter='{supporter_id}'] button")
    expect(owner.locator("#grants")).to_contain_text("No supporters have access.")
    # The open live stream ends at once and the page says so; the site list is empty again.
    expect(supporter.locator("#no-access")).to_be_visible()
    _shot(supporter, "09-supporter-revoked")
    with dash.api(dash.supporter_email) as client:
        assert client.get(f"/v1/app/sites/{dash.home}/live").status_code == 404
    supporter.click("text=Back to your sites")
    expect(supporter.locator("#no-sites")).to_be_visible()
    owner.context.close()
    supporter.context.close()


def test_factory_switch_export_and_account_deletion(browser: Browser, dash: Dash) -> None:
    accounts, hasher = dash.services.accounts, dash.services.hasher
    email = "leaver@example.org"
    accounts.create_user(email, hasher.hash(PASSWORD), "customer", dash.clock(), confirmed=True)
    with dash.api(email) as client:
        site = client.post("/v1/app/sites", json={"name": "Flat"}).json()["id"]
    page = _page(browser, accept_downloads=True)
    _sign_in(page, dash, email)
    page.goto(f"{dash.base}/ui/#/site/{site}/settings")
    page.check("#factory-service")
    expect(page.locator("text=On: the factory service may access this site.")).to_be_visible()
    with dash.api(email) as client:
        assert client.get(f"/v1/app/sites/{site}").json()["factory_service"] is True
    with page.expect_download() as download:
        page.click("#export")
    exported = Path(download.value.path()).read_text()
    assert f'"id": "{site}"' in exported and '"factory_service": true' in exported

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-account")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    refused = httpx.post(f"{dash.base}/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 401
    assert accounts.get_site(site) is None
    page.context.close()


def _no_sideways_scroll(page: Page, width: int, name: str) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        """(w) => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > w + 0.5)
        .slice(0, 5).map((e) => e.tagName + '.' + e.className + '#' + e.id)""",
        width,
    )
    assert scroll <= width, f"{name} at {width} px scrolls sideways ({scroll} px): {wide}"


def test_every_page_at_desktop_and_phone_width(browser: Browser, dash: Dash) -> None:
    """Live, plan, highlights (day, week, month, year) and settings at 1440 and 360 px: each is
    shot for a person to look at, and none may scroll sideways on the phone."""
    dash.schedule(dash.home)
    for width in WIDTHS:
        page = _page(browser)
        page.set_viewport_size({"width": width, "height": 900})
        _sign_in(page, dash, dash.owner_email)
        _no_sideways_scroll(page, width, "sites")
        page.goto(f"{dash.base}/ui/#/site/{dash.home}/live")
        expect(page.locator("#flow-diagram g.node")).to_have_count(6)
        expect(page.locator("#today")).to_contain_text("Today so far: used")
        _shot(page, f"10-live-{width}")
        _no_sideways_scroll(page, width, "live")
        page.goto(f"{dash.base}/ui/#/site/{dash.home}/plan")
        expect(page.locator("#departures .outlook")).to_have_count(1)
        _shot(page, f"11-plan-{width}")
        _no_sideways_scroll(page, width, "plan")
        page.goto(f"{dash.base}/ui/#/site/{dash.farm}/highlights")
        # 14 days, 84 days = 13 ISO weeks (two of them in part), Dec 2024 .. Jun 2025, 2 years
        for period, count in (("day", 14), ("week", 13), ("month", 7), ("year", 2)):
            page.click(f".periods button[data-period={period}]")
            expect(page.locator(".periods button[aria-pressed=true]")).to_have_attribute(
                "data-period", period
            )
            rows = page.locator("#highlights-table tbody tr")
            expect(rows).to_have_count(count)
            expect(page.locator("#share-card")).to_have_js_property("naturalWidth", 1200)
            if period == "day" and width == WIDTHS[0]:
                # the legend holds the range's totals; hovering a period shows that period's
                energy = page.locator(".bars").first
                when = energy.locator(".legend .when")
                expect(when).to_have_text("Total, 14 days")
                energy.locator("rect.hit").first.hover()
                expect(when).to_have_text("28 May 2025")
                page.mouse.move(0, 0)
                expect(when).to_have_text("Total, 14 days")
            _shot(page, f"12-highlights-{period}-{width}")
            _no_sideways_scroll(page, width, f"highlights {period}")
        page.goto(f"{dash.base}/ui/#/site/{dash.home}/settings")
        expect(page.locator("form[data-wallbox=ev] .weekly input[type=time]")).to_have_count(7)
        _shot(page, f"13-settings-{width}")
        _no_sideways_scroll(page, width, "settings")
        page.context.close()


def test_api_docs_render_without_network(browser: Browser, dash: Dash) -> None:
    """/docs (Swagger UI) and /redoc load every asset from the service: with every other host
    blocked, both render the API's operations and nothing tried to leave the machine."""
    page = _page(browser)
    outside: list[str] = []

    def only_loopback(route: Any) -> None:
        if route.request.url.startswith(dash.base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_loopback)
    page.goto(f"{dash.base}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Heartbeat Optimizer API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    _shot(page, "20-docs-swagger", full_page=False)
    page.goto(f"{dash.base}/redoc")
    expect(page.locator("h1").first).to_contain_text("Heartbeat Optimizer API")
    expect(page.get_by_text("/v1/auth/token").first).to_be_attached()
    _shot(page, "21-docs-redoc", full_page=False)
    assert outside == []


def test_plan_page_says_which_slots_ran_on_estimates(browser: Browser, dash: Dash) -> None:
    """A plan stored with the controller's per-slot flags: the page names the estimated
    prices (from which slot) and the clear-sky PV."""
    dash.schedule(dash.home)
    telemetry = dash.services.plans
    stored = telemetry.latest_plan(dash.home)
    assert stored is not None
    slots = stored.slots.copy()
    n = len(slots)
    slots["price-is_estimate"] = [0.0] * 64 + [1.0] * (n - 64)
    slots["weather-is_estimate"] = 1.0
    telemetry.save_plan(StoredPlan(dash.home, stored.created_at, slots, stored.summary))
    page = _page(browser)
    _sign_in(page, dash, dash.owner_email)
    page.goto(f"{dash.base}/ui/#/site/{dash.home}/plan")
    note = page.locator("#plan-inputs")
    expect(note).to_contain_text(f"prices are estimates in {n - 64} of {n} slots")
    expect(note).to_contain_text("clear sky scaled by recent production")
    page.context.close()


def test_bell_feed_settings_and_monthly_report(browser: Browser, dash: Dash) -> None:
    now = dash.clock()
    watch = SiteWatch()
    snap = SiteSnapshot(
        dash.home, "Home", "Europe/Berlin", now, ev_connected=True, ev_energy_kwh=20.0,
        ev_target_kwh=48.0, ev_departure=now + timedelta(hours=3), ev_shortfall_kwh=9.5,
        ev_shortfall_reason="the wallbox delivers at most 11 kW for the 3 h left",
    )  # fmt: skip
    (event,) = watch.observe(snap)
    assert event.kind == EventKind.EV_TARGET_AT_RISK
    notifier = dash.services.notifier
    assert notifier is not None
    notifier.publish(event)
    notifier.drain()
    for width in (1440, 360):
        page = _page(browser)
        page.set_viewport_size({"width": width, "height": 900})
        _sign_in(page, dash, dash.owner_email)
        expect(page.locator("#bell .count")).to_have_text("1")
        page.click("#bell")
        item = page.locator("#feed .feed-item").first
        expect(item).to_contain_text("your car will not reach its target")
        expect(item).to_contain_text("9.5 kWh short")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"notifications page scrolls sideways at {width} px ({scroll})"
        _shot(page, f"10-notifications-{width}")
        page.context.close()
    # settings: e-mail for "car charged", a ntfy webhook
    page = _page(browser)
    _sign_in(page, dash, dash.owner_email)
    page.goto(f"{dash.base}/ui/#/notifications")
    page.check("input[name='ev_charged.email']")
    page.fill("input[name=webhook_url]", "https://ntfy.example.test/home")
    page.select_option("select[name=webhook_format]", "ntfy")
    page.click("#notify-settings button[type=submit]")
    expect(page.locator("#notify-settings .saved")).to_have_text("Saved.")
    page.click("#read-all")
    expect(page.locator("#bell .count")).to_be_hidden()
    store = dash.services.notifications
    assert store is not None
    owner = dash.services.accounts.get_user_by_email(dash.owner_email)
    assert owner is not None
    saved = store.settings(owner.id)
    assert "email" in saved.channels[EventKind.EV_CHARGED]
    assert saved.webhook_url == "https://ntfy.example.test/home" and saved.webhook_format == "ntfy"
    # the month's report from the highlights page
    page.goto(f"{dash.base}/ui/#/site/{dash.home}/highlights")
    page.fill("input[name=report-month]", "2025-06")
    with page.expect_download() as download:
        page.click("#report-download")
    path = download.value.path()
    assert path is not None and Path(path).read_bytes().startswith(b"%PDF")
    assert download.value.suggested_filename == "energy-report-2025-06.pdf"
    page.context.close()
