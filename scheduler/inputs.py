"""The service's live inputs, built in one place: price store and jobs, weather, per-site feeds.

:class:`LiveInputs` opens the price store (SQLite, survives restarts) and the weather feed, and
hands out what a site's :class:`~scheduler.controller.SiteController` reads:
:meth:`LiveInputs.price_feed` (spot from the store, flagged estimates where it has nothing) and
:meth:`LiveInputs.site_weather` (the provider's forecast, flagged clear sky where it has none).
:meth:`LiveInputs.run` runs the price job of every zone and the weather refresh in the
background; listeners added with :meth:`LiveInputs.add_price_listener` are called with the zone
when its prices reach further (on the event loop's thread), so the runtime can replan the sites
of that zone. Nothing here makes a cycle wait on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pricing import SeriesCache, SiteExportRules, Tariff
from pricing.job import BUNDLED_ZONES, PriceJob, zone_sources
from pricing.sources import (
    BundledCarbonSource,
    BundledPriceSource,
    PriceSource,
    seasonal_carbon_reference,
    seasonal_price_reference,
)
from pricing.store import PriceStore, StoredPriceSource
from scheduler.feeds import MAX_PRICE_AGE, PriceFeed
from scheduler.weather import LocationWeather, OpenMeteoProvider, WeatherFeed

log = logging.getLogger(__name__)
PriceListener = Callable[[str], None]


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


@dataclass(frozen=True)
class InputSettings:
    """Where live inputs come from (built from the service settings, ``HBOPT_*``).

    Parameters
    ----------
    price_store_path : pathlib.Path
        SQLite file of the fetched prices.
    zones : tuple of str
        Bidding zones with a price job (entsoe-py area names, e.g. ``DE_LU``).
    entsoe_token : str
        ENTSO-E security token; empty: ENTSO-E is skipped.
    smard_enabled : bool
        Ask SMARD (key-free, DE-LU only) when ENTSO-E is not configured or fails.
    smard_url : str or None
        SMARD chart-data base URL (None: smard.de).
    weather_url : str
        Open-Meteo base URL; empty: no provider, every slot the flagged clear-sky fallback.
    http_timeout_s : float
        HTTP timeout of every fetch [s].
    weather_refresh_min, weather_max_age_h : float
        A cell's forecast is re-fetched after [min]; not used when older than [h].
    publication : str
        Local time (Europe/Berlin, ``HH:MM``) after which the job expects tomorrow's prices.
    """

    price_store_path: Path
    zones: tuple[str, ...] = ("DE_LU",)
    entsoe_token: str = ""
    smard_enabled: bool = True
    smard_url: str | None = None
    weather_url: str = "https://api.open-meteo.com"
    http_timeout_s: float = 20.0
    weather_refresh_min: float = 60.0
    weather_max_age_h: float = 12.0
    publication: str = "13:05"


@dataclass(frozen=True)
class InputsStatus:
    """What a site's plan runs on, in words and as flags (the status route's ``inputs``)."""

    prices: str
    weather: str
    price_estimate: bool
    weather_estimate: bool
    zone: str = "DE_LU"
    prices_known_until: pd.Timestamp | None = None
    weather_fetched_at: pd.Timestamp | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (times as ISO 8601 strings)."""
        until, fetched = self.prices_known_until, self.weather_fetched_at
        return {
            "zone": self.zone,
            "prices": self.prices,
            "weather": self.weather,
            "price_estimate": self.price_estimate,
            "weather_estimate": self.weather_estimate,
            "prices_known_until": None if until is None else until.isoformat(),
            "weather_fetched_at": None if fetched is None else fetched.isoformat(),
        }


@dataclass
class LiveInputs:
    """Price store, price jobs and weather feed of one service process.

    Parameters
    ----------
    settings : InputSettings
    clock : callable
        Current UTC time (``pandas.Timestamp``); an accelerated clock in tests and the demo.
    sleep : callable
        ``await sleep(seconds)`` on that clock.
    """

    settings: InputSettings
    clock: Callable[[], pd.Timestamp] = _utc_now
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    prices: PriceStore = field(init=False)
    weather: WeatherFeed = field(init=False)
    _listeners: list[PriceListener] = field(default_factory=list, init=False)
    _jobs: list[PriceJob] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.prices = PriceStore(s.price_store_path)
        provider = OpenMeteoProvider(s.weather_url, s.http_timeout_s) if s.weather_url else None
        self.weather = WeatherFeed(
            provider,
            self.clock,
            refresh_after=pd.Timedelta(minutes=s.weather_refresh_min),
            max_age=pd.Timedelta(hours=s.weather_max_age_h),
        )
        self._jobs = [self._job(zone) for zone in s.zones]

    def _job(self, zone: str) -> PriceJob:
        s = self.settings
        sources = zone_sources(
            zone,
            entsoe_token=s.entsoe_token,
            smard_enabled=s.smard_enabled,
            smard_base_url=s.smard_url,
            timeout_s=s.http_timeout_s,
            smard_attempts=2,
        )
        return PriceJob(
            zone,
            sources,
            self.prices,
            self._announce,
            clock=self.clock,
            sleep=self.sleep,
            publication=s.publication,
        )

    # ------------------------------------------------------------------ wiring
    @property
    def jobs(self) -> tuple[PriceJob, ...]:
        return tuple(self._jobs)

    def add_price_listener(self, listener: PriceListener) -> None:
        """``listener(zone)`` is called when new prices of ``zone`` are stored."""
        self._listeners.append(listener)

    def remove_price_listener(self, listener: PriceListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _announce(self, zone: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(zone)
            except Exception:  # one listener's failure must not starve the others
                log.exception("price listener failed for %s", zone)

    async def run(self, weather_every_s: float = 900.0) -> None:
        """The price job of every zone and the weather refresh, forever (cancel to stop)."""
        tasks = [job.run() for job in self._jobs]
        await asyncio.gather(*tasks, self.weather.run(weather_every_s, self.sleep))

    def close(self) -> None:
        self.prices.close()

    # ------------------------------------------------------------------ per site
    def price_source(self, zone: str) -> PriceSource:
        """The zone's stored prices, the bundled history behind them where the zone has one."""
        fallback = BundledPriceSource() if zone in BUNDLED_ZONES else None
        return StoredPriceSource(self.prices, zone, fallback)

    def price_feed(
        self,
        zone: str,
        tariff: Tariff,
        rules: SiteExportRules,
        max_age: pd.Timedelta = MAX_PRICE_AGE,
    ) -> PriceFeed:
        """A site's :class:`~scheduler.feeds.PriceFeed`: answers for any date, estimates flagged."""
        spot = SeriesCache.for_prices(
            self.price_source(zone), max_age, self.clock, reference=seasonal_price_reference()
        )
        carbon = SeriesCache.for_carbon(
            BundledCarbonSource(), max_age, self.clock, reference=seasonal_carbon_reference()
        )
        return PriceFeed(spot, carbon, tariff, rules)

    def site_weather(self, latitude: float, longitude: float) -> LocationWeather:
        """The weather at a site, for ``SiteController(weather=...)``."""
        return self.weather.at(latitude, longitude)

    def status(self, zone: str, latitude: float, longitude: float) -> InputsStatus:
        """What a site at this location in this zone plans on right now."""
        now = self.clock()
        zs = self.prices.status(zone)
        until = zs.known_until
        live = until is not None and until > now
        if live:
            prices = f"day-ahead prices from {zs.source} up to {until:%Y-%m-%d %H:%M} UTC"
            if zs.error:
                prices += f" (last attempt: {zs.error})"
        else:
            why = zs.error or "no source configured"
            prices = f"estimated prices (flagged per slot): {why}"
        fetched, error = self.weather.status(latitude, longitude)
        fresh = fetched is not None and now - fetched <= self.weather.max_age
        if fresh:
            weather = f"weather forecast fetched {fetched:%Y-%m-%d %H:%M} UTC"
        elif self.weather.provider is None:
            weather = "clear-sky weather (flagged): no weather provider configured"
        else:
            weather = f"clear-sky weather (flagged): {error or 'no forecast yet'}"
        return InputsStatus(prices, weather, not live, not fresh, zone, until, fetched)
