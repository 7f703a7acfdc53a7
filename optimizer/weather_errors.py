"""Day-ahead weather forecast errors for backtests without archived forecasts (pure functions).

A backtest on measured weather has two bad choices for the controller's forecast: the measured
weather itself (a perfect forecast) or clear sky (no forecast). :func:`perturb_weather` gives a
third: the measured weather with errors the size that published verification gives to
day-ahead numerical weather prediction.

* **Irradiance.** Perez et al. (2013), "Comparison of numerical weather prediction solar
  irradiance forecasts in the US, Canada and Europe", Solar Energy 94, 305-326,
  doi:10.1016/j.solener.2013.05.005, validated day-ahead GHI forecasts at 34 sites (Germany,
  Austria, Switzerland, Spain, the US, Canada): the best models (ECMWF-based) reach an RMSE
  skill of about 50 % against persistence (1 - RMSE / RMSE of "tomorrow = today"). The
  perturbed GHI is scaled so that its RMSE against the measured GHI is exactly
  ``1 - ghi_skill`` times the day-ahead persistence RMSE *on the same data*, so the error has
  the published size relative to the weather being perturbed. The error is proportional to the
  clear-sky GHI (no error at night, largest at noon) and correlated in time (AR(1), e-folding
  ``ghi_corr_h``: forecasts miss cloud fields for hours, not single slots); the forecast is
  kept in [0, 1.1 x clear sky].
* **Temperature.** ECMWF's Forecast User Guide (confluence.ecmwf.int, "2m temperature
  errors") states systematic 2 m temperature errors generally below 0.5 K and that the error
  depends little on the forecast range; station RMSE of day-1 forecasts over Europe is
  typically 1.5-2 K. The model adds AR(1) noise with RMSE ``temp_rmse_k`` (1.5 K) and a 12 h
  e-folding time, no bias.

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.timeindex import check_index
from optimizer.forecast import PvSystem, clear_sky_weather

#: Published RMSE skill of the best day-ahead GHI forecasts against persistence (Perez 2013).
PEREZ_2013_GHI_SKILL = 0.5


@dataclass(frozen=True)
class DayAheadErrors:
    """Size and structure of day-ahead forecast errors.

    ``ghi_skill`` [-]: RMSE skill against day-ahead persistence (0.5 published; 1 = perfect,
    0 = as bad as persistence). ``ghi_corr_h`` [h]: e-folding time of the GHI error.
    ``temp_rmse_k`` [K], ``temp_corr_h`` [h]: the temperature error. ``latitude``,
    ``longitude`` [deg]: where the clear sky is computed. ``seed``: the random stream.
    """

    ghi_skill: float = PEREZ_2013_GHI_SKILL
    ghi_corr_h: float = 6.0
    temp_rmse_k: float = 1.5
    temp_corr_h: float = 12.0
    latitude: float = PvSystem.latitude
    longitude: float = PvSystem.longitude
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ghi_skill <= 1.0:
            raise ValueError(f"DayAheadErrors.ghi_skill: must be in 0..1, got {self.ghi_skill}")
        if self.ghi_corr_h <= 0 or self.temp_corr_h <= 0 or self.temp_rmse_k < 0:
            raise ValueError("DayAheadErrors: correlation times must be > 0, temp_rmse_k >= 0")


def perturb_weather(weather: pd.DataFrame, errors: DayAheadErrors) -> pd.DataFrame:
    """Measured weather with day-ahead forecast errors (see the module notes).

    Parameters
    ----------
    weather : pandas.DataFrame
        Fixed-step UTC index (at least two days), ``ghi_wm2``, ``dhi_wm2`` [W/m^2],
        ``temp_air_c`` [degC]; other columns pass through.
    errors : DayAheadErrors
        Error sizes and the seed.

    Returns
    -------
    pandas.DataFrame
        The same columns and index; GHI, DHI and temperature as a day-ahead forecast.
    """
    index = pd.DatetimeIndex(weather.index)
    check_index(index, name="weather index")
    step_h = (index[1] - index[0]) / pd.Timedelta(hours=1)
    rng = np.random.default_rng(errors.seed)
    ghi = np.clip(weather["ghi_wm2"].to_numpy(float), 0.0, None)
    clear = _clear_sky_ghi(index, errors)
    z = ar1(len(index), np.exp(-step_h / errors.ghi_corr_h), rng)
    lag = round(24 / step_h)
    target = (1 - errors.ghi_skill) * persistence_rmse(ghi, lag)
    sigma = _sigma_for_rmse(ghi, clear, z, target)
    ghi_f = _ghi_forecast(ghi, clear, z, sigma)
    dhi = np.clip(weather["dhi_wm2"].to_numpy(float), 0.0, None)
    frac = np.where(ghi > 5.0, np.minimum(dhi / np.maximum(ghi, 1e-9), 1.0), 1.0)
    out = weather.copy()
    out["ghi_wm2"] = ghi_f
    out["dhi_wm2"] = frac * ghi_f
    z_t = ar1(len(index), np.exp(-step_h / errors.temp_corr_h), rng)
    # scaled to the RMSE over this frame: a week is short against a 12 h correlation time
    t_err = errors.temp_rmse_k * z_t / max(float(np.sqrt(np.mean(z_t**2))), 1e-9)
    out["temp_air_c"] = weather["temp_air_c"].to_numpy(float) + t_err
    return out


def persistence_rmse(values: np.ndarray, lag: int) -> float:
    """RMSE of "the value ``lag`` steps earlier" as the forecast (day-ahead persistence)."""
    v = np.asarray(values, float)
    if len(v) <= lag:
        raise ValueError(f"values: need more than {lag} steps for persistence")
    return float(np.sqrt(np.mean((v[lag:] - v[:-lag]) ** 2)))


def ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) series of unit variance with lag-1 correlation ``phi`` [-]."""
    e = rng.standard_normal(n)
    out = np.empty(n)
    out[0] = e[0]
    scale = np.sqrt(1 - phi**2)
    for i in range(1, n):  # a recursion; n is a few thousand slots
        out[i] = phi * out[i - 1] + scale * e[i]
    return out


def _ghi_forecast(ghi: np.ndarray, clear: np.ndarray, z: np.ndarray, sigma: float) -> np.ndarray:
    return np.clip(ghi + sigma * clear * z, 0.0, 1.1 * np.maximum(clear, ghi))


def _sigma_for_rmse(ghi: np.ndarray, clear: np.ndarray, z: np.ndarray, target: float) -> float:
    """The error scale whose clipped forecast has RMSE ``target`` [W/m^2] (bisection)."""
    lo, hi = 0.0, 4.0
    for _ in range(40):
        mid = (lo + hi) / 2
        rmse = np.sqrt(np.mean((_ghi_forecast(ghi, clear, z, mid) - ghi) ** 2))
        lo, hi = (mid, hi) if rmse < target else (lo, mid)
    return (lo + hi) / 2


def _clear_sky_ghi(index: pd.DatetimeIndex, errors: DayAheadErrors) -> np.ndarray:
    where = PvSystem(latitude=errors.latitude, longitude=errors.longitude)
    return clear_sky_weather(index, where)["ghi_wm2"].to_numpy(float)
