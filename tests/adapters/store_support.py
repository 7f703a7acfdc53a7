"""Shared fixtures and helpers of the store tests (imported by the test_store_* modules)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from hbopt.adapters.store import StoreSettings, TelemetryStore, make_store
from hbopt.adapters.telemetry import Sample

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real VictoriaMetrics on 127.0.0.1 (free port, tmp storage); yields its base URL."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        reason = (
            "victoria-metrics binary not found; install the Debian package victoria-metrics "
            "(scripts/install-test-servers does)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = _free_port()
    args = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={tmp_path_factory.mktemp('vm')}",
        # InfluxDB keeps one value per series and time; VictoriaMetrics only with dedup on.
        "-dedup.minScrapeInterval=1ms",
        "-retentionPeriod=100y",
        "-loggerLevel=ERROR",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for attempt in Retrying(
            stop=stop_after_delay(30),
            wait=wait_fixed(0.05),
            retry=retry_if_exception_type(httpx.HTTPError),
            reraise=True,
        ):
            with attempt:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
