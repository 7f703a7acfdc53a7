"""From a real SQLite telemetry store window to highlights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from adapters.store import StoreSettings, make_store
from adapters.store.telemetry import Sample
from insights import (
    EnergyFrameError,
    InsightSettings,
    energy_frame_from_telemetry,
    energy_highlights,
)

START = datetime(2024, 6, 12, 10, 0, tzinfo=UTC)
# one hour at noon: 3 kW PV, 1 kW house, battery charging 1 kW, 1 kW exported
POWER = {"pv": 3.0, "house": 1.0, "battery": -1.0, "grid": -1.0}


def _samples(minutes: int, skip_pv_after: int | None = None) -> list[Sample]:
    out = []
    for m in range(minutes):
        ts = START + timedelta(minutes=m)
        for device, kw in POWER.items():
            if device == "pv" and skip_pv_after is not None and m >= skip_pv_after:
                continue
            out.append(Sample("site-1", device, ts, {"power_kw": kw}))
    return out


def _frame(tmp_path: Path, samples: list[Sample]) -> pd.DataFrame:
    store = make_store(
        StoreSettings(backend="sqlite", data_dir=tmp_path), clock=lambda: START + timedelta(days=1)
    )
    try:
        store.write(samples)
        window = store.window("site-1", START, START + timedelta(hours=1))
    finally:
        store.close()
    prices = pd.Series(0.30, index=window.index)
    return energy_frame_from_telemetry(
        window,
        import_eur_per_kwh=prices,
        export_eur_per_kwh=prices * 0 + 0.08,
        co2_g_per_kwh=prices * 0 + 400.0,
    )


def test_store_window_becomes_an_energy_frame(tmp_path: Path) -> None:
    frame = _frame(tmp_path, _samples(60))
    assert len(frame) == 4
    assert (frame["ev_kw"] == 0).all()  # no wallbox reported: the site has none
    p = energy_highlights(frame, "day", InsightSettings(battery=None)).periods[0]
    assert not p.complete
    assert p.pv_kwh == pytest.approx(3.0)
    assert p.export_kwh == pytest.approx(1.0)
    assert p.battery_charge_kwh == pytest.approx(1.0)
    assert p.self_consumption_rate == pytest.approx(2 / 3)
    assert p.autarky == pytest.approx(1.0)
    assert p.cost_eur == pytest.approx(-0.08)


def test_a_gap_in_a_present_device_is_named(tmp_path: Path) -> None:
    with pytest.raises(EnergyFrameError, match=r"pv-power_kw: 2 slot\(s\) without data"):
        _frame(tmp_path, _samples(60, skip_pv_after=30))
