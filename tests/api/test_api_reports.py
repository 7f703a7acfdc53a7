"""The monthly PDF report through the API: its text layer carries the same figures as the
highlights API for the same month, and it renders to pages (poppler's pdftoppm)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.api.conftest import Api, FakeClock, World, build_world, start_api
from tests.insights.month_data import month_flows, telemetry_samples

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None,
    reason="poppler-utils not installed (scripts/install-test-servers)",
)


@pytest.fixture(scope="module")
def june_samples() -> list[dict[str, object]]:
    return telemetry_samples(month_flows("2025-06-01"))


@pytest.fixture
def world_july(tmp_path: Path) -> Iterator[World]:
    apis = start_api(tmp_path, FakeClock(datetime(2025, 7, 2, 8, 0, tzinfo=UTC)))
    api: Api = next(apis)
    yield build_world(api)
    next(apis, None)


def _post(world: World, samples: list[dict[str, object]]) -> None:
    """Post the month as the box would: each day's samples shortly after that day."""
    per_day = 96 * 5
    for i in range(0, len(samples), per_day):
        batch = samples[i : i + per_day]
        last = datetime.fromisoformat(str(batch[-1]["ts"]))
        world.api.clock.now = last + timedelta(minutes=20)
        r = world.api.client.post(
            "/v1/gateway/telemetry", json={"samples": batch}, headers=world.headers("box")
        )
        assert r.status_code == 200 and r.json()["accepted"] == len(batch), r.text[:300]


def _number(text: str, label: str) -> float:
    """The first number after ``label`` on its line of the PDF's text layer."""
    line = next(ln for ln in text.splitlines() if label in ln)
    match = re.search(r"(-?[\d,]+\.\d+)", line.split(label, 1)[1])
    assert match, line
    return float(match.group(1).replace(",", ""))


@needs_poppler
def test_monthly_report_figures_equal_the_highlights_of_the_month(
    world_july: World, june_samples: list[dict[str, object]], tmp_path: Path
) -> None:
    world = world_july
    _post(world, june_samples)
    world.api.clock.now = datetime(2025, 7, 2, 8, 0, tzinfo=UTC)
    site = world.site_a
    month = world.api.client.get(
        f"/v1/app/sites/{site}/highlights?period=month&start=2025-06-01&end=2025-07-01",
        headers=world.headers("owner"),
    )
    assert month.status_code == 200, month.text
    (m,) = month.json()["periods"]
    assert m["complete"] is True

    response = world.api.client.get(
        f"/v1/app/sites/{site}/reports/2025-06.pdf", headers=world.headers("supporter")
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Energy report June 2025" in text
    assert _number(text, "Solar production") == pytest.approx(m["pv_kwh"], abs=0.05)
    assert _number(text, "Consumption (house, car, heat pump)") == pytest.approx(
        m["consumption_kwh"], abs=0.05
    )
    assert _number(text, "Bought from the grid") == pytest.approx(m["import_kwh"], abs=0.05)
    assert _number(text, "Sold to the grid") == pytest.approx(m["export_kwh"], abs=0.05)
    assert _number(text, "Self-sufficiency (consumption from own solar)") == pytest.approx(
        m["autarky"] * 100, abs=0.05
    )
    assert _number(text, "Saved against no solar and no battery") == pytest.approx(
        m["savings_vs_no_pv_eur"], abs=0.005
    )
    assert _number(text, "CO2 caused by grid electricity") == pytest.approx(
        m["co2_caused_kg"], abs=0.05
    )
    bill = _number(text, "Energy bill")
    assert bill == pytest.approx(abs(m["cost_eur"]), abs=0.005)
    assert ("you earn" in text) == (m["cost_eur"] < 0)
    # car sessions: the month's EV energy, in sessions that add up
    sessions = re.findall(r"(\d+) sessions, ([\d.]+) kWh", text)
    assert sessions and float(sessions[0][1]) == pytest.approx(m["ev_kwh"], abs=0.1)
    # it renders: every page becomes a PNG
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True)
    assert sorted(p.name for p in tmp_path.glob("page*.png"))


def test_report_errors(world: World) -> None:
    client, headers = world.api.client, world.headers("owner")
    base = f"/v1/app/sites/{world.site_a}/reports"
    assert client.get(f"{base}/2025-13.pdf", headers=headers).status_code == 422
    assert client.get(f"{base}/1800-01.pdf", headers=headers).status_code == 422
    empty = client.get(f"{base}/2025-06.pdf", headers=headers)
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "no_telemetry"
