from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.timeindex import local_day, utc_range
from insights import daily_price_spread, negative_price_hours, quarter_hour_vs_hourly


def test_daily_spread_and_negative_hours_on_a_dst_day() -> None:
    idx = local_day("2024-10-27", step_min=60)  # 25 hours
    prices = pd.Series(np.linspace(-0.02, 0.22, 25), index=idx)
    spread = daily_price_spread(prices)
    assert spread["slots"].iloc[0] == 25
    assert spread["spread"].iloc[0] == pytest.approx(0.24)
    assert negative_price_hours(prices).iloc[0] == pytest.approx(2.0)  # -0.02, -0.01


def test_quarter_hours_find_cheaper_energy_than_hourly_means() -> None:
    # one hour whose quarters are 0.10, 0.02, 0.10, -0.02: hourly mean 0.05, cheapest QH -0.02
    qh = pd.Series(0.20, index=utc_range("2024-06-11 22:00", 96))
    qh.iloc[8:12] = [0.10, 0.02, 0.10, -0.02]
    hourly = qh.resample("1h").mean()
    out = quarter_hour_vs_hourly(qh, hourly).iloc[0]
    assert out["cheapest_hourly"] == pytest.approx(0.05)
    # cheapest hour of 15-min products: the four cheapest quarters
    assert out["cheapest_15min"] == pytest.approx((0.10 + 0.02 + 0.10 - 0.02) / 4)
    assert out["spread_15min"] == pytest.approx(0.22)
    assert out["spread_hourly"] == pytest.approx(0.15)
    assert out["negative_h_15min"] == pytest.approx(0.25)
    assert out["negative_h_hourly"] == 0
    qh.iloc[20] = 0.01  # a cheap quarter in another hour now joins the cheapest four
    out = quarter_hour_vs_hourly(qh, qh.resample("1h").mean()).iloc[0]
    assert out["cheapest_15min"] == pytest.approx((0.01 + 0.02 + 0.10 - 0.02) / 4)
    assert out["gain_15min"] > 0
    with pytest.raises(ValueError, match="hourly: step must be 60 minutes"):
        quarter_hour_vs_hourly(qh, qh)
