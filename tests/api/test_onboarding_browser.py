"""A new owner from nothing to a set-up home in a real browser, without the CLI.

Real parts only: ``hbopt serve`` as its own process on a free 127.0.0.1 port, mailing through
aiosmtpd on another; the operator registers the box with ``hbopt api-box``; Playwright drives
Debian's Chromium through sign-up, the mailed confirmation link (read from the SMTP server),
a password reset by mail, adding the site, pairing the box, the equipment and the charging mode.
With the site runtime (``hbopt api-box --modbus``), the box is a simulator on the service's
accelerated clock and the site's status must say "remote control".
Every onboarding page is photographed at 1440 px and 360 px into
``out/screenshots/onboarding/`` and checked for sideways scrolling at 360 px. The service's
access log and request log must not contain either mailed token.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pandas as pd
import pytest

from api.settings import get_settings
from hbopt.cli import main as hbopt_main
from tests.api.smtp_server import SmtpServer, free_port, smtp_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots" / "onboarding"
TIMEOUT_MS = 15_000
EMAIL = "new.owner@example.org"
PASSWORD = "first long password"
NEW_PASSWORD = "second long password"
SERIAL = "HB-ONB-0001"
SIM_START = datetime(2024, 6, 12, 8, 0, tzinfo=UTC)  # inside the bundled prices and weather
SPEED = 30.0
LINK_RE = re.compile(r"(http://\S+/ui/(?:confirm-email|reset-password)#token=([\w-]+))")

if not CHROMIUM.exists() or shutil.which("chromium") is None:
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} missing: scripts/install-test-servers installs chromium")
    pytest.skip(
        f"{CHROMIUM} missing (apt-get install chromium, or run scripts/install-test-servers)",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@dataclass
class Service:
    base: str
    log: Path
    database: Path
    env: dict[str, str]
    smtp: SmtpServer
    controls: bool  # the service controls paired boxes (the site runtime is there)
    anchor: float  # wall time at which the service's clock reads SIM_START (when it controls)

    def hbopt(self, *args: str) -> str:
        """Run an operator command (in this process) against the service's database; its stdout."""
        out = io.StringIO()
        with mock.patch.dict(os.environ, self.env), contextlib.redirect_stdout(out):
            get_settings.cache_clear()  # the command reads the settings from this environment
            try:
                assert hbopt_main(list(args)) == 0
            finally:
                get_settings.cache_clear()
        return out.getvalue().strip()

    def mailed_link(self, after: int) -> tuple[str, str]:
        mail = self.smtp.inbox.wait_for(EMAIL, after=after)
        match = LINK_RE.search(mail.get_content())
        assert match is not None, mail.get_content()
        return match.group(1), match.group(2)


def _runtime_controls_boxes() -> bool:
    """Whether ``hbopt api-box`` records a box's Modbus address (the service then controls it)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        hbopt_main(["api-box", "--help"])
    return "--modbus" in out.getvalue()


def _wait_for_line(log: Path, pattern: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while pattern not in log.read_text():
        assert time.monotonic() < deadline, f"{pattern!r} not in {log}:\n{log.read_text()}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("onboarding")
    port = free_port()
    controls, anchor = _runtime_controls_boxes(), time.time()
    with smtp_server() as smtp:
        env = {
            **os.environ,
            "HBOPT_DATABASE_PATH": str(tmp / "api.sqlite3"),
            "HBOPT_TELEMETRY_PATH": str(tmp / "telemetry.sqlite3"),
            "HBOPT_JWT_SECRET": "onboarding-test-secret-0123456789abcdef",
            "HBOPT_PASSWORD_TIME_COST": "1",
            "HBOPT_PASSWORD_MEMORY_COST_KIB": "64",
            "HBOPT_INPUT_JOBS": "false",  # bundled inputs: no fetches beyond 127.0.0.1
            "HBOPT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "HBOPT_SMTP_HOST": smtp.host,
            "HBOPT_SMTP_PORT": str(smtp.port),
            "HBOPT_SMTP_SECURITY": "none",
            "HBOPT_MAIL_FROM": "Heartbeat <noreply@heartbeat.example>",
        }
        if controls:
            # The control loop on an accelerated clock inside the bundled prices and weather,
            # shared with the box (a 15-minute slot is 30 s); tokens outlive the slower steps.
            env |= {
                "HBOPT_CLOCK_SPEED": str(SPEED),
                "HBOPT_CLOCK_START": SIM_START.isoformat(),
                "HBOPT_CLOCK_ANCHOR": repr(anchor),
                "HBOPT_ACCESS_TOKEN_TTL_S": "3600",
                "HBOPT_SOLVER_WORKERS": "1",
                "HBOPT_HORIZON_SLOTS": "48",
                "HBOPT_SCHEDULE_SLOTS": "48",
            }
        log = tmp / "service.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "hbopt", "serve", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_line(log, "Uvicorn running", 60.0)
            base = f"http://127.0.0.1:{port}"
            yield Service(base, log, tmp / "api.sqlite3", env, smtp, controls, anchor)
        finally:
            process.terminate()
            process.wait(timeout=15)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        tab = context.new_page()
        yield tab
        context.close()
        browser.close()


def snap(page: Page, name: str) -> None:
    """Full-page screenshots at 1440 and 360 px; at 360 px nothing may scroll sideways."""
    page.screenshot(path=SHOTS / f"{name}-1440.png", full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.screenshot(path=SHOTS / f"{name}-360.png", full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    assert overflow <= 0, f"{name}: {overflow} px sideways scroll at 360 px"


def _sign_up_and_confirm(page: Page, service: Service) -> str:
    page.goto(f"{service.base}/")
    expect(page.locator("#signin")).to_be_visible()
    snap(page, "01-sign-in")
    page.click("#to-signup")
    page.fill("#signup input[name=email]", EMAIL)
    page.fill("#signup input[name=password]", PASSWORD)
    snap(page, "02-sign-up")
    mails = len(service.smtp.inbox.messages)
    page.click("#signup button[type=submit]")
    expect(page.locator("#signup-sent")).to_contain_text(EMAIL)
    snap(page, "03-check-your-mail")

    link, token = service.mailed_link(after=mails)
    assert link.startswith(f"{service.base}/ui/confirm-email#token=")
    page.goto(link)
    expect(page.locator("#notice")).to_contain_text(f"{EMAIL} is confirmed")
    assert "token" not in page.url  # the page took the token out of the address bar
    expect(page.locator("#signin input[name=email]")).to_have_value(EMAIL)
    snap(page, "04-confirmed")
    # The link works once.
    page.goto(link)
    expect(page.locator("#link-invalid")).to_be_visible()
    snap(page, "04b-link-used")
    return token


def _reset_password(page: Page, service: Service) -> str:
    page.goto(f"{service.base}/ui/#/forgot")
    page.fill("#forgot input[name=email]", EMAIL)
    snap(page, "05a-forgot-password")
    mails = len(service.smtp.inbox.messages)
    page.click("#forgot button[type=submit]")
    expect(page.get_by_role("status")).to_contain_text("reset link is on its way")
    link, token = service.mailed_link(after=mails)
    assert link.startswith(f"{service.base}/ui/reset-password#token=")
    page.goto(link)
    expect(page.locator("#reset")).to_be_visible()
    assert "token" not in page.url
    page.fill("#reset input[name=new_password]", NEW_PASSWORD)
    snap(page, "05-reset-password")
    page.click("#reset button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("password is changed")
    return token


def _add_site_and_pair(page: Page, service: Service, code: str) -> str:
    page.fill("#signin input[name=email]", EMAIL)
    page.fill("#signin input[name=password]", PASSWORD)
    page.click("#signin button[type=submit]")
    expect(page.locator("#signin .error")).to_contain_text("Wrong email or password")
    page.fill("#signin input[name=password]", NEW_PASSWORD)
    page.click("#signin button[type=submit]")
    expect(page.locator("#no-sites")).to_be_visible()
    snap(page, "06-no-sites")
    page.click("#add-site")
    page.fill("#site-form input[name=name]", "Sonnenhof")
    page.fill("#site-form input[name=latitude]", "48.1374")
    page.fill("#site-form input[name=longitude]", "11.5755")
    page.select_option("#site-form select[name=timezone]", "Europe/Vienna")
    snap(page, "07-add-site")
    page.click("#site-form button[type=submit]")

    expect(page.locator("#pair-form")).to_be_visible()
    site_id = page.url.split("#/site/")[1].split("/")[0]
    page.fill("#pair-form input[name=serial]", SERIAL)
    page.fill("#pair-form input[name=starter_code]", "WRONGCODE1")
    page.click("#pair-form button[type=submit]")
    expect(page.locator("#pair-form .error")).to_contain_text("wrong or used starter code")
    snap(page, "08-pair-box")
    page.fill("#pair-form input[name=starter_code]", code)
    page.click("#pair-form button[type=submit]")
    expect(page.locator("#paired")).to_contain_text(SERIAL)
    snap(page, "09-box-paired")
    page.click("#to-equipment")
    return site_id


def _enter_equipment(page: Page) -> None:
    form = page.locator("#equipment-form")
    expect(form.locator("input[name=latitude]")).to_have_value("48.1374")
    form.locator("input[name='pv.peak_kw']").fill("9.5")
    form.locator("select[name='pv.azimuth_deg']").select_option("225")
    form.locator("input[name='battery.capacity_kwh']").fill("7.5")
    form.locator("input[name='battery.reserve_soc']").fill("20")
    form.locator("[data-heatpump] button.remove").click()  # this home heats with gas
    expect(form.locator("[data-heatpump]")).to_have_count(0)
    form.locator("#add-wallbox").click()
    form.locator("input[name='wallboxes.1.name']").fill("ev")  # a second "ev": the API refuses
    form.locator("input[name='wallboxes.1.max_current_a']").fill("32")
    form.locator("input[name='grid.feed_in_cap_kw']").fill("5.7")
    form.locator("button[type=submit]").click()
    expect(form.locator(".error")).to_contain_text("ev")
    expect(form.locator("input[name='wallboxes.1.name']")).to_have_attribute("aria-invalid", "true")
    snap(page, "10-equipment-refused")
    form.locator("input[name='wallboxes.1.name']").fill("garage")
    expect(form.locator("input[name='wallboxes.1.name']")).not_to_have_attribute(
        "aria-invalid", "true"
    )
    snap(page, "11-equipment")
    form.locator("button[type=submit]").click()


def _choose_modes(page: Page, site_id: str) -> None:
    expect(page.locator("#setup-mode")).to_be_visible()
    page.locator("[data-wallbox=ev] input[value=solar]").check()
    page.locator("[data-wallbox=garage] input[value=smart]").check()
    snap(page, "12-charging-mode")
    page.click("#finish")
    page.wait_for_url(re.compile(rf"#/site/{site_id}/live$"))
    expect(page.locator("#page-live")).to_be_visible()


def _owner_api(service: Service) -> httpx.Client:
    tokens = httpx.post(
        f"{service.base}/v1/auth/token", json={"email": EMAIL, "password": NEW_PASSWORD}
    )
    assert tokens.status_code == 200, tokens.text
    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    return httpx.Client(base_url=service.base, headers=headers, timeout=10.0)


def _assert_stored(service: Service, site_id: str) -> None:
    with _owner_api(service) as api:
        site = api.get(f"/v1/app/sites/{site_id}").json()
        assert (site["name"], site["timezone"]) == ("Sonnenhof", "Europe/Vienna")
        boxes = api.get(f"/v1/app/sites/{site_id}/boxes").json()
        assert [(b["serial"], b["active"]) for b in boxes] == [(SERIAL, True)]
        stored = api.get(f"/v1/app/sites/{site_id}/equipment").json()
        modes = {w["name"]: w["mode"] for w in api.get(f"/v1/app/sites/{site_id}/wallboxes").json()}
    eq = stored["equipment"]
    assert stored["source"] == "site"
    assert (eq["latitude"], eq["longitude"]) == (48.1374, 11.5755)
    assert (eq["pv"]["peak_kw"], eq["pv"]["azimuth_deg"], eq["pv"]["tilt_deg"]) == (9.5, 225, 35)
    assert (eq["battery"]["capacity_kwh"], eq["battery"]["reserve_soc"]) == (7.5, 0.2)
    assert eq["heat_pumps"] == []
    wallboxes = [(w["name"], w["max_current_a"]) for w in eq["wallboxes"]]
    assert wallboxes == [("ev", 16), ("garage", 32)]
    assert eq["grid"]["feed_in_cap_kw"] == 5.7
    assert modes == {"ev": "solar", "garage": "smart"}


def _assert_no_token_logged(service: Service, tokens: list[str]) -> None:
    time.sleep(1.2)  # the request log reaches SQLite within a second
    text = service.log.read_text()
    access = [line for line in text.splitlines() if re.search(r'HTTP/1\.1" \d{3}', line)]
    assert any("GET /ui/confirm-email" in line for line in access), text
    assert any("GET /ui/reset-password" in line for line in access), text
    rows = sqlite3.connect(service.database).execute("SELECT * FROM request_log").fetchall()
    assert any("/v1/auth/password-reset/confirm" in row for row in rows)
    for token in tokens:
        assert all(token not in line for line in access)
        assert all(token not in str(value) for row in rows for value in row)


@dataclass
class Onboarded:
    site_id: str
    tokens: list[str]  # the confirmation and the reset token, as mailed


class BoxThread:
    """The box simulator (pymodbus server + physical twin) on the service's accelerated clock.

    In this process, on its own event loop, because the box and the service must read the same
    simulated time (same start, anchor and speed); ``hbopt box-sim`` starts its clock when its
    own start-up ends.
    """

    def __init__(self, anchor: float) -> None:
        self.anchor = anchor
        self.loop = asyncio.new_event_loop()
        self.sim: Any = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sim = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(60)

    async def _start(self) -> Any:
        from scheduler.clock import ScaledRealClock  # with the site runtime only
        from simulation.box import BoxConfig, HeartbeatBox
        from simulation.box_sim import start_box_simulator
        from simulation.twin import Twin

        clock = ScaledRealClock(SIM_START.timestamp(), SPEED, self.anchor)
        twin = Twin.from_bundled_data(pd.Timestamp(SIM_START).floor("D"), 2)
        box = HeartbeatBox(twin, clock, BoxConfig(SERIAL, watchdog_timeout_s=60))
        return await start_box_simulator(box, tick_interval_s=0.02)

    @property
    def port(self) -> int:
        return int(self.sim.port)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def onboarded(service: Service, page: Page) -> Iterator[Onboarded]:
    """The whole onboarding in the browser, once; the tests below check its outcome."""
    box = BoxThread(service.anchor) if service.controls else None
    if box is not None:
        code = service.hbopt("api-box", "--serial", SERIAL, "--modbus", f"127.0.0.1:{box.port}")
    else:
        code = service.hbopt("api-box", "--serial", SERIAL)
    try:
        tokens = [_sign_up_and_confirm(page, service), _reset_password(page, service)]
        site_id = _add_site_and_pair(page, service, code.splitlines()[-1])
        _enter_equipment(page)
        _choose_modes(page, site_id)
        yield Onboarded(site_id, tokens)
    finally:
        if box is not None:
            box.stop()


def test_new_owner_sets_up_a_home_in_the_browser(onboarded: Onboarded, service: Service) -> None:
    _assert_stored(service, onboarded.site_id)


def test_mailed_tokens_reach_no_log(onboarded: Onboarded, service: Service) -> None:
    _assert_no_token_logged(service, onboarded.tokens)


def test_the_new_home_is_under_remote_control(
    onboarded: Onboarded, service: Service, page: Page
) -> None:
    if not service.controls:
        snap(page, "13-live")
        pytest.skip(
            "waits for the site runtime: `hbopt serve` controlling paired sites, "
            "`hbopt api-box --modbus` and the live view's status tile (not on this branch)"
        )
    status: dict[str, object] = {}
    with _owner_api(service) as api:
        deadline = time.monotonic() + 120.0
        while status.get("state") != "remote" and time.monotonic() < deadline:
            status = api.get(f"/v1/app/sites/{onboarded.site_id}/status").json()
            time.sleep(0.5)
    tail = "\n".join(service.log.read_text().splitlines()[-40:])
    assert status.get("state") == "remote", f"{json.dumps(status)}\n{tail}"
    expect(page.get_by_text("remote control", exact=True)).to_be_visible()
    snap(page, "13-live-remote-control")
