"""Forecasts of the inputs a plan needs: PV, household load and heat demand (pure functions).

No I/O: the scheduler passes in what it read (weather forecasts, the site's measured history
from the store, the standard load profile). Every function works on a tz-aware UTC
:class:`pandas.DatetimeIndex` and returns a series on it.

* PV from a weather forecast: pvlib (solar position, Hay-Davies transposition, SAPM cell
  temperature, PVWatts DC and inverter) for the site's orientation and kWp
  (:func:`pv_power`). The bundled data readers and the box twin use the same function.
* PV without weather: pvlib's Ineichen clear-sky model through the same chain, scaled by the
  ratio of recently measured production to what the clear-sky model gives for those slots
  (:func:`pv_clear_sky`, :func:`clear_sky_scale`).
* Household load: a weekday/weekend x time-of-day profile of the site's own history, recent
  days weighted more, where the history has data; the BDEW H25 standard profile scaled to the
  annual consumption elsewhere (:func:`household_load_forecast`).
* Heat demand: the house's loss coefficient times the difference between the set temperature
  and the outdoor temperature forecast (:func:`heat_demand`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib

from core.timeindex import check_index


@dataclass(frozen=True)
class PvSystem:
    """A fixed PV array (defaults match the bundled 1 kWp south 35 deg file).

    ``peak_kw`` [kWp], ``tilt_deg``, ``azimuth_deg`` (180 = south), ``losses`` fraction,
    ``latitude``/``longitude`` [deg], ``gamma_pdc`` [1/K].
    """

    peak_kw: float = 1.0
    tilt_deg: float = 35.0
    azimuth_deg: float = 180.0
    losses: float = 0.14
    latitude: float = 51.296
    longitude: float = 6.7686
    gamma_pdc: float = -0.004


def pv_power(weather: pd.DataFrame, system: PvSystem) -> pd.Series:
    """AC PV power [kW] from weather (pvlib: Hay-Davies, SAPM cell temperature, PVWatts).

    Parameters
    ----------
    weather : pandas.DataFrame
        UTC index (interval start) with ``ghi_wm2``, ``dhi_wm2`` [W/m^2], ``temp_air_c``
        [degC], ``wind_speed_ms`` [m/s].
    system : PvSystem
        The array.

    Returns
    -------
    pandas.Series
        Mean AC power over each interval [kW], >= 0.
    """
    _require_utc(weather.index)
    step = weather.index[1] - weather.index[0] if len(weather) > 1 else pd.Timedelta("15min")
    mid = weather.index + step / 2  # averaged irradiance belongs to the interval centre
    sol = pvlib.solarposition.get_solarposition(mid, system.latitude, system.longitude)
    zen = sol["apparent_zenith"].to_numpy()
    ghi = weather["ghi_wm2"].to_numpy(float)
    dhi = np.minimum(weather["dhi_wm2"].to_numpy(float), ghi)
    cosz = np.cos(np.radians(zen))
    dni = np.where(zen < 87.0, (ghi - dhi) / np.maximum(cosz, 0.05), 0.0)
    poa = pvlib.irradiance.get_total_irradiance(
        system.tilt_deg,
        system.azimuth_deg,
        zen,
        sol["azimuth"].to_numpy(),
        dni,
        ghi,
        dhi,
        dni_extra=pvlib.irradiance.get_extra_radiation(mid).to_numpy(),
        model="haydavies",
    )["poa_global"]
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"]
    t_cell = pvlib.temperature.sapm_cell(
        poa,
        weather["temp_air_c"].to_numpy(float),
        weather["wind_speed_ms"].to_numpy(float),
        **params,
    )
    dc = pvlib.pvsystem.pvwatts_dc(poa, t_cell, system.peak_kw, system.gamma_pdc)
    ac = pvlib.inverter.pvwatts(np.nan_to_num(dc) * (1 - system.losses), system.peak_kw)
    return pd.Series(np.clip(np.asarray(ac, float), 0.0, None), index=weather.index, name="pv_kw")


def clear_sky_weather(
    index: pd.DatetimeIndex, system: PvSystem, temp_air_c: float = 20.0
) -> pd.DataFrame:
    """Clear-sky weather at the array's location (pvlib Ineichen, climatological turbidity).

    Returns the columns :func:`pv_power` reads; ``temp_air_c`` [degC] and a 1 m/s wind are
    constant (they move PV by a few percent only).
    """
    check_index(index, name="clear-sky index")
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta("15min")
    site = pvlib.location.Location(system.latitude, system.longitude)
    sky = site.get_clearsky(index + step / 2, model="ineichen")
    return pd.DataFrame(
        {
            "ghi_wm2": sky["ghi"].to_numpy(float),
            "dhi_wm2": sky["dhi"].to_numpy(float),
            "temp_air_c": temp_air_c,
            "wind_speed_ms": 1.0,
        },
        index=index,
    )


def clear_sky_scale(
    measured_kw: pd.Series,
    system: PvSystem,
    floor: float = 0.05,
    clear_sky_kw: pd.Series | None = None,
) -> float:
    """Ratio of measured PV energy to the clear-sky model's over the same slots [-].

    Parameters
    ----------
    measured_kw : pandas.Series
        Recent measured PV power [kW] on a fixed-step UTC index (e.g. the last 2 days); NaN
        slots are ignored.
    system : PvSystem
        The array.
    floor : float
        Lowest scale returned (a dark day should not forecast zero forever) [-].
    clear_sky_kw : pandas.Series, optional
        :func:`pv_clear_sky` on the index of ``measured_kw``, if already computed [kW].

    Returns
    -------
    float
        Scale in [floor, 1.2]; 1.0 if the history holds no daylight.
    """
    valid = measured_kw.dropna()
    if len(valid) < 2:
        return 1.0
    if clear_sky_kw is None:
        clear_sky_kw = pv_clear_sky(pd.DatetimeIndex(measured_kw.index), system)
    model = clear_sky_kw.reindex(valid.index)
    if model.sum() <= 0.05 * system.peak_kw:
        return 1.0
    return float(np.clip(valid.clip(lower=0).sum() / model.sum(), floor, 1.2))


def pv_clear_sky(index: pd.DatetimeIndex, system: PvSystem, scale: float = 1.0) -> pd.Series:
    """PV forecast without a weather feed: clear-sky production times ``scale`` [kW]."""
    return (pv_power(clear_sky_weather(index, system), system) * scale).rename("pv_kw")


def household_load_forecast(
    history_kw: pd.Series,
    index: pd.DatetimeIndex,
    fallback_kw: pd.Series,
    *,
    half_life_days: float = 7.0,
    tz: str = "Europe/Berlin",
    min_days: int = 1,
) -> pd.Series:
    """Household load [kW] on ``index`` from the site's own history, else the standard profile.

    Parameters
    ----------
    history_kw : pandas.Series
        Measured household load (without EV and heat pump) [kW] on a UTC index with the
        step of ``index``; NaN = no data.
    index : pandas.DatetimeIndex
        The forecast slots (UTC, fixed step).
    fallback_kw : pandas.Series
        The standard profile on ``index`` (BDEW H25 scaled to the annual consumption) [kW].
    half_life_days : float
        Weight of a past day halves every so many days [d].
    tz : str
        Time zone of the household's day (weekday/weekend and time of day).
    min_days : int
        A (day type, time of day) cell needs data from at least this many days, else the
        fallback is used for it.

    Returns
    -------
    pandas.Series
        The forecast [kW], >= 0.
    """
    check_index(index, name="forecast index")
    fallback = pd.Series(np.asarray(fallback_kw, float), index=index)
    hist = history_kw.dropna()
    if hist.empty:
        return fallback.clip(lower=0).rename("load_kw")
    _require_utc(hist.index)
    hist_index = pd.DatetimeIndex(hist.index)
    ages = (index[0].value - hist_index.asi8) / pd.Timedelta(days=1).value  # type: ignore[attr-defined]
    weights = np.power(0.5, np.maximum(np.asarray(ages, float), 0.0) / half_life_days)
    keys = _day_keys(hist_index, tz)
    table = pd.DataFrame(
        {"wv": hist.to_numpy(float) * weights, "w": weights, "day": keys[2]},
        index=pd.MultiIndex.from_arrays([keys[0], keys[1]]),
    )
    grouped = table.groupby(level=[0, 1])
    profile = grouped["wv"].sum() / grouped["w"].sum()
    days = grouped["day"].nunique()
    profile = profile[days >= min_days]
    want = _day_keys(index, tz)
    learned = profile.reindex(pd.MultiIndex.from_arrays([want[0], want[1]])).to_numpy()
    out = np.where(np.isfinite(learned), learned, fallback.to_numpy())
    return pd.Series(np.clip(out, 0.0, None), index=index, name="load_kw")


def _day_keys(index: pd.DatetimeIndex, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weekend?, minute of the local day, local date) per timestamp."""
    local = index.tz_convert(tz)
    weekend = np.asarray(local.dayofweek >= 5)
    minute = np.asarray(local.hour * 60 + local.minute)
    days = np.asarray(local.normalize().asi8)  # type: ignore[attr-defined]
    return weekend, minute, days


def heat_demand(
    t_out_c: pd.Series | np.ndarray,
    loss_kw_per_k: float,
    t_set_c: float = 21.0,
    heating_limit_c: float = 15.0,
) -> np.ndarray:
    """Space-heating demand [kW] = loss coefficient x (set - outdoor temperature), >= 0.

    Above the heating limit (German "Heizgrenze", 15 degC) solar and internal gains cover the
    losses and the demand is 0.

    Parameters
    ----------
    t_out_c : array
        Outdoor temperature forecast [degC].
    loss_kw_per_k : float
        The house's heat loss coefficient [kW/K].
    t_set_c : float
        Indoor (store) set temperature [degC].
    heating_limit_c : float
        Outdoor temperature above which nothing is heated [degC].
    """
    if loss_kw_per_k < 0:
        raise ValueError(f"loss_kw_per_k: must be >= 0, got {loss_kw_per_k}")
    t_out = np.asarray(t_out_c, float)
    demand = np.clip(loss_kw_per_k * (t_set_c - t_out), 0.0, None)
    return np.where(t_out < heating_limit_c, demand, 0.0)


def loss_coefficient(
    annual_heat_kwh: float,
    t_out_c: np.ndarray,
    t_set_c: float = 21.0,
    heating_limit_c: float = 15.0,
) -> float:
    """Loss coefficient [kW/K] that makes :func:`heat_demand` sum to ``annual_heat_kwh``.

    ``t_out_c`` is one year of hourly outdoor temperatures [degC] (e.g. a test reference year).
    """
    degree_hours = float(heat_demand(t_out_c, 1.0, t_set_c, heating_limit_c).sum())
    if degree_hours <= 0:
        raise ValueError("t_out_c: no hour below the heating limit")
    return annual_heat_kwh / degree_hours


def forecast_error(forecast: pd.Series, actual: pd.Series) -> tuple[float, float]:
    """(MAE, bias) of a forecast against what happened, in the series' unit; bias = mean(f - a)."""
    both = pd.concat([forecast, actual], axis=1).dropna()
    diff = both.iloc[:, 0] - both.iloc[:, 1]
    return float(diff.abs().mean()), float(diff.mean())


def skill(forecast: pd.Series, persistence: pd.Series, actual: pd.Series) -> dict[str, float]:
    """Errors of ``forecast`` and its skill against ``persistence`` on the slots all three have.

    Returns ``mae``, ``rmse`` (the series' unit), ``mae_skill`` = 1 - MAE / MAE_persistence and
    ``rmse_skill`` = 1 - RMSE / RMSE_persistence [-] (1 perfect, 0 no better than persistence,
    negative worse).
    """
    both = pd.concat([forecast, persistence, actual], axis=1).dropna().to_numpy(float)
    err, ref = both[:, 0] - both[:, 2], both[:, 1] - both[:, 2]
    mae, rmse = float(np.abs(err).mean()), float(np.sqrt(np.mean(err**2)))
    mae_p, rmse_p = float(np.abs(ref).mean()), float(np.sqrt(np.mean(ref**2)))
    return {
        "mae": mae,
        "rmse": rmse,
        "mae_skill": 1 - mae / mae_p if mae_p > 0 else float("nan"),
        "rmse_skill": 1 - rmse / rmse_p if rmse_p > 0 else float("nan"),
    }


def _require_utc(index: pd.Index) -> None:
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ValueError("index: need a tz-aware UTC DatetimeIndex")
