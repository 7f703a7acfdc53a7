"""The day-ahead weather error model: published skill reproduced, physics kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adapters import datasets
from optimizer import forecast as fc
from optimizer.weather_errors import DayAheadErrors, persistence_rmse, perturb_weather

COLS = datasets.WEATHER_COLUMNS


def _june(days: int = 9) -> pd.DataFrame:
    index = pd.date_range("2024-06-08", periods=96 * days, freq="15min", tz="UTC")
    return datasets.measured_weather_2024(index)[COLS].astype(float)


def test_ghi_error_has_the_published_skill_against_persistence() -> None:
    weather = _june()
    for skill in (0.3, 0.5, 0.7):
        out = perturb_weather(weather, DayAheadErrors(ghi_skill=skill, seed=3))
        rmse = float(np.sqrt(np.mean((out["ghi_wm2"] - weather["ghi_wm2"]) ** 2)))
        target = (1 - skill) * persistence_rmse(weather["ghi_wm2"].to_numpy(), 96)
        assert rmse == pytest.approx(target, rel=0.01)


def test_forecast_irradiance_is_physical() -> None:
    weather = _june()
    out = perturb_weather(weather, DayAheadErrors(seed=1))
    clear = fc.clear_sky_weather(pd.DatetimeIndex(weather.index), fc.PvSystem())["ghi_wm2"]
    night = clear.to_numpy() == 0
    # no error where the clear sky is dark (measured twilight stays as measured)
    measured = weather["ghi_wm2"].clip(lower=0).to_numpy()
    assert night.any() and (out["ghi_wm2"].to_numpy()[night] == measured[night]).all()
    assert (out["ghi_wm2"] >= 0).all()
    assert (out["ghi_wm2"] <= 1.1 * np.maximum(clear, weather["ghi_wm2"]) + 1e-9).all()
    assert (out["dhi_wm2"] <= out["ghi_wm2"] + 1e-9).all() and (out["dhi_wm2"] >= 0).all()
    assert out["ghi_wm2"].ne(weather["ghi_wm2"]).sum() > 200  # daylight slots are perturbed


def test_temperature_error_has_the_configured_rmse_and_no_bias_by_construction() -> None:
    weather = _june()
    out = perturb_weather(weather, DayAheadErrors(temp_rmse_k=1.5, seed=2))
    diff = out["temp_air_c"] - weather["temp_air_c"]
    assert float(np.sqrt(np.mean(diff**2))) == pytest.approx(1.5, rel=1e-6)
    assert abs(float(diff.mean())) < 1.5  # an AR(1) with 12 h memory wanders, but not far


def test_a_perfect_skill_leaves_irradiance_unchanged_and_seeds_repeat() -> None:
    weather = _june()
    same = perturb_weather(weather, DayAheadErrors(ghi_skill=1.0, temp_rmse_k=0.0))
    assert np.allclose(same["ghi_wm2"], weather["ghi_wm2"].clip(lower=0), atol=1e-6)
    a = perturb_weather(weather, DayAheadErrors(seed=5))
    b = perturb_weather(weather, DayAheadErrors(seed=5))
    c = perturb_weather(weather, DayAheadErrors(seed=6))
    assert a.equals(b) and not a["ghi_wm2"].equals(c["ghi_wm2"])


def test_pv_from_the_perturbed_forecast_beats_persistence_but_is_not_perfect() -> None:
    weather = _june()
    system = fc.PvSystem()
    actual = fc.pv_power(weather, system)
    forecast = fc.pv_power(perturb_weather(weather, DayAheadErrors(seed=4)), system)
    s = fc.skill(forecast.iloc[96:], actual.shift(96).iloc[96:], actual.iloc[96:])
    assert 0.3 < s["rmse_skill"] < 0.9


def test_skill_against_persistence_by_hand() -> None:
    idx = pd.date_range("2024-01-01", periods=2, freq="15min", tz="UTC")
    actual = pd.Series([1.0, 1.0], index=idx)
    forecast = pd.Series([2.0, 0.0], index=idx)  # errors +1, -1
    persistence = pd.Series([3.0, -1.0], index=idx)  # errors +2, -2
    s = fc.skill(forecast, persistence, actual)
    assert s == pytest.approx({"mae": 1.0, "rmse": 1.0, "mae_skill": 0.5, "rmse_skill": 0.5})


def test_bad_skill_is_refused() -> None:
    with pytest.raises(ValueError, match="ghi_skill"):
        DayAheadErrors(ghi_skill=1.5)
