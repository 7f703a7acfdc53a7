"""The battery's end value from the day after the horizon, against hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from optimizer import Battery, HeatPump, Site, Tuning
from scheduler.end_value import battery_end_value, expected_hp_load_kw


def _tail() -> pd.DataFrame:
    """Tomorrow: 1 kW load for 4 h at 0.40, then 2 kW PV surplus for 6 h (export 0.10)."""
    index = pd.date_range("2024-09-04T00:00Z", periods=96, freq="15min")
    hour = np.arange(96) / 4
    load = np.where(hour < 4, 1.0, 0.0)
    pv = np.where((hour >= 8) & (hour < 14), 2.0, 0.0)
    return pd.DataFrame({"import_eur_per_kwh": 0.40, "export_eur_per_kwh": 0.10,
                         "pv_kw": pv, "load_kw": load}, index=index)  # fmt: skip


def test_stored_energy_is_worth_the_imports_it_replaces_then_the_feed_in() -> None:
    lossless = Battery(capacity_kwh=10.0, charge_kw=5.0, discharge_kw=5.0, charge_efficiency=1.0,
                       discharge_efficiency=1.0, soc_min=0.0, soc_max=1.0)  # fmt: skip
    site = Site(battery=lossless, heat_pumps=())
    segments = battery_end_value(site, _tail(), Tuning(battery_wear_eur_per_kwh=0.0))
    # levels 0, 2.5, 5, 7.5, 10 kWh: the first 4 kWh replace imports at 0.40, the rest can
    # only be sold at 0.10 (the PV surplus comes either way): 2.5 x 0.40; (1.5 x 0.40 +
    # 1 x 0.10) / 2.5 = 0.28; then 0.10
    widths = [w for w, _ in segments]
    values = [v for _, v in segments]
    assert widths == pytest.approx([2.5] * 4)
    assert values == pytest.approx([0.40, 0.28, 0.10, 0.10], abs=1e-6)


def test_no_battery_no_end_value() -> None:
    assert battery_end_value(Site(battery=None), _tail(), Tuning()) == ()


def test_expected_heat_pump_load() -> None:
    hp = HeatPump()  # loss 0.15 kW/K, comfort from 20 degC, COP 3.5 at 7 degC - 0.08/K
    load = expected_hp_load_kw(hp, np.array([-3.0, 25.0]), np.array([0.5, 0.0]))
    # -3 degC: (0.15 x 23 + 0.5) kW heat / COP 2.7; 25 degC: no loss, no demand
    assert load == pytest.approx([(0.15 * 23 + 0.5) / 2.7, 0.0])
