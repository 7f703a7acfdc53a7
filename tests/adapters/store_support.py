"""Shared fixtures and helpers of the store tests (imported by the test_store_* modules)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.store import StoreSettings, TelemetryStore, make_store
from adapters.store.telemetry import Sample
from adapters.store.victoria_metrics import binary_path, run_victoria_metrics

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def fixed_clock() -> datetime:
    return NOW


def pv_and_battery(site: str, start: datetime, minutes: int) -> list[Sample]:
    """A site's 1-minute PV and battery samples; PV power = minute index / 10 [kW]."""
    samples = []
    for i in range(minutes):
        ts = start + i * MINUTE
        samples.append(Sample(site, "pv", ts, {"power_kw": i / 10}))
        samples.append(Sample(site, "battery", ts, {"power_kw": -1.0, "soc": 0.5}))
    return samples


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[TelemetryStore]:
    store = make_store(StoreSettings(data_dir=tmp_path), clock=fixed_clock)
    yield store
    store.close()


@pytest.fixture(scope="module")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real VictoriaMetrics on 127.0.0.1 (free port, tmp storage); yields its base URL."""
    binary = binary_path()
    if binary is None:
        reason = (
            "victoria-metrics binary not found; install the Debian package victoria-metrics "
            "(scripts/install-test-servers does)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with run_victoria_metrics(tmp_path_factory.mktemp("vm"), binary) as url:
        yield url


def vm_export(url: str, site: str) -> dict[str, list[tuple[int, float]]]:
    """Every stored point of a site per series name, as (epoch ms, value), via /api/v1/export."""
    httpx.get(f"{url}/internal/force_flush", timeout=10).raise_for_status()
    response = httpx.get(
        f"{url}/api/v1/export", params={"match[]": f'{{site="{site}"}}'}, timeout=30
    )
    response.raise_for_status()
    series: dict[str, list[tuple[int, float]]] = {}
    for line in response.text.splitlines():
        item = json.loads(line)
        points = list(zip(item["timestamps"], item["values"], strict=True))
        series.setdefault(item["metric"]["__name__"], []).extend(points)
    return series
