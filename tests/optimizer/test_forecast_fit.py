"""Forecasts learned from the site's data: PV bias, load blend, loss coefficient."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adapters import datasets
from optimizer import forecast as fc
from optimizer import forecast_fit as ff
from optimizer.config import HeatPump
from optimizer.devices.heatpump import cop

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


HP = HeatPump(loss_kw_per_k=0.15)  # the configured building; the simulated ones differ


def _store_history(
    days: float,
    loss: float,
    *,
    draw_kw: float = 0.0,
    t_mean_c: float = 0.0,
    noise_k: float = 0.03,
    showers: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Minute-by-minute physics of a store under a thermostat (20.5..21.5 degC) heated by
    ``HP``'s COP line, losing ``loss`` [kW/K] to a daily-swinging outdoor temperature and a
    constant ``draw_kw``; returned as 15-minute means with sensor noise [K]."""
    rng = np.random.default_rng(seed)
    n = int(days * 1440)
    t = np.arange(n)
    t_out = t_mean_c + 4 * np.sin(2 * np.pi * (t / 1440 - 0.3)) + np.cumsum(rng.normal(0, 0.02, n))
    extra = np.full(n, draw_kw)
    if showers:  # 10-minute hot-water draws of 6 kW twice a day
        for start in rng.integers(0, n - 10, int(2 * days)):
            extra[start : start + 10] += 6.0
    temp, power = np.empty(n), np.empty(n)
    t_c, on = 21.0, False
    efficiency = cop(HP, t_out)
    for i in range(n):
        on = t_c < 20.5 or (on and t_c < 21.5)
        power[i] = HP.max_kw if on else 0.0
        heat = efficiency[i] * power[i] - loss * (t_c - t_out[i]) - extra[i]
        t_c += heat / 60 / HP.capacity_kwh_per_k
        temp[i] = t_c
    index = pd.date_range("2024-01-08", periods=n, freq="1min", tz="UTC")
    minute = pd.DataFrame({"temp_c": temp, "hp_kw": power, "t_out_c": t_out}, index=index)
    slots = minute.resample("15min").mean()
    slots["temp_c"] += rng.normal(0, noise_k, len(slots))
    return slots


def test_the_store_loss_is_learned_from_a_cold_week() -> None:
    fit = ff.fit_store_model(_store_history(7, 0.24, showers=True), HP)
    assert fit.learned and fit.hours > 150
    assert fit.loss_kw_per_k == pytest.approx(0.24, rel=0.05)
    # the thermostat's one-kelvin swing and showers are noise the blocks and Huber absorb
    assert abs(fit.draw_kw) < 0.4 if fit.draw_fitted else fit.draw_kw == 0.0


def test_a_constant_draw_is_told_apart_from_the_loss() -> None:
    # a cold and a mild spell: the loss driver varies by far more than the draw needs
    cold = _store_history(4, 0.2, draw_kw=0.8, t_mean_c=-6.0, seed=1)
    mild = _store_history(4, 0.2, draw_kw=0.8, t_mean_c=8.0, seed=2)
    mild.index = mild.index + pd.Timedelta(days=4)
    fit = ff.fit_store_model(pd.concat([cold, mild]), HP)
    assert fit.draw_fitted
    assert fit.loss_kw_per_k == pytest.approx(0.2, rel=0.1)
    assert fit.draw_kw == pytest.approx(0.8, abs=0.25)
    # the loss alone, through the origin, would have taken up the draw
    alone = ff.fit_store_model(pd.concat([cold, mild]), HP, ff.StorePrior(draw_hours=1e9))
    assert alone.loss_kw_per_k > 0.2 * 1.1


def test_thin_or_summer_data_keep_near_the_configured_value() -> None:
    week = _store_history(7, 0.24)
    ten_hours = ff.fit_store_model(week.iloc[-40:], HP)
    assert ten_hours.learned
    # ten hours of data against twelve pseudo-hours of the configuration: about half-way
    assert 0.15 + 0.2 * 0.09 < ten_hours.loss_kw_per_k < 0.24 - 0.2 * 0.09
    assert not ff.fit_store_model(week.iloc[-20:], HP).learned  # five hours: configured
    summer = _store_history(3, 0.24, t_mean_c=22.0)
    fit = ff.fit_store_model(summer, HP)
    assert not fit.learned and fit.loss_kw_per_k == 0.15
    assert "configured" in fit.describe(0.15)


def test_the_fit_stays_inside_physical_bounds_and_skips_gaps() -> None:
    history = _store_history(3, 0.24)
    history.iloc[100:140] = np.nan  # the box was offline for ten hours
    fit = ff.fit_store_model(history, HP)
    assert fit.hours <= 3 * 24 - 10
    shrunk = (fit.hours * 0.24 + 12 * 0.15) / (fit.hours + 12)  # 12 pseudo-hours at 0.15
    assert fit.loss_kw_per_k == pytest.approx(shrunk, rel=0.03)
    broken = history.assign(hp_kw=history["hp_kw"] * 40)  # a power reading off by 40x
    assert ff.fit_store_model(broken, HP).loss_kw_per_k == ff.StorePrior().loss_bounds[1]


def test_forecast_errors_in_the_outdoor_temperature_do_not_flatten_the_loss() -> None:
    # a week whose outdoor temperatures are a day-ahead forecast's: AR(1) errors of 1.5 K RMSE
    # with a 12-hour e-folding time (optimizer.weather_errors); a free draw would absorb what
    # the noise takes off the slope
    history = _store_history(7, 0.24, t_mean_c=-2.0, seed=3)
    rng = np.random.default_rng(4)
    phi = np.exp(-0.25 / 12)
    error = np.zeros(len(history))
    for k in range(1, len(error)):
        error[k] = phi * error[k - 1] + rng.normal(0, 1.5 * np.sqrt(1 - phi**2))
    fit = ff.fit_store_model(history.assign(t_out_c=history["t_out_c"] + error), HP)
    assert not fit.draw_fitted
    assert fit.loss_kw_per_k == pytest.approx(0.24, rel=0.1)
    # with the draw forced in, the slope is visibly flattened
    forced = ff.fit_store_model(
        history.assign(t_out_c=history["t_out_c"] + error), HP, ff.StorePrior(draw_spread_k=0.0)
    )
    assert forced.draw_fitted and forced.loss_kw_per_k < fit.loss_kw_per_k
