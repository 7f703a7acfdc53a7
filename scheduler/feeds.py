"""What a cycle reads besides the box: prices and CO2 (cached), weather, the standard load.

Everything here answers from memory inside a cycle. Prices and CO2 come from
:class:`pricing.SeriesCache` objects that a background task refreshes
(:meth:`PriceFeed.refresh`, run in a thread); :meth:`PriceFeed.frame` never touches the
network. :class:`PublishedPrices` hides day-ahead prices that were not yet published at the
clock's time, so a backtest on historical prices sees what a live service would have seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adapters import datasets
from core.timeindex import shareable
from pricing import (
    PriceSource,
    SeriesCache,
    SiteExportRules,
    Tariff,
    retail_prices,
)
from pricing.sources import BundledCarbonSource, BundledPriceSource

#: Day-ahead results are published around 12:45 CET; assume them known from 13:00 local.
PUBLICATION_LOCAL_HOUR = 13
MARKET_TZ = "Europe/Berlin"
MAX_PRICE_AGE = pd.Timedelta(hours=2)


@dataclass(frozen=True)
class PublishedPrices:
    """A price source that only returns prices published by ``clock()`` (UTC Timestamp).

    Before 13:00 local the day-ahead prices are known to the end of today, after it to the end
    of tomorrow; later slots are left out, and the cache estimates (and flags) them.
    """

    source: PriceSource
    clock: Callable[[], pd.Timestamp]

    def horizon(self) -> pd.Timestamp:
        """End of the published prices at the clock's time (UTC)."""
        local = self.clock().tz_convert(MARKET_TZ)
        days = 2 if local.hour >= PUBLICATION_LOCAL_HOUR else 1
        end = (local.normalize().tz_localize(None) + pd.Timedelta(days=days)).tz_localize(MARKET_TZ)
        return end.tz_convert("UTC")

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        return self.source.spot_prices(start, min(end, self.horizon()))


@dataclass
class PriceFeed:
    """Retail import/export prices and grid CO2 per slot, from background-refreshed caches.

    Parameters
    ----------
    spot, carbon : SeriesCache
        Caches of spot prices [EUR/kWh] and CO2 intensity [gCO2eq/kWh].
    tariff : Tariff
        The site's retail tariff.
    rules : SiteExportRules
        Negative-price rule and feed-in cap.
    """

    spot: SeriesCache
    carbon: SeriesCache
    tariff: Tariff
    rules: SiteExportRules
    known_until: pd.Timestamp | None = None
    _window: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def bundled(
        cls,
        tariff: Tariff,
        rules: SiteExportRules,
        clock: Callable[[], pd.Timestamp],
        max_age: pd.Timedelta = MAX_PRICE_AGE,
    ) -> PriceFeed:
        """The bundled historical prices as they were published, on ``clock``'s time."""
        published = PublishedPrices(BundledPriceSource(), clock)
        return cls(
            SeriesCache.for_prices(published, max_age, clock),
            SeriesCache.for_carbon(BundledCarbonSource(), max_age, clock),
            tariff,
            rules,
        )

    def refresh(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        """Fetch (blocking: run it in a thread); True if prices further ahead became known."""
        self.spot.refresh(start, end)
        self.carbon.refresh(start, end)
        self._window = None
        spot = self.spot.get(pd.date_range(start, end, freq="15min", inclusive="left")).frame
        known = spot.index[~spot["is_estimate"].to_numpy(bool)]
        last = known[-1] if len(known) else None
        grew = last is not None and (self.known_until is None or last > self.known_until)
        self.known_until = last if grew else self.known_until
        return bool(grew)

    def frame(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """Import/export [EUR/kWh], spot [EUR/kWh], CO2 [g/kWh] and ``price_is_estimate``.

        Computed for three days at a time and kept until the next refresh.
        """
        w = self._window
        if w is None or index[0] < w.index[0] or index[-1] > w.index[-1]:
            start = index[0].floor("D")
            days = max(3, int(np.ceil((index[-1] - start) / pd.Timedelta(days=1))) + 1)
            span = pd.date_range(start, periods=days * 96, freq="15min")
            w = self._window = shareable(self._frame(span))  # sites of a zone share the feed
        return w.reindex(index)

    def _frame(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        spot = self.spot.get(index).frame
        out = retail_prices(spot, self.tariff, self.rules)
        frame = out[["import_eur_per_kwh", "export_eur_per_kwh", "spot_eur_per_kwh"]].copy()
        frame["co2_g_per_kwh"] = self.carbon.get(index).frame["co2_g_per_kwh"].to_numpy()
        frame["price_is_estimate"] = spot["is_estimate"].to_numpy(bool)
        return frame


@dataclass
class DayCache:
    """Values of an expensive function of a period, computed for a few days at a time.

    ``compute(index)`` returns a frame on ``index``; :meth:`get` serves any index inside the
    computed days and recomputes (from the day before ``index[0]``) when asked outside.
    """

    compute: Callable[[pd.DatetimeIndex], pd.DataFrame]
    days: int = 5
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    def get(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        f = self._frame
        if f is None or index[0] < f.index[0] or index[-1] > f.index[-1]:
            start = index[0].floor("D") - pd.Timedelta(days=2)
            days = int(np.ceil((index[-1] - start) / pd.Timedelta(days=1))) + 1
            span = pd.date_range(start, periods=max(self.days, days) * 96, freq="15min")
            # a controller reads it from its cycle's thread and from the event loop (the
            # heat-store observer) at once: warmed, see shareable
            self._frame = f = shareable(self.compute(span))
        return f.reindex(index, method="ffill")


class BundledWeather:
    """Weather "forecast" from the bundled measured data (DWD where measured, else TRY).

    Measured weather as the forecast is a perfect weather forecast: use it for temperatures
    (day-ahead temperature forecasts are good to 1-2 K) and, optionally, PV.
    """

    def __init__(self) -> None:
        self._cache = DayCache(datasets.weather_for_period)

    def weather(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """:data:`adapters.datasets.WEATHER_COLUMNS` on ``index``."""
        return self._cache.get(index)


class StandardLoad:
    """BDEW H25 household profile scaled to ``annual_kwh`` [kWh/a], the load fallback."""

    def __init__(self, annual_kwh: float) -> None:
        self.annual_kwh = annual_kwh
        self._cache = DayCache(
            lambda idx: datasets.household_load_for_period(idx, annual_kwh).to_frame()
        )

    def load(self, index: pd.DatetimeIndex) -> pd.Series:
        """Standard-profile load [kW] on ``index``."""
        return self._cache.get(index)["load_kw"]
