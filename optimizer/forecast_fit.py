"""Forecast models learned from the site's own measurements (pure functions, no I/O).

* **PV bias correction** (:func:`pv_bias_factors`, :func:`apply_pv_bias`): the ratio of
  measured production to what the weather-based forecast said, per local hour of the day,
  shrunk toward the all-day ratio and that toward 1 when there are few data. It learns what
  the weather provider and the configured array get systematically wrong: a shaded morning,
  a wrong azimuth or kWp, soiling, a provider that over-forecasts.
* **Household load** (:func:`load_forecast_blend`): the recency-weighted weekday/weekend x
  time-of-day mean of :func:`optimizer.forecast.household_load_forecast` blended 3:1 with the
  time-of-day median of the last two weeks (robust to the single kettle or oven that drags a
  mean), both smoothed over five slots, times the level of the last three days against the two
  weeks (half of the deviation). Measured day ahead on a year of one real household
  (``benchmarks/forecast_error.py``) it lowers the MAE by 5 % and the RMSE by 3 % against the
  weekday/time mean, at an energy bias of -3.5 %.
* **Heat demand** (:func:`fit_loss_coefficient`): the building's loss coefficient [kW/K] fitted
  on the site's own winter data by a Huber-weighted regression through the origin of the
  thermal energy on degree-hours below the heating limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.config import HeatPump
from optimizer.devices.heatpump import cop
from optimizer.forecast import household_load_forecast

#: Weight of the time-of-day median in the load blend: more lowers the MAE (a median is what
#: minimises it) but biases the energy low (household load is right-skewed); 0.25 measured
#: on the UCI year: MAE -5 %, RMSE -3 %, energy -3.5 % against the weekday/time mean.
MEDIAN_WEIGHT = 0.25


@dataclass(frozen=True)
class BiasPrior:
    """Shrinkage of :func:`pv_bias_factors`.

    ``hour_slots``: an hour's ratio counts as many pseudo-slots of the all-day ratio;
    ``day_slots``: the all-day ratio counts as many pseudo-slots of 1.0. ``low``, ``high``:
    the factors' bounds [-]. ``min_share``: slots whose forecast is below this share of the
    largest forecast (dawn, dusk, night) are left out [-].
    """

    hour_slots: float = 8.0
    day_slots: float = 32.0
    low: float = 0.3
    high: float = 1.6
    min_share: float = 0.02


def pv_bias_factors(
    forecast_kw: pd.Series,
    measured_kw: pd.Series,
    tz: str = "Europe/Berlin",
    prior: BiasPrior = BiasPrior(),
) -> pd.Series:
    """Measured / forecast PV energy per local hour of the day, with shrinkage [-].

    Parameters
    ----------
    forecast_kw : pandas.Series
        What the (uncorrected) forecast said for past slots [kW], UTC index.
    measured_kw : pandas.Series
        What the array produced in those slots [kW]; aligned on the index, NaN ignored.
    tz : str
        The site's time zone (the hour of the day that shading and orientation act on).
    prior : BiasPrior
        Shrinkage and bounds.

    Returns
    -------
    pandas.Series
        Factors for hours 0..23 (index ``hour``); 1.0 everywhere without history.
    """
    both = pd.concat([forecast_kw.rename("f"), measured_kw.rename("m")], axis=1).dropna()
    hours = pd.RangeIndex(24, name="hour")
    if both.empty or both["f"].max() <= 0:
        return pd.Series(1.0, index=hours, name="pv_bias")
    both = both[both["f"] > prior.min_share * both["f"].max()]
    f_mean = float(both["f"].mean()) if len(both) else 0.0
    if f_mean <= 0:
        return pd.Series(1.0, index=hours, name="pv_bias")
    k_day = prior.day_slots * f_mean
    day = (both["m"].clip(lower=0).sum() + k_day) / (both["f"].sum() + k_day)
    hour = pd.DatetimeIndex(both.index).tz_convert(tz).hour
    grouped = both.assign(m=both["m"].clip(lower=0)).groupby(hour)
    k_hour = prior.hour_slots * f_mean
    per_hour = (grouped["m"].sum() + day * k_hour) / (grouped["f"].sum() + k_hour)
    factors = per_hour.reindex(hours).fillna(day)
    return factors.clip(prior.low, prior.high).rename("pv_bias")


def apply_pv_bias(
    forecast_kw: pd.Series, factors: pd.Series, tz: str = "Europe/Berlin"
) -> pd.Series:
    """``forecast_kw`` [kW] times the factor of each slot's local hour (:func:`pv_bias_factors`)."""
    hour = pd.DatetimeIndex(forecast_kw.index).tz_convert(tz).hour
    scale = factors.reindex(hour).fillna(1.0).to_numpy(float)
    return (forecast_kw * scale).clip(lower=0).rename(forecast_kw.name)


def load_forecast_blend(
    history_kw: pd.Series,
    index: pd.DatetimeIndex,
    fallback_kw: pd.Series,
    tz: str = "Europe/Berlin",
) -> pd.Series:
    """Household load [kW] on ``index``: mean/median profile blend x recent level (see notes).

    Parameters are those of :func:`optimizer.forecast.household_load_forecast`: the measured
    history [kW] (the last two weeks are used), the forecast slots, the standard profile on
    them [kW] and the household's time zone. Without a full day of history the
    weekday/time mean (and where that has no data, the fallback) is returned.
    """
    mean = household_load_forecast(history_kw, index, fallback_kw, tz=tz)
    hist = history_kw.dropna()
    if len(hist) < 96 or len(index) < 5:
        return mean
    hist = hist[hist.index >= index[0] - pd.Timedelta(days=14)]
    minute = _minute_of_day(pd.DatetimeIndex(hist.index), tz)
    median = hist.groupby(minute).median()
    want = median.reindex(_minute_of_day(index, tz)).to_numpy(float)
    want = np.where(np.isfinite(want), want, mean.to_numpy(float))
    blend = (1 - MEDIAN_WEIGHT) * _smooth(mean.to_numpy(float), 5) + MEDIAN_WEIGHT * _smooth(
        want, 5
    )
    recent = hist[hist.index >= hist.index[-1] - pd.Timedelta(days=3)]
    level = 1.0 + 0.5 * (float(recent.mean()) / max(float(hist.mean()), 1e-6) - 1.0)
    return pd.Series(np.clip(blend * level, 0.0, None), index=index, name="load_kw")


def _minute_of_day(index: pd.DatetimeIndex, tz: str) -> np.ndarray:
    local = index.tz_convert(tz)
    return np.asarray(local.hour * 60 + local.minute)


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving mean over ``width`` slots, edges mirrored (no drop at the horizon ends)."""
    half = width // 2
    padded = np.r_[values[half:0:-1], values, values[-2 : -half - 2 : -1]]
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def fit_loss_coefficient(
    heat_kw: np.ndarray,
    t_out_c: np.ndarray,
    t_set_c: float = 21.0,
    heating_limit_c: float = 15.0,
    huber_k: float = 1.345,
) -> float:
    """Loss coefficient [kW/K] of ``heat = H x (t_set - t_out)`` fitted on measured data.

    A regression through the origin of the thermal power on the temperature difference, over
    the slots below the heating limit, with Huber weights (iteratively reweighted least
    squares; scale from the median absolute deviation) so that a hot-water draw or a defrost
    does not pull the fit.

    Parameters
    ----------
    heat_kw : array
        Heat delivered to the building per slot [kW thermal] (e.g. heat-pump electrical power
        times its COP, or a heat meter), hourly or finer.
    t_out_c : array
        Outdoor temperature in the same slots [degC].
    t_set_c, heating_limit_c : float
        Indoor set temperature and heating limit [degC], as in
        :func:`optimizer.forecast.heat_demand`.
    huber_k : float
        Huber threshold in robust standard deviations.

    Raises
    ------
    ValueError
        No slot below the heating limit.
    """
    q = np.asarray(heat_kw, float)
    t = np.asarray(t_out_c, float)
    use = np.isfinite(q) & np.isfinite(t) & (t < heating_limit_c)
    x, y = t_set_c - t[use], q[use]
    if not use.any() or float(np.sum(x * x)) <= 0:
        raise ValueError("t_out_c: no slot below the heating limit")
    w = np.ones_like(x)
    h = float(np.sum(x * y) / np.sum(x * x))
    for _ in range(20):
        r = y - h * x
        scale = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-6)
        w = np.minimum(1.0, huber_k * scale / np.maximum(np.abs(r), 1e-12))
        new = float(np.sum(w * x * y) / np.sum(w * x * x))
        if abs(new - h) < 1e-9:
            break
        h = new
    return max(h, 0.0)


@dataclass(frozen=True)
class StorePrior:
    """What :func:`fit_store_model` trusts besides the data, and which data it takes.

    ``prior_hours``: the configured loss (and no extra draw) counts as this many hours of
    data on the line ``y = H0 x``, so a thin history stays near the configuration [h].
    ``block_slots``: slots per energy-balance block (the regression's rows) [-].
    ``min_delta_k``: only blocks whose store is at least this much warmer than the outdoor
    air (the heating season: the loss term dominates the noise) [K]. ``min_hours``: fewer
    usable blocks than this [h] keep the configured value. ``draw_spread_k``, ``draw_hours``:
    the constant draw is fitted only when the loss driver ``T - T_out`` has at least this
    standard deviation [K] over at least this many hours [h] (else its slope and the draw
    cannot be told apart: an error in the outdoor temperature of ``e`` K RMSE flattens the
    slope by ``e^2 / (e^2 + std^2)`` and the draw takes up the rest; 6.5 K keeps that under 5 %
    at the 1.5 K of a day-ahead forecast; through the origin it stays under 0.5 %, as ``x``
    is ~20 K). ``loss_bounds``: physical range of the loss [kW/K];
    ``max_draw_kw``: of the draw's magnitude [kW thermal]. ``huber_k``: Huber threshold in
    robust standard deviations.
    """

    prior_hours: float = 12.0
    block_slots: int = 4
    min_delta_k: float = 5.0
    min_hours: float = 6.0
    draw_spread_k: float = 6.5
    draw_hours: float = 48.0
    loss_bounds: tuple[float, float] = (0.01, 3.0)
    max_draw_kw: float = 3.0
    huber_k: float = 1.345


@dataclass(frozen=True)
class StoreFit:
    """A heat store's loss [kW/K] and constant extra draw [kW thermal] from its own history.

    ``learned``: False when there were too few usable hours (the configured loss, no draw);
    ``hours``: the usable hours of data [h]; ``draw_fitted``: whether the draw was fitted
    (else it is 0); ``rmse_kw``: the robust residual scale of the fit [kW thermal].
    """

    loss_kw_per_k: float
    draw_kw: float = 0.0
    learned: bool = False
    hours: float = 0.0
    draw_fitted: bool = False
    rmse_kw: float = float("nan")

    def describe(self, configured_kw_per_k: float) -> str:
        """In words, e.g. ``"0.238 kW/K learned from 70 h (configured 0.150)"``."""
        if not self.learned:
            return f"{self.loss_kw_per_k:.3f} kW/K configured"
        draw = f", draw {self.draw_kw:+.2f} kW" if self.draw_fitted else ""
        return (
            f"{self.loss_kw_per_k:.3f} kW/K learned from {self.hours:.0f} h{draw} "
            f"(configured {configured_kw_per_k:.3f})"
        )


def fit_store_model(
    history: pd.DataFrame,
    hp: HeatPump,
    prior: StorePrior = StorePrior(),
) -> StoreFit:
    """Loss coefficient (and constant draw) of a heat store fitted on its energy balance.

    ``C (T_k+1 - T_k) = dt (COP P - H (T - T_out) - D - q)`` between consecutive slot means,
    summed over blocks of ``prior.block_slots`` pairs (trapezoids of the heat flows), gives
    per block ``y = COP P - D - C dT/dt = H x + q`` with ``x = T - T_out``: a Huber-weighted
    regression (iteratively reweighted; scale from the median absolute deviation, so a
    defrost or a hot-water draw does not pull it), through the origin unless the data
    support a draw (see :class:`StorePrior`), with the configured loss added as
    ``prior.prior_hours`` of pseudo-data, the result clipped to the physical bounds.

    Parameters
    ----------
    history : pandas.DataFrame
        On a regular UTC index (slot means): ``temp_c`` store temperature [degC], ``hp_kw``
        heat-pump electrical power [kW], ``t_out_c`` outdoor temperature [degC] and
        optionally ``demand_kw``, the draw already known (a heat-demand feed) [kW thermal].
        NaN rows are skipped (a block with a gap is dropped).
    hp : HeatPump
        The configured heat pump: capacity [kWh/K], COP line, the prior loss [kW/K].
    prior : StorePrior

    Returns
    -------
    StoreFit
        ``learned=False`` with the configured loss when the history has too few usable hours.
    """
    x, y, hours = _store_blocks(history, hp, prior)
    configured = StoreFit(hp.loss_kw_per_k, hours=hours)
    if hours < prior.min_hours:
        return configured
    with_draw = hours >= prior.draw_hours and float(np.std(x)) >= prior.draw_spread_k
    design = np.c_[x, np.ones_like(x)] if with_draw else x[:, None]
    w, scale = _huber_weights(design, y, prior.huber_k)
    # the prior: pseudo-blocks on the configured line at the data's low and high ends, after
    # the robust weights (a consistent history that disagrees with it is no outlier)
    px = np.percentile(x, [10, 90])
    k = prior.prior_hours / (hours / len(x)) / 2
    design = np.r_[design, np.c_[px, np.ones(2)] if with_draw else px[:, None]]
    sw = np.sqrt(np.r_[w, k, k])
    ys = np.r_[y, hp.loss_kw_per_k * px]
    coef = np.linalg.lstsq(design * sw[:, None], ys * sw, rcond=None)[0]
    loss, draw = float(coef[0]), float(coef[1]) if with_draw else 0.0
    low, high = prior.loss_bounds
    draw = float(np.clip(draw, -prior.max_draw_kw, prior.max_draw_kw))
    return StoreFit(float(np.clip(loss, low, high)), draw, True, hours, with_draw, scale)


def _store_blocks(
    history: pd.DataFrame, hp: HeatPump, prior: StorePrior
) -> tuple[np.ndarray, np.ndarray, float]:
    """The regression's rows: loss driver ``x`` [K], heat not explained by the store's
    change ``y`` [kW thermal], and the usable hours."""
    index = pd.DatetimeIndex(history.index)
    if len(index) < 2:
        return np.zeros(0), np.zeros(0), 0.0
    dt_h = (index[1] - index[0]) / pd.Timedelta(hours=1)
    temp = history["temp_c"].to_numpy(float)
    t_out = history["t_out_c"].to_numpy(float)
    demand = history["demand_kw"].to_numpy(float) if "demand_kw" in history else 0.0 * temp
    heat = cop(hp, t_out) * history["hp_kw"].to_numpy(float) - demand
    drive = temp - t_out
    # per pair of consecutive slots: the store's change and the mean flows over the pair
    gain = 0.5 * (heat[1:] + heat[:-1]) - hp.capacity_kwh_per_k * np.diff(temp) / dt_h
    pair_x = 0.5 * (drive[1:] + drive[:-1])
    m = prior.block_slots
    n = len(gain) // m * m  # whole blocks, ending at the newest slot
    if n == 0:
        return np.zeros(0), np.zeros(0), 0.0
    y = gain[len(gain) - n :].reshape(-1, m).mean(axis=1)
    x = pair_x[len(gain) - n :].reshape(-1, m).mean(axis=1)
    keep = np.isfinite(x) & np.isfinite(y) & (x >= prior.min_delta_k)
    return x[keep], y[keep], float(keep.sum()) * m * dt_h


def _huber_weights(design: np.ndarray, y: np.ndarray, huber_k: float) -> tuple[np.ndarray, float]:
    """Huber weights of the rows of ``y = design @ coef`` (iteratively reweighted least
    squares, scale from the median absolute deviation): ``(weights in 0..1, scale)``."""
    w = np.ones(len(y))
    coef = np.zeros(design.shape[1])
    scale = float("nan")
    for _ in range(30):
        sw = np.sqrt(w)
        new = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)[0]
        r = y - design @ new
        scale = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-6)
        w = np.minimum(1.0, huber_k * scale / np.maximum(np.abs(r), 1e-12))
        done = np.allclose(new, coef, atol=1e-9)
        coef = new
        if done:
            break
    return w, scale
