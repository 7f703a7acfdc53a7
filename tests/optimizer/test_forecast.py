"""Forecast functions: physics of the PV models, the learned load profile, heat demand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adapters import datasets
from optimizer import forecast as fc

SYSTEM = fc.PvSystem(peak_kw=8.0)


def test_clear_sky_pv_is_zero_at_night_and_peaks_at_noon_below_peak() -> None:
    index = pd.date_range("2024-06-21T00:00Z", periods=96, freq="15min")
    pv = fc.pv_clear_sky(index, SYSTEM)
    assert pv.between(0, SYSTEM.peak_kw).all()
    assert pv.iloc[:8].max() == 0.0  # 00:00-02:00 UTC
    peak = pv.idxmax()
    assert 10 <= peak.hour <= 12  # solar noon at 6.8 deg E is ~11:35 UTC
    assert pv.sum() / 4 > 40  # a clear June day gives > 5 kWh/kWp
    assert fc.pv_clear_sky(index, SYSTEM, 0.5).sum() == pytest.approx(pv.sum() / 2)


def test_clear_sky_scale_recovers_the_measured_fraction() -> None:
    index = pd.date_range("2024-06-20T00:00Z", periods=192, freq="15min")
    measured = fc.pv_clear_sky(index, SYSTEM) * 0.6
    assert fc.clear_sky_scale(measured, SYSTEM) == pytest.approx(0.6, rel=1e-6)
    night = pd.Series(0.0, index=index[:16])
    assert fc.clear_sky_scale(night, SYSTEM) == 1.0  # no daylight: no information


def test_pv_from_measured_weather_matches_the_bundled_simulation() -> None:
    actual = datasets.read_pv_per_kwp()
    index = pd.date_range(actual.index[0], periods=len(actual) * 4, freq="15min")
    pv = fc.pv_power(datasets.weather_for_period(index), fc.PvSystem(peak_kw=1.0))
    mae, bias = fc.forecast_error(pv.resample("1h").mean(), actual)
    assert mae < 0.01 * 1.0 and abs(bias) < 0.005


def test_load_profile_learns_weekday_and_weekend_shapes() -> None:
    hist_index = pd.date_range("2024-06-03T00:00Z", periods=14 * 96, freq="15min")
    local = hist_index.tz_convert("Europe/Berlin")
    weekday = 0.3 + (local.hour >= 18) * 1.0
    weekend = 0.8 + (local.hour >= 10) * 0.5
    hist = pd.Series(np.where(local.dayofweek >= 5, weekend, weekday), index=hist_index)
    index = pd.date_range(hist_index[-1] + pd.Timedelta("15min"), periods=7 * 96, freq="15min")
    fallback = pd.Series(9.0, index=index)
    out = fc.household_load_forecast(hist, index, fallback)
    loc = index.tz_convert("Europe/Berlin")
    want = np.where(loc.dayofweek >= 5, 0.8 + (loc.hour >= 10) * 0.5, 0.3 + (loc.hour >= 18) * 1.0)
    np.testing.assert_allclose(out.to_numpy(), want)
    empty = fc.household_load_forecast(pd.Series(dtype=float), index, fallback)
    assert (empty == 9.0).all()


def test_load_profile_weights_recent_days_more() -> None:
    hist_index = pd.date_range("2024-06-03T22:00Z", periods=8 * 96, freq="15min")
    days_old = (hist_index[-1] - hist_index) / pd.Timedelta(days=1)
    hist = pd.Series(np.where(days_old < 1, 2.0, 1.0), index=hist_index)  # last day higher
    index = pd.date_range(hist_index[-1] + pd.Timedelta("15min"), periods=96, freq="15min")
    out = fc.household_load_forecast(hist, index, pd.Series(0.0, index=index))
    assert (out > 1.0).all() and (out < 2.0).all()


def test_heat_demand_is_linear_below_the_heating_limit_and_sums_to_the_year() -> None:
    t = np.array([-10.0, 0.0, 14.9, 15.0, 25.0])
    np.testing.assert_allclose(fc.heat_demand(t, 0.2), [6.2, 4.2, 0.2 * 6.1, 0.0, 0.0])
    year = datasets.read_try()["temp_air_c"].to_numpy(float)
    h = fc.loss_coefficient(12000.0, year)
    assert fc.heat_demand(year, h).sum() == pytest.approx(12000.0)
    with pytest.raises(ValueError, match="loss_kw_per_k"):
        fc.heat_demand(t, -1.0)
