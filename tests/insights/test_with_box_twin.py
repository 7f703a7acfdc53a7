"""Two days of the box simulator's physical twin in self-consumption mode, read as insights.

The twin's AUTO battery and the insights' rule-based baseline are the same physics written
twice; with the same battery they must agree slot by slot, so savings against the
self-consumption baseline are zero, and the twin's balance passes the frame check.
"""

from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import check_index
from insights import BatteryParams, InsightSettings, energy_highlights
from simulation.twin import DeviceCommand, Twin


def _twin_frame(days: int = 2) -> pd.DataFrame:
    twin = Twin.from_bundled_data("2024-06-09T22:00Z", days=days)
    index = pd.date_range("2024-06-09T22:00Z", periods=days * 96, freq="15min")
    steps = [twin.step(ts.timestamp(), 900.0, DeviceCommand()) for ts in index]
    hp = twin.site.heat_pump
    frame = pd.DataFrame(
        {
            "pv_kw": [s.pv_kw for s in steps],
            "house_kw": [s.load_kw for s in steps],
            "ev_kw": [s.ev_kw for s in steps],
            "hp_kw": [s.hp_kw for s in steps],
            "battery_kw": [s.battery_kw for s in steps],
            "grid_kw": [s.grid_kw for s in steps],
            "soc": [s.soc_start for s in steps],
            "hp_heat_kw": [s.hp_kw * hp.cop(s.t_out_c) for s in steps],
            "import_eur_per_kwh": 0.30,
            "export_eur_per_kwh": 0.08,
            "co2_g_per_kwh": 350.0,
        },
        index=index,
    )
    check_index(frame.index)  # type: ignore[arg-type]
    return frame


def test_twin_in_self_consumption_mode_matches_the_baseline() -> None:
    frame = _twin_frame()
    b = Twin.from_bundled_data("2024-06-09T22:00Z", days=1).site.battery
    baseline = BatteryParams(
        capacity_kwh=b.capacity_kwh,
        power_kw=b.charge_max_kw,
        charge_efficiency=b.eta_charge,
        discharge_efficiency=b.eta_discharge,
        soc_min=b.soc_min,
        soc_initial=b.soc_init,
    )
    result = energy_highlights(frame, "day", InsightSettings(battery=baseline))
    assert result.balance.max_residual_kw < 1e-9
    assert len(result.periods) == 2
    for p in result.periods:
        assert p.complete
        assert p.pv_kwh > 10  # June days
        assert p.savings_vs_self_consumption_eur == pytest.approx(0.0, abs=1e-9)
        assert p.co2.avoided_by_shifting_kg == pytest.approx(0.0, abs=1e-9)
        assert p.savings_vs_no_pv_eur > 0
        assert p.autarky is not None and 0 < p.autarky <= 1
        if p.hp_kwh > 0:
            assert p.hp_cop is not None and 1 < p.hp_cop < 8
