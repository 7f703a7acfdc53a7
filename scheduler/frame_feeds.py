"""Feeds answered from the analyst's own pandas data, with the interfaces of :mod:`scheduler.feeds`.

A backtest on one's own data must show the controller those data and nothing else. These feeds
wrap UTC 15-minute series and frames (checked by :mod:`scheduler.backtest_inputs`):

* :class:`SeriesPriceSource` / :class:`SeriesCarbonSource`: a series as a
  :class:`~pricing.PriceSource` / :class:`~pricing.CarbonSource`, so it goes through the same
  publication gate (:class:`~scheduler.feeds.PublishedPrices`), cache and estimate as live prices;
* :class:`RetailPriceFeed`: a :class:`~scheduler.feeds.PriceFeed` on import and export prices
  given directly (no tariff applied);
* :class:`FrameWeather` and :class:`SeriesHeatDemand`: the measured values as a perfect forecast
  inside the data, and the last (first) day repeated beyond its end (start), because the
  controller's horizon reaches past the end of any period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from pricing import SeriesCache, SiteExportRules, Tariff
from scheduler.feeds import MAX_PRICE_AGE, PriceFeed, PublishedPrices

DAY = pd.Timedelta(days=1)


class WeatherFeed(Protocol):
    """What the controller reads the weather from (temperatures; PV in ``weather`` mode)."""

    def weather(self, index: pd.DatetimeIndex) -> pd.DataFrame: ...


class HeatDemandFeed(Protocol):
    """Heat drawn from a heat pump's store besides its loss to the outdoor air [kW thermal]."""

    def demand(self, index: pd.DatetimeIndex) -> pd.Series: ...


class LoadFeed(Protocol):
    """A household-load forecast [kW] (backtests: the measured load, a perfect forecast)."""

    def load(self, index: pd.DatetimeIndex) -> pd.Series: ...


@dataclass(frozen=True)
class SeriesPriceSource:
    """A spot (or retail) price series [EUR/kWh] on a UTC 15-minute grid as a price source."""

    series: pd.Series

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        s = self.series
        return s[(s.index >= start) & (s.index < end)]


@dataclass(frozen=True)
class SeriesCarbonSource:
    """A grid CO2 intensity series [gCO2eq/kWh] on a UTC 15-minute grid as a carbon source."""

    series: pd.Series

    def carbon_intensity(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        s = self.series
        return s[(s.index >= start) & (s.index < end)]


def spot_price_feed(
    spot: pd.Series,
    co2: pd.Series,
    tariff: Tariff,
    rules: SiteExportRules,
    clock: Callable[[], pd.Timestamp],
) -> PriceFeed:
    """Spot prices [EUR/kWh] through ``tariff``, as published at ``clock``'s time, and CO2."""
    published = PublishedPrices(SeriesPriceSource(spot), clock)
    return PriceFeed(
        SeriesCache.for_prices(published, MAX_PRICE_AGE, clock),
        SeriesCache.for_carbon(SeriesCarbonSource(co2), MAX_PRICE_AGE, clock),
        tariff,
        rules,
    )


@dataclass
class RetailPriceFeed(PriceFeed):
    """Import and export prices given per slot [EUR/kWh]; ``spot`` caches the import prices.

    Both are gated like day-ahead prices (known to the end of tomorrow from 13:00 local); the
    tariff and export rules are not applied, the given prices are what the site pays and earns.
    """

    export: SeriesCache | None = field(default=None, repr=False)

    @classmethod
    def from_series(
        cls,
        import_eur: pd.Series,
        export_eur: pd.Series,
        *,
        co2: pd.Series,
        tariff: Tariff,
        rules: SiteExportRules,
        clock: Callable[[], pd.Timestamp],
    ) -> RetailPriceFeed:
        """The feed of ``import_eur`` / ``export_eur`` [EUR/kWh] and ``co2`` [g/kWh]."""

        def cache(series: pd.Series, column: str) -> SeriesCache:
            published = PublishedPrices(SeriesPriceSource(series), clock)
            return SeriesCache(published.spot_prices, column, MAX_PRICE_AGE, clock)

        return cls(
            cache(import_eur, "spot_eur_per_kwh"),
            SeriesCache.for_carbon(SeriesCarbonSource(co2), MAX_PRICE_AGE, clock),
            tariff,
            rules,
            export=cache(export_eur, "spot_eur_per_kwh"),
        )

    def refresh(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        assert self.export is not None
        self.export.refresh(start, end)
        return super().refresh(start, end)

    def _frame(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        assert self.export is not None
        imp = self.spot.get(index).frame
        exp = self.export.get(index).frame
        return pd.DataFrame(
            {
                "import_eur_per_kwh": imp["spot_eur_per_kwh"].to_numpy(float),
                "export_eur_per_kwh": exp["spot_eur_per_kwh"].to_numpy(float),
                "co2_g_per_kwh": self.carbon.get(index).frame["co2_g_per_kwh"].to_numpy(),
                "price_is_estimate": imp["is_estimate"].to_numpy(bool),
            },
            index=index,
        )


class FrameWeather:
    """Weather from a UTC 15-minute frame (the columns of ``adapters.datasets.WEATHER_COLUMNS``).

    Inside the frame's span the measured values are the forecast (a perfect weather forecast);
    outside it the nearest whole day of the frame is repeated (persistence).
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def weather(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """The frame's columns on ``index``."""
        return self.frame.reindex(persist_days(index, self.frame.index)).set_axis(index)


class SeriesHeatDemand:
    """Heat demand [kW thermal] from a UTC 15-minute series, repeated like :class:`FrameWeather`."""

    def __init__(self, series: pd.Series) -> None:
        self.series = series

    def demand(self, index: pd.DatetimeIndex) -> pd.Series:
        """Heat demand [kW] on ``index``."""
        return self.series.reindex(persist_days(index, self.series.index)).set_axis(index)


class SeriesLoad:
    """Household load [kW] from a UTC 15-minute series, repeated like :class:`FrameWeather`."""

    def __init__(self, series: pd.Series) -> None:
        self.series = series

    def load(self, index: pd.DatetimeIndex) -> pd.Series:
        """Load [kW] on ``index``."""
        return self.series.reindex(persist_days(index, self.series.index)).set_axis(index)


def persist_days(index: pd.DatetimeIndex, known: pd.Index) -> pd.DatetimeIndex:
    """``index`` with stamps outside ``known`` (a 15-min grid) moved by whole days into it.

    Beyond the end a stamp maps into the last day of ``known``, before the start into the first.
    Needs ``known`` to span at least one day.
    """
    known = pd.DatetimeIndex(known)
    first, end = known[0], known[-1] + pd.Timedelta(minutes=15)
    last_day = end - DAY
    late = last_day + (index - last_day) % DAY
    early = first + (index - first) % DAY
    return index.where(index < end, late).where(index >= first, early).floor("15min")


__all__ = [
    "FrameWeather",
    "HeatDemandFeed",
    "LoadFeed",
    "RetailPriceFeed",
    "SeriesCarbonSource",
    "SeriesHeatDemand",
    "SeriesLoad",
    "SeriesPriceSource",
    "WeatherFeed",
    "persist_days",
    "spot_price_feed",
]
