"""Forecasts learned from the site's data: PV bias, load blend, loss coefficient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adapters import datasets
from optimizer import forecast as fc
from optimizer import forecast_fit as ff

SYSTEM = fc.PvSystem(peak_kw=6.0)


def _clear(days: int, start: str = "2024-06-01") -> pd.Series:
    index = pd.date_range(start, periods=96 * days, freq="15min", tz="UTC")
    return fc.pv_clear_sky(index, SYSTEM)


def test_a_uniform_bias_is_learned_and_removed() -> None:
    forecast = _clear(15)
    measured = 0.8 * forecast  # e.g. the array is 20 % smaller than configured
    past, today = forecast.iloc[: 96 * 14], forecast.iloc[96 * 14 :]
    factors = ff.pv_bias_factors(past, measured.iloc[: 96 * 14])
    daylight = factors[(factors.index >= 6) & (factors.index <= 18)]
    assert daylight.to_numpy() == pytest.approx(0.8, abs=0.02)
    corrected = ff.apply_pv_bias(today, factors)
    assert corrected.sum() == pytest.approx(0.8 * today.sum(), rel=0.02)


def test_an_afternoon_shadow_is_learned_per_hour() -> None:
    forecast = _clear(14)
    hour = pd.DatetimeIndex(forecast.index).tz_convert("Europe/Berlin").hour
    measured = forecast * np.where(hour >= 16, 0.5, 1.0)
    factors = ff.pv_bias_factors(forecast, measured)
    assert factors[17] == pytest.approx(0.5, abs=0.08)
    assert factors[11] == pytest.approx(1.0, abs=0.1)


def test_little_history_is_shrunk_towards_one() -> None:
    forecast = _clear(1)
    factors = ff.pv_bias_factors(forecast, 0.5 * forecast)
    assert (factors[8:18] > 0.55).all() and (factors[8:18] < 0.95).all()
    empty = ff.pv_bias_factors(forecast.iloc[:0], forecast.iloc[:0])
    assert (empty == 1.0).all() and len(empty) == 24


def test_the_load_blend_beats_the_weekday_mean_on_a_real_year() -> None:
    uci = datasets.read_uci_year()
    day0 = pd.Timestamp("2008-03-03", tz="UTC")
    errors = {"mean": [], "blend": []}
    for day in pd.date_range(day0, periods=60, freq="D"):
        idx = pd.date_range(day, periods=96, freq="15min")
        hist = uci[(uci.index >= day - pd.Timedelta(days=14)) & (uci.index < day)]
        fallback = datasets.household_load_for_period(idx, 9000.0)
        actual = uci.reindex(idx)
        errors["mean"].append(fc.household_load_forecast(hist, idx, fallback) - actual)
        errors["blend"].append(ff.load_forecast_blend(hist, idx, fallback) - actual)
    mae = {k: float(pd.concat(v).abs().mean()) for k, v in errors.items()}
    assert mae["blend"] < 0.97 * mae["mean"]


def test_the_load_blend_follows_a_recent_level_change() -> None:
    index = pd.date_range("2024-03-01", periods=96 * 14, freq="15min", tz="UTC")
    hist = pd.Series(1.0, index=index)
    hist.iloc[-96 * 3 :] = 2.0  # a guest moved in three days ago
    idx = pd.date_range(index[-1] + pd.Timedelta(minutes=15), periods=96, freq="15min")
    fallback = pd.Series(0.3, index=idx)
    mean = fc.household_load_forecast(hist, idx, fallback)
    blend = ff.load_forecast_blend(hist, idx, fallback)
    assert blend.mean() > mean.mean() + 0.1
    assert blend.max() < 2.0


def test_the_loss_coefficient_fit_ignores_hot_water_spikes() -> None:
    rng = np.random.default_rng(0)
    t_out = rng.uniform(-8, 14, 24 * 21)
    heat = 0.25 * (21 - t_out) + rng.normal(0, 0.3, t_out.size)
    spikes = rng.random(t_out.size) < 0.05
    heat[spikes] += 8.0  # showers
    fitted = ff.fit_loss_coefficient(heat, t_out)
    x = 21 - t_out
    ols = float(np.sum(x * heat) / np.sum(x * x))
    assert fitted == pytest.approx(0.25, rel=0.03)
    assert abs(ols - 0.25) > 0.05 * 0.25  # what a plain least-squares fit would have said
    with pytest.raises(ValueError, match="heating limit"):
        ff.fit_loss_coefficient(np.ones(5), np.full(5, 20.0))
