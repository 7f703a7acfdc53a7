"""Sample validation: every bad sample is refused with a reason naming the field."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from adapters.store import TelemetryStore
from adapters.store.telemetry import ALL_FIELDS, DEVICE_FIELDS, Sample, sample_problem
from tests.adapters.store_support import NOW, sqlite_store

__all__ = ["sqlite_store"]


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (Sample("s", "pv", NOW, {"power_kw": math.nan}), "pv.power_kw: not finite"),
        (Sample("s", "battery", NOW, {"power_kw": 1.0, "soc": 1.2}), "battery.soc: 1.2 outside"),
        (Sample("s", "battery", NOW, {"power_kw": 1.0, "soc": -0.01}), "battery.soc"),
        (Sample("s", "pv", NOW, {"power_kw": -0.5}), "pv.power_kw: -0.5 outside"),
        (Sample("s", "pv", NOW + timedelta(minutes=6), {"power_kw": 1.0}), "in the future"),
        (Sample("s", "toaster", NOW, {"power_kw": 1.0}), "unknown device 'toaster'"),
        (Sample("s", "pv", NOW, {"power_kw": 1.0, "soc": 0.5}), "unknown field pv.'soc'"),
        (Sample("s", "pv", NOW.replace(tzinfo=None), {"power_kw": 1.0}), "naive"),
        (Sample("s", "battery", NOW, {"soc": 0.5}), "battery.power_kw: missing"),
        (Sample("s", "heatpump", NOW, {"power_kw": 1.0, "sgready": 2.5}), "whole code"),
        (Sample("s", "wallbox", NOW, {"power_kw": 1.0, "state": 7}), "wallbox.state"),
        (Sample("", "pv", NOW, {"power_kw": 1.0}), "site_id"),
    ],
)
def test_bad_sample_has_reason(sample: Sample, reason: str) -> None:
    problem = sample_problem(sample, NOW)
    assert problem is not None
    assert reason in problem


@pytest.mark.parametrize(
    "sample",
    [
        Sample("s", "grid", NOW, {"power_kw": -4.2}),  # export is negative grid power
        Sample("s", "battery", NOW, {"power_kw": 3.0, "soc": 0.0}),
        Sample("s", "battery", NOW, {"power_kw": -3.0, "soc": 1.0}),
        Sample("s", "pv", NOW + timedelta(minutes=4), {"power_kw": 0.0}),  # box clock drift
        Sample("s", "wallbox", NOW, {"power_kw": 11.0, "connected": 1, "state": 3}),
        Sample("s", "heatpump", NOW, {"power_kw": 2.0, "sgready": 3, "tank_temp_degc": 48.5}),
    ],
)
def test_good_sample_passes(sample: Sample) -> None:
    assert sample_problem(sample, NOW) is None


def test_sample_fields_cannot_change_after_creation() -> None:
    fields = {"power_kw": 1.0}
    sample = Sample("s", "pv", NOW, fields)
    fields["power_kw"] = 99.0
    assert sample.fields["power_kw"] == 1.0
    with pytest.raises(TypeError):
        sample.fields["power_kw"] = 2.0  # type: ignore[index]


def test_vocabulary_covers_every_device_with_power() -> None:
    assert set(DEVICE_FIELDS) == {"grid", "pv", "battery", "house", "wallbox", "heatpump"}
    assert all("power_kw" in spec for spec in DEVICE_FIELDS.values())
    assert len(ALL_FIELDS) == len(set(ALL_FIELDS))


def test_batch_keeps_good_samples_and_reports_bad_ones(sqlite_store: TelemetryStore) -> None:
    ts = [NOW - timedelta(minutes=m) for m in range(4)]
    batch = [
        Sample("s", "pv", ts[0], {"power_kw": 2.0}),
        Sample("s", "battery", ts[0], {"power_kw": 1.0, "soc": 1.5}),
        Sample("s", "pv", ts[1], {"power_kw": math.inf}),
        Sample("s", "ufo", ts[2], {"power_kw": 1.0}),
        Sample("s", "battery", ts[3], {"power_kw": 1.0, "soc": 0.4}),
    ]
    result = sqlite_store.write(batch)
    assert result.accepted == 2
    assert [r.index for r in result.rejected] == [1, 2, 3]
    assert "soc" in result.rejected[0].reason
    latest = sqlite_store.latest("s")
    assert latest["pv"].fields == {"power_kw": 2.0}
    assert latest["battery"].ts == ts[3]
    assert latest["battery"].fields["soc"] == 0.4


def test_sample_older_than_retention_is_refused(sqlite_store: TelemetryStore) -> None:
    old = NOW - timedelta(days=36)
    result = sqlite_store.write([Sample("s", "pv", old, {"power_kw": 1.0})])
    assert result.accepted == 0
    assert "retention" in result.rejected[0].reason


def test_naive_sample_time_is_a_clear_rejection_not_a_crash(sqlite_store: TelemetryStore) -> None:
    naive = datetime(2024, 6, 10, 11, 0)
    result = sqlite_store.write([Sample("s", "pv", naive, {"power_kw": 1.0})])
    assert result.accepted == 0
    assert "naive" in result.rejected[0].reason
