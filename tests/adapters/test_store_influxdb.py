"""The InfluxDB store's write path against a real VictoriaMetrics (InfluxDB v2 write API).

VictoriaMetrics stores a point ``battery`` with field ``soc`` as series ``battery_soc`` with
labels site/device; /api/v1/export returns every stored sample, so counting there shows
whether each point arrived exactly once. VictoriaMetrics answers Flux with 400, so the Flux
reads are covered by test_store_influxdb_live.py against a real InfluxDB 2.x.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.store import StoreError, StoreSettings, TelemetryStore, make_store
from adapters.store.influxdb import flux_string, sample_point, to_ns
from adapters.store.telemetry import Sample
from tests.adapters.store_support import (
    NOW,
    fixed_clock,
    pv_and_battery,
    victoria_metrics,
    vm_export,
)

__all__ = ["victoria_metrics"]


def influx_settings(url: str, tmp_path: Path, **changes: object) -> StoreSettings:
    base = StoreSettings(
        backend="influxdb",
        influx_url=url,
        influx_token="unused-by-victoria-metrics",
        data_dir=tmp_path,
        influx_batch_size=2000,
        retry_wait_max_s=0.01,
    )
    return StoreSettings(**{**base.__dict__, **changes})  # type: ignore[arg-type]


@pytest.fixture
def influx_store(victoria_metrics: str, tmp_path: Path) -> Iterator[TelemetryStore]:
    store = make_store(influx_settings(victoria_metrics, tmp_path), clock=fixed_clock)
    yield store
    store.close()


def test_point_has_device_measurement_site_tag_and_ns_time() -> None:
    sample = Sample("site 1", "battery", NOW, {"power_kw": 2, "soc": 0.5})
    line = sample_point(sample).to_line_protocol()
    assert line == (f"battery,device=battery,site=site\\ 1 power_kw=2,soc=0.5 {to_ns(NOW)}")
    assert to_ns(NOW) == 1_718_020_800_000_000_000


def test_flux_string_cannot_be_escaped_from() -> None:
    assert flux_string('a" or true or "') == '"a\\" or true or \\""'
    assert flux_string("${x}\\") == '"\\${x}\\\\"'


def test_resent_backlog_arrives_exactly_once(
    influx_store: TelemetryStore, victoria_metrics: str
) -> None:
    start = NOW - timedelta(days=5)
    backlog = pv_and_battery("backlog", start, 5 * 1440)
    batches = [backlog[i : i + 3000] for i in range(0, len(backlog), 3000)]
    for batch in reversed(batches):  # out of order
        assert influx_store.write(batch).accepted == len(batch)
    assert influx_store.write(backlog).accepted == len(backlog)  # the box re-sends it all
    series = vm_export(victoria_metrics, "backlog")
    assert set(series) == {"pv_power_kw", "battery_power_kw", "battery_soc"}
    expected_ms = [int((start + timedelta(minutes=i)).timestamp() * 1000) for i in range(7200)]
    for name, points in series.items():
        assert sorted(ts for ts, _ in points) == expected_ms, name
    pv = dict(series["pv_power_kw"])
    assert pv[expected_ms[100]] == pytest.approx(10.0)
    assert sum(pv.values()) / 60 == pytest.approx(sum(i / 10 for i in range(7200)) / 60)


def test_rejected_samples_are_not_written(
    influx_store: TelemetryStore, victoria_metrics: str
) -> None:
    ts = NOW - timedelta(minutes=1)
    result = influx_store.write(
        [
            Sample("bad", "battery", ts, {"power_kw": 1.0, "soc": 0.25}),
            Sample("bad", "battery", ts - timedelta(minutes=1), {"power_kw": 1.0, "soc": 2.0}),
            Sample("bad", "pv", ts, {"power_kw": math.nan}),
            Sample("bad", "pv", NOW + timedelta(hours=1), {"power_kw": 1.0}),
        ]
    )
    assert result.accepted == 1
    assert [r.index for r in result.rejected] == [1, 2, 3]
    series = vm_export(victoria_metrics, "bad")
    assert series == {
        "battery_power_kw": [(int(ts.timestamp() * 1000), 1.0)],
        "battery_soc": [(int(ts.timestamp() * 1000), 0.25)],
    }


def test_unreachable_server_is_not_acknowledged_and_resend_lands_once(
    victoria_metrics: str, tmp_path: Path
) -> None:
    batch = pv_and_battery("outage", NOW - timedelta(hours=1), 60)
    down = make_store(
        influx_settings("http://127.0.0.1:9", tmp_path / "down", write_attempts=2),
        clock=fixed_clock,
    )
    with pytest.raises(StoreError, match="not acknowledged"):
        down.write(batch)
    down.close()
    up = make_store(influx_settings(victoria_metrics, tmp_path / "up"), clock=fixed_clock)
    assert up.write(batch).accepted == 120
    assert up.write(batch).accepted == 120
    series = vm_export(victoria_metrics, "outage")
    assert {name: len(points) for name, points in series.items()} == {
        "pv_power_kw": 60,
        "battery_power_kw": 60,
        "battery_soc": 60,
    }
    up.close()


def test_flux_reads_fail_cleanly_on_a_server_without_flux(influx_store: TelemetryStore) -> None:
    with pytest.raises(StoreError, match="Flux query failed with HTTP 400"):
        influx_store.latest("backlog")
