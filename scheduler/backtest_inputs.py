"""Everything a backtest runs on, as one typed container: the analyst's data or the bundled data.

:class:`BacktestInputs` holds pandas data in the project's units on a tz-aware UTC index:

=================  ==========================================================================
``prices``         frame: ``spot_eur_per_kwh`` (through the home's tariff), or
                   ``import_eur_per_kwh`` and ``export_eur_per_kwh`` (as paid and earned)
``weather``        frame: ``temp_air_c`` [degC], ``ghi_wm2``, ``dhi_wm2`` [W/m^2],
                   ``wind_speed_ms`` [m/s] (PV through pvlib, outdoor temperature)
``load_kw``        series: household load without EV and heat pump [kW]
``ev_sessions``    frame: ``plugin_utc``, ``plugout_utc`` (tz-aware), ``energy_kwh`` (the
                   energy the car takes) [kWh]; one car, sessions do not overlap
``co2_g_per_kwh``  series: grid carbon intensity [gCO2eq/kWh]
``heat_demand_kw`` series or None: heat drawn from the store besides its loss [kW thermal]
``home``           :class:`~scheduler.scenario.Home`: equipment and tariff
``forecast_        frame or None: the weather the controller sees as its forecast (e.g.
weather``          :func:`optimizer.weather_errors.perturb_weather`); None: the measured
                   weather (a perfect forecast)
``perfect_load``   the controller's load forecast is the measured load (perfect information)
                   instead of its own forecast from the site's history
=================  ==========================================================================

Series may have any fixed step up to 1 h: finer steps are averaged onto 15-minute slots,
coarser ones held. :meth:`BacktestInputs.for_period` checks everything once and raises
:class:`InputError` naming the argument (wrong index, naive times, missing columns, NaN, a
period not covered). The controller, the twin, the baselines and the score all read from the
same checked inputs; :func:`bundled_inputs` builds them from the bundled data (the default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from adapters import datasets
from adapters.backtest_csv import read_backtest_csvs
from pricing import load_tariff, retail_prices
from pricing.sources import BundledCarbonSource, BundledPriceSource
from scheduler.ev_sessions import LEARN_DAYS
from scheduler.feeds import PriceFeed
from scheduler.frame_feeds import (
    FrameWeather,
    RetailPriceFeed,
    SeriesHeatDemand,
    SeriesLoad,
    spot_price_feed,
)
from scheduler.scenario import Home
from simulation.twin import BatteryParams, HeatPumpParams, Profiles, SiteParams, WallboxParams

QUARTER = pd.Timedelta(minutes=15)
WEATHER_COLUMNS = ("temp_air_c", "ghi_wm2", "dhi_wm2", "wind_speed_ms")
EV_COLUMNS = ("plugin_utc", "plugout_utc", "energy_kwh")
#: Data before the period the price feed may use for its estimate of unpublished prices.
PRICE_HISTORY = pd.Timedelta(days=35)
#: Data after the period the bundled inputs include (the controller's horizon, 36 h at most,
#: and the next day it values the stored energy on reach there).
LOOKAHEAD = pd.Timedelta(days=3)
#: EV sessions before the period given as the site's history (what the controller learns from).
EV_HISTORY = pd.Timedelta(days=LEARN_DAYS)


class InputError(ValueError):
    """Backtest data that cannot be used; ``argument`` names which one."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason


@dataclass(frozen=True)
class BacktestInputs:
    """The data of one backtest (see the module notes for columns and units)."""

    prices: pd.DataFrame
    weather: pd.DataFrame
    load_kw: pd.Series
    ev_sessions: pd.DataFrame
    co2_g_per_kwh: pd.Series
    heat_demand_kw: pd.Series | None = None
    home: Home = field(default_factory=Home)
    #: Sessions before the period, the site's history the controller learns from (same
    #: columns as ``ev_sessions``); ``None``: the controller starts without history.
    ev_history: pd.DataFrame | None = None
    forecast_weather: pd.DataFrame | None = None
    perfect_load: bool = False
    #: The building's true loss [kW/K] where it differs from the configured heat pump's: the
    #: twin and perfect foresight run on it, the controller is configured with ``home``'s.
    true_heat_loss_kw_per_k: float | None = None

    def __post_init__(self) -> None:
        if self.true_heat_loss_kw_per_k is not None and not self.true_heat_loss_kw_per_k >= 0:
            raise InputError("true_heat_loss_kw_per_k", "must be >= 0")
        price_cols: tuple[str, ...] = ("spot_eur_per_kwh",)
        if "spot_eur_per_kwh" not in getattr(self.prices, "columns", ()):
            price_cols = ("import_eur_per_kwh", "export_eur_per_kwh")
        prices = _quarters("prices", _frame("prices", self.prices, price_cols))
        weather = _frame("weather", self.weather, WEATHER_COLUMNS)
        object.__setattr__(self, "prices", prices)
        object.__setattr__(self, "weather", _quarters("weather", weather))
        object.__setattr__(self, "load_kw", _power("load_kw", self.load_kw))
        object.__setattr__(self, "co2_g_per_kwh", _power("co2_g_per_kwh", self.co2_g_per_kwh))
        if self.heat_demand_kw is not None:
            object.__setattr__(
                self, "heat_demand_kw", _power("heat_demand_kw", self.heat_demand_kw)
            )
        object.__setattr__(self, "ev_sessions", _sessions(self.ev_sessions))
        if self.forecast_weather is not None:
            fw = _frame("forecast_weather", self.forecast_weather, WEATHER_COLUMNS)
            object.__setattr__(self, "forecast_weather", _quarters("forecast_weather", fw))

    @classmethod
    def from_csv(cls, directory: str | Path, home: Home | None = None) -> BacktestInputs:
        """Inputs from the CSV files of ``directory`` (:mod:`adapters.backtest_csv`)."""
        return cls(**read_backtest_csvs(directory)._asdict(), home=home or Home())

    @property
    def spot_given(self) -> bool:
        """Prices are spot prices (the tariff applies), not import/export prices."""
        return "spot_eur_per_kwh" in self.prices

    def for_period(self, start: pd.Timestamp, end: pd.Timestamp) -> BacktestInputs:
        """These inputs after checking that they cover ``[start, end)`` (UTC, whole days).

        Raises
        ------
        InputError
            A period boundary is not tz-aware, not on a 15-minute boundary, or shorter than a
            day, or a series does not cover the period without gaps.
        """
        for name, t in (("start", start), ("end", end)):
            if t.tzinfo is None:
                raise InputError(name, "naive timestamp; use tz-aware UTC")
            if t != t.floor("15min"):
                raise InputError(name, f"{t} is not on a 15-minute boundary")
        if end - start < pd.Timedelta(days=1):
            raise InputError("end", "the period must be at least one day")
        series: dict[str, pd.Series | pd.DataFrame | None] = {
            "prices": self.prices,
            "weather": self.weather,
            "load_kw": self.load_kw,
            "co2_g_per_kwh": self.co2_g_per_kwh,
            "heat_demand_kw": self.heat_demand_kw,
            "forecast_weather": self.forecast_weather,
        }
        for name, data in series.items():
            if data is not None:
                _covers(name, data, start, end)
        return self

    # ------------------------------------------------------------------ what runs on them
    def tariff_prices(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """Actual import/export prices [EUR/kWh] and CO2 [g/kWh] on ``index`` (the score's)."""
        home = self.home
        if self.spot_given:
            spot = self.prices["spot_eur_per_kwh"].reindex(index)
            frame = pd.DataFrame({"spot_eur_per_kwh": spot, "is_estimate": False}, index=index)
            out = retail_prices(frame, load_tariff(home.tariff_path), home.export_rules())
            out = out[["import_eur_per_kwh", "export_eur_per_kwh", "spot_eur_per_kwh"]].copy()
        else:
            out = self.prices[["import_eur_per_kwh", "export_eur_per_kwh"]].reindex(index)
        out["co2_g_per_kwh"] = self.co2_g_per_kwh.reindex(index).to_numpy()
        return out

    def price_feed(self, clock: Callable[[], pd.Timestamp]) -> PriceFeed:
        """The controller's price feed: these prices as published at ``clock``'s time."""
        home = self.home
        tariff, rules = load_tariff(home.tariff_path), home.export_rules()
        if self.spot_given:
            spot = self.prices["spot_eur_per_kwh"]
            return spot_price_feed(spot, self.co2_g_per_kwh, tariff, rules, clock)
        return RetailPriceFeed.from_series(
            self.prices["import_eur_per_kwh"],
            self.prices["export_eur_per_kwh"],
            co2=self.co2_g_per_kwh,
            tariff=tariff,
            rules=rules,
            clock=clock,
        )

    def weather_feed(self) -> FrameWeather:
        """The controller's weather feed: ``forecast_weather``, else the measured weather."""
        forecast = self.forecast_weather
        return FrameWeather(self.weather if forecast is None else forecast)

    def load_feed(self) -> SeriesLoad | None:
        """The controller's load forecast: the measured load with ``perfect_load``, else None
        (the controller forecasts from the site's history)."""
        return SeriesLoad(self.load_kw) if self.perfect_load else None

    def heat_demand_feed(self) -> SeriesHeatDemand | None:
        """The controller's heat-demand feed, or None (no demand besides the store's loss)."""
        return None if self.heat_demand_kw is None else SeriesHeatDemand(self.heat_demand_kw)

    def pv_kw(self, index: pd.DatetimeIndex) -> pd.Series:
        """PV power of the home's array [kW] on ``index`` from the weather (pvlib)."""
        return self.pv_kw_from(self.weather.reindex(index))

    def pv_kw_from(self, weather: pd.DataFrame) -> pd.Series:
        """PV power of the home's array [kW] from a weather frame on a UTC 15-min index."""
        return datasets.pv_power(weather, self.home.pv_system).clip(lower=0)

    def profiles(self, start: pd.Timestamp, end: pd.Timestamp) -> Profiles:
        """The twin's exogenous inputs over ``[start, end)``."""
        index = pd.date_range(start, end, freq="15min", inclusive="left")
        heat = None if self.heat_demand_kw is None else self.heat_demand_kw.reindex(index)
        return Profiles(
            start=index[0].timestamp(),
            pv_kw=self.pv_kw(index).to_numpy(float),
            load_kw=self.load_kw.reindex(index).to_numpy(float),
            t_out_c=self.weather["temp_air_c"].reindex(index).to_numpy(float),
            ev_sessions=self.ev_sessions,
            heat_kw=None if heat is None else heat.to_numpy(float),
        )

    def twin_params(self) -> SiteParams:
        """The twin's physical home (see :func:`twin_params`)."""
        return twin_params(self.physical_home())

    def physical_home(self) -> Home:
        """``home`` as built: its first heat pump with the true loss, if one is given."""
        site, loss = self.home.site, self.true_heat_loss_kw_per_k
        if loss is None or not site.heat_pumps:
            return self.home
        hp = replace(site.heat_pumps[0], loss_kw_per_k=loss)
        return replace(self.home, site=replace(site, heat_pumps=(hp, *site.heat_pumps[1:])))


def bundled_inputs(start: pd.Timestamp, days: int, home: Home | None = None) -> BacktestInputs:
    """The bundled data for ``days`` days from ``start`` (UTC), with margins for the controller.

    Prices and CO2 from the bundled DE-LU sources (35 days before for the estimate of unpublished
    prices, two days after for the horizon), weather from DWD where measured else the TRY, the
    BDEW H25 load for ``home.annual_load_kwh`` and the EV sessions of one Norwegian household.
    """
    home = home or Home()
    end = start + pd.Timedelta(days=days)
    spot = BundledPriceSource().spot_prices(start - PRICE_HISTORY, end + LOOKAHEAD)
    co2 = BundledCarbonSource().carbon_intensity(start - PRICE_HISTORY, end + LOOKAHEAD)
    index = pd.date_range(start - pd.Timedelta(days=2), end + LOOKAHEAD, freq="15min",
                          inclusive="left")  # fmt: skip
    weather = datasets.weather_for_period(index)[list(WEATHER_COLUMNS)].astype(float)
    load = datasets.household_load_for_period(index, home.annual_load_kwh)
    all_sessions = datasets.read_ev_sessions()
    sessions = datasets.ev_sessions_for_period(all_sessions, start, end + pd.Timedelta(minutes=15))
    history = datasets.ev_sessions_for_period(all_sessions, start - EV_HISTORY, start)
    history = history[history["plugout_utc"] <= start]
    return BacktestInputs(
        prices=spot.rename("spot_eur_per_kwh").to_frame(),
        weather=weather,
        load_kw=load,
        ev_sessions=sessions[list(EV_COLUMNS)],
        co2_g_per_kwh=co2,
        home=home,
        ev_history=history[list(EV_COLUMNS)].reset_index(drop=True),
    )


def twin_params(home: Home) -> SiteParams:
    """The physical twin of ``home``: its battery, first wallbox and first heat pump.

    The heat pump's COP line is the optimizer's (``cop_at_7c``, ``cop_slope_per_k``) written
    as the twin's ``cop_0c + cop_slope * T``. A missing device becomes one with no power.
    """
    site = home.site
    b = site.battery
    battery = (
        BatteryParams(b.capacity_kwh, b.charge_kw, b.discharge_kw, b.charge_efficiency,
                      b.discharge_efficiency, b.soc_min, b.soc_max, soc_init=max(0.5, b.soc_min))
        if b is not None
        else BatteryParams(capacity_kwh=1e-3, charge_max_kw=0.0, discharge_max_kw=0.0)
    )  # fmt: skip
    wb = site.wallboxes[0] if site.wallboxes else None
    wallbox = WallboxParams(wb.max_current_a, wb.phases, wb.voltage_v) if wb else WallboxParams(0.0)
    hp = site.heat_pumps[0] if site.heat_pumps else None
    heat_pump = (
        HeatPumpParams(el_max_kw=hp.max_kw, store_kwh_per_k=hp.capacity_kwh_per_k,
                       loss_kw_per_k=hp.loss_kw_per_k, cop_0c=hp.cop_at_7c - 7 * hp.cop_slope_per_k,
                       cop_slope=hp.cop_slope_per_k)
        if hp is not None
        else HeatPumpParams(el_max_kw=0.0)
    )  # fmt: skip
    return SiteParams(home.pv_system, battery, wallbox, heat_pump, home.annual_load_kwh)


# ---------------------------------------------------------------------- checks (pure)
def _index(name: str, data: pd.Series | pd.DataFrame) -> pd.DatetimeIndex:
    index = data.index
    if not isinstance(index, pd.DatetimeIndex):
        raise InputError(name, f"index is a {type(index).__name__}, need a DatetimeIndex")
    if index.tz is None:
        raise InputError(name, "naive timestamps; localize to UTC first")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise InputError(name, "timestamps must be increasing and unique")
    if len(index) < 2:
        raise InputError(name, "needs at least two timestamps")
    steps = index[1:] - index[:-1]
    if steps.min() != steps.max():
        raise InputError(name, f"irregular step ({steps.min()} .. {steps.max()}); resample first")
    if steps[0] > pd.Timedelta(hours=1):
        raise InputError(name, f"step {steps[0]} is longer than 1 h")
    return index.tz_convert("UTC")


def _frame(name: str, data: object, columns: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise InputError(name, f"need a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise InputError(name, f"missing column(s) {missing}")
    out = data[list(columns)].astype(float).set_axis(_index(name, data))
    return out


def _power(name: str, data: object) -> pd.Series:
    if isinstance(data, pd.DataFrame) and data.shape[1] == 1:
        data = data.iloc[:, 0]
    if not isinstance(data, pd.Series):
        raise InputError(name, f"need a pandas Series, got {type(data).__name__}")
    series = pd.Series(data.to_numpy(float), index=_index(name, data), name=name)
    return _quarters(name, series.to_frame())[name]


def _quarters(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Onto 15-minute slots: finer steps averaged (power, irradiance), coarser ones held."""
    index = pd.DatetimeIndex(frame.index)
    step = index[1] - index[0]
    if step < QUARTER:
        if QUARTER % step != pd.Timedelta(0):
            raise InputError(name, f"step {step} does not divide 15 minutes")
        counts = frame.resample("15min").count()
        out = frame.resample("15min").mean()
        return out.where(counts >= int(QUARTER / step) // 2)  # half a slot missing -> NaN
    if step % QUARTER != pd.Timedelta(0):
        raise InputError(name, f"step {step} is not a multiple of 15 minutes")
    if index[0] != index[0].floor("15min"):
        raise InputError(name, f"first timestamp {index[0]} is not on a 15-minute boundary")
    full = pd.date_range(index[0], index[-1] + step, freq="15min", inclusive="left")
    return frame.reindex(full, method="ffill", limit=int(step / QUARTER) - 1)


def _covers(name: str, data: pd.Series | pd.DataFrame, start: pd.Timestamp,
            end: pd.Timestamp) -> None:  # fmt: skip
    index = pd.DatetimeIndex(data.index)
    if index[0] > start or index[-1] + QUARTER < end:
        raise InputError(
            name, f"covers {index[0]} .. {index[-1] + QUARTER}, not the period {start} .. {end}"
        )
    inside = data[(index >= start) & (index < end)]
    values = np.asarray(inside, dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1) if bad.ndim == 2 else bad)[0])
        raise InputError(name, f"missing or non-finite value at {inside.index[row]}")


def _sessions(data: object) -> pd.DataFrame:
    name = "ev_sessions"
    if not isinstance(data, pd.DataFrame):
        raise InputError(name, f"need a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in EV_COLUMNS if c not in data.columns]
    if missing:
        raise InputError(name, f"missing column(s) {missing}")
    out = pd.DataFrame(index=pd.RangeIndex(len(data)))
    for col in ("plugin_utc", "plugout_utc"):
        times = pd.to_datetime(data[col].reset_index(drop=True))
        if len(times) and times.dt.tz is None:
            raise InputError(name, f"{col}: naive timestamps; localize to UTC first")
        out[col] = times.dt.tz_convert("UTC") if len(times) else times
    out["energy_kwh"] = pd.to_numeric(data["energy_kwh"].reset_index(drop=True)).astype(float)
    if (out["plugout_utc"] <= out["plugin_utc"]).any():
        raise InputError(name, "every plugout_utc must be after its plugin_utc")
    if (out["energy_kwh"] < 0).any() or out["energy_kwh"].isna().any():
        raise InputError(name, "energy_kwh must be >= 0")
    out = out.sort_values("plugin_utc").reset_index(drop=True)
    if (out["plugin_utc"].iloc[1:].to_numpy() < out["plugout_utc"].iloc[:-1].to_numpy()).any():
        raise InputError(name, "sessions overlap (one car per wallbox)")
    return out


__all__ = [
    "BacktestInputs",
    "InputError",
    "bundled_inputs",
    "twin_params",
]
