"""Properties that hold for any balanced frame, checked on random and year-long frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.timeindex import utc_range
from insights import energy_highlights, slot_quantities
from tests.insights.frames import build_frame

ADDITIVE = ["pv_kwh", "consumption_kwh", "import_kwh", "export_kwh", "cost_eur", "co2_caused_kg"]


def random_frame(seed: int, n: int, step_min: int = 15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = utc_range(pd.Timestamp("2024-03-30", tz="Europe/Berlin"), n, step_min)
    return build_frame(
        idx,
        pv=rng.uniform(0, 6, n) * (rng.random(n) < 0.5),
        house=rng.uniform(0.1, 2, n),
        ev=rng.uniform(0, 11, n) * (rng.random(n) < 0.1),
        hp=rng.uniform(0, 3, n) * (rng.random(n) < 0.3),
        battery=rng.uniform(-4, 4, n),
        import_price=rng.uniform(-0.05, 0.5, n),
        co2=rng.uniform(50, 700, n),
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400))
def test_ratios_stay_physical(seed: int, n: int) -> None:
    frame = random_frame(seed, n)
    q = slot_quantities(frame)
    assert (q["own_supply_kwh"] <= q["consumption_kwh"] + 1e-9).all()
    assert (q["ev_own_kwh"] <= q["ev_kwh"] + 1e-9).all()
    for p in energy_highlights(frame, "day").periods:
        assert p.autarky is None or 0 <= p.autarky <= 1 + 1e-9
        assert p.ev_solar_share is None or 0 <= p.ev_solar_share <= 1 + 1e-9
        c = p.co2
        assert c.avoided_total_kg == pytest.approx(
            c.avoided_by_self_consumption_kg + c.avoided_by_shifting_kg
        )
        # the grid meter, the prices and the baseline see the same energy
        assert p.import_kwh - p.export_kwh == pytest.approx(
            p.consumption_kwh - p.pv_kwh - p.battery_discharge_kwh + p.battery_charge_kwh
        )


def test_days_months_and_year_agree_over_a_leap_year() -> None:
    idx = utc_range(pd.Timestamp("2024-01-01", tz="Europe/Berlin"), 8784, 60)
    frame = random_frame(7, 8784, 60).set_axis(idx)
    tables = {p: energy_highlights(frame, p).table for p in ("day", "month", "year")}  # type: ignore[arg-type]
    assert len(tables["day"]) == 366
    assert len(tables["month"]) == 12
    assert tables["year"]["complete"].iloc[0]
    assert tables["month"]["complete"].all()
    for col in ADDITIVE:
        total = tables["year"][col].iloc[0]
        assert tables["day"][col].sum() == pytest.approx(total)
        assert tables["month"][col].sum() == pytest.approx(total)
