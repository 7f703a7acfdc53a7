"""Flux reads against a real InfluxDB 2.x; opt-in: runs only when HBOPT_INFLUX_URL and
HBOPT_INFLUX_TOKEN (and optionally HBOPT_INFLUX_ORG, HBOPT_INFLUX_BUCKET) are set, the names
``hbopt serve`` and ``hbopt store`` read. CI has no InfluxDB 2.x.

The token needs write/read on the bucket, bucket creation (for the aggregate bucket) and delete.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from adapters.store import StoreSettings, make_store
from adapters.store.influxdb import InfluxStore
from adapters.store.telemetry import Sample

pytestmark = pytest.mark.skipif(
    not (os.environ.get("HBOPT_INFLUX_URL") and os.environ.get("HBOPT_INFLUX_TOKEN")),
    reason="opt-in: set HBOPT_INFLUX_URL, HBOPT_INFLUX_TOKEN (+ HBOPT_INFLUX_ORG, _BUCKET)",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InfluxStore]:
    bucket = os.environ.get("HBOPT_INFLUX_BUCKET", "telemetry")
    settings = StoreSettings(
        backend="influxdb",
        data_dir=tmp_path,
        influx_url=os.environ["HBOPT_INFLUX_URL"],
        influx_token=os.environ["HBOPT_INFLUX_TOKEN"],
        influx_org=os.environ.get("HBOPT_INFLUX_ORG", "heartbeat"),
        influx_bucket=bucket,
        influx_bucket_aggregates=f"{bucket}_15min",
    )
    built = make_store(settings)
    assert isinstance(built, InfluxStore)
    built.ensure_buckets()
    yield built
    built.close()


def test_flux_latest_window_aggregate_and_delete(store: InfluxStore) -> None:
    site = f"test-{uuid.uuid4()}"
    hour = pd.Timestamp(datetime.now(UTC)).floor("1h").to_pydatetime() - timedelta(hours=2)
    samples = [
        Sample(site, "pv", hour + timedelta(minutes=i), {"power_kw": float(i)}) for i in range(60)
    ] + [Sample(site, "battery", hour, {"power_kw": -2.0, "soc": 0.4})]
    assert store.write(samples).accepted == 61
    assert store.write(samples).accepted == 61  # re-sent: overwrites, no duplicates

    latest = store.latest(site)
    assert latest["pv"].fields["power_kw"] == 59.0
    assert latest["pv"].ts == hour + timedelta(minutes=59)
    assert latest["battery"].fields == {"power_kw": -2.0, "soc": 0.4}

    window = store.window(site, hour, hour + timedelta(hours=1))
    assert window["pv-power_kw"].tolist() == [7.0, 22.0, 37.0, 52.0]
    hourly = store.window(site, hour, hour + timedelta(hours=1), timedelta(hours=1))
    assert hourly["pv-power_kw"].iloc[0] == pytest.approx(29.5)

    assert store.maintain().aggregated_buckets >= 5

    store.delete_site(site)
    assert store.latest(site) == {}
