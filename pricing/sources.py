"""Price and carbon sources behind two small Protocols, registered by name, built in one place.

Price sources (``PricingSettings.price_source``): ``bundled`` (real DE-LU data shipped in the
package, no key, no network), ``entsoe`` (ENTSO-E Transparency, needs ``HBOPT_ENTSOE_TOKEN``),
``smard`` (SMARD.de, key-free, DE-LU). Carbon sources (``carbon_source``): ``bundled``
(estimate from the bundled German load and solar), ``entsoe`` (A75 generation per type).

The orchestrating functions :func:`prices_for` and :func:`carbon_for` put any source onto the
caller's time grid and fill what the source cannot deliver with a flagged estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, TypeVar

import pandas as pd
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.timeindex import check_index, shareable
from pricing import bundled, carbon, entsoe, smard
from pricing.errors import PricingError
from pricing.estimate import prices_on_index
from pricing.series import QUARTER, expand_to_quarter_hours

# look-back fetched before the first slot: the estimate uses the 21 days up to the last known
# value, which may lie up to two weeks before the horizon (publication gaps, bundled data end)
HISTORY = pd.Timedelta(days=35)


class PricingSettings(BaseSettings):
    """Which sources to use and their parameters; read from ``HBOPT_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="HBOPT_", frozen=True, extra="ignore")

    price_source: str = "bundled"
    carbon_source: str = "bundled"
    entsoe_token: SecretStr | None = None
    entsoe_area: str = "DE_LU"
    smard_region: str = "DE-LU"
    smard_resolution: str = "quarterhour"
    smard_base_url: str = smard.SMARD_BASE_URL
    emission_factors: str = "ipcc_ar5"
    http_timeout_s: float = 30.0
    price_cache_max_age_min: float = 60.0


class PriceSource(Protocol):
    """Known spot prices: a UTC 15-minute series [EUR/kWh], gaps where nothing is published."""

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series: ...


class CarbonSource(Protocol):
    """Known grid carbon intensity: a UTC 15-minute series [gCO2eq/kWh], gaps allowed."""

    def carbon_intensity(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series: ...


def _window(series: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    return series[(series.index >= start) & (series.index < end)]


def _to_quarters(series: pd.Series) -> pd.Series:
    """Hourly series -> 15-minute (held); a 15-minute series is returned as it is."""
    index = pd.DatetimeIndex(series.index)
    if len(index) > 1 and (index[1:] - index[:-1]).min() >= pd.Timedelta(hours=1):
        return expand_to_quarter_hours(series, pd.Timedelta(hours=1))
    return series


@dataclass(frozen=True)
class BundledPriceSource:
    """The bundled DE-LU prices (2024-01-01 .. 2025-09-30 hourly, 2025-10-20 week 15-min)."""

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        return _window(bundled.bundled_quarter_hour_prices(), start, end)


@dataclass(frozen=True)
class EntsoePriceSource:
    token: str
    area: str
    timeout_s: float

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        series = entsoe.get_entsoe_prices(
            self.token, self.area, start, end, timeout_s=self.timeout_s
        )
        return _window(series, start, end)


@dataclass(frozen=True)
class SmardPriceSource:
    """SMARD chart data; ``base_url`` None is SMARD itself, ``attempts`` per HTTP request."""

    region: str
    resolution: str
    timeout_s: float
    base_url: str | None = None
    attempts: int = 4

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        return smard.get_smard_prices(
            start,
            end,
            resolution=self.resolution,
            region=self.region,
            base_url=self.base_url or smard.SMARD_BASE_URL,
            timeout_s=self.timeout_s,
            attempts=self.attempts,
        )


@lru_cache(maxsize=4)
def _bundled_carbon_quarters(solar_factor: float) -> pd.Series:
    frame = bundled.bundled_hourly()
    hourly = carbon.intensity_from_load_and_solar(
        frame["load_mw"], frame["solar_mw"], solar_factor=solar_factor
    ).dropna()
    return shareable(_to_quarters(hourly))


@dataclass(frozen=True)
class BundledCarbonSource:
    """Estimate from the bundled German hourly load and solar (see pricing.carbon)."""

    factors: carbon.EmissionFactors = field(default=carbon.IPCC_AR5)

    def carbon_intensity(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        return _window(_bundled_carbon_quarters(self.factors.solar), start, end)


@dataclass(frozen=True)
class EntsoeCarbonSource:
    token: str
    area: str
    factors: carbon.EmissionFactors
    timeout_s: float

    def carbon_intensity(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        generation = entsoe.get_entsoe_generation(
            self.token, self.area, start, end, timeout_s=self.timeout_s
        )
        intensity = carbon.intensity_from_generation(generation, self.factors).dropna()
        return _window(_to_quarters(intensity), start, end)


def _token(settings: PricingSettings) -> str:
    return settings.entsoe_token.get_secret_value() if settings.entsoe_token else ""


def _factors(settings: PricingSettings) -> carbon.EmissionFactors:
    try:
        return carbon.FACTOR_SETS[settings.emission_factors]
    except KeyError:
        raise PricingError(
            f"emission_factors must be one of {sorted(carbon.FACTOR_SETS)}, "
            f"got {settings.emission_factors!r}"
        ) from None


T = TypeVar("T")

PRICE_SOURCES: dict[str, Callable[[PricingSettings], PriceSource]] = {
    "bundled": lambda s: BundledPriceSource(),
    "entsoe": lambda s: EntsoePriceSource(_token(s), s.entsoe_area, s.http_timeout_s),
    "smard": lambda s: SmardPriceSource(
        s.smard_region, s.smard_resolution, s.http_timeout_s, s.smard_base_url
    ),
}
CARBON_SOURCES: dict[str, Callable[[PricingSettings], CarbonSource]] = {
    "bundled": lambda s: BundledCarbonSource(_factors(s)),
    "entsoe": lambda s: EntsoeCarbonSource(_token(s), s.entsoe_area, _factors(s), s.http_timeout_s),
}


def _build(registry: dict[str, Callable[[PricingSettings], T]], name: str, setting: str,
           settings: PricingSettings) -> T:  # fmt: skip
    """The source ``registry`` registers as ``name``; an unknown name names the setting."""
    try:
        factory = registry[name]
    except KeyError:
        raise PricingError(f"{setting} must be one of {sorted(registry)}, got {name!r}") from None
    return factory(settings)


def make_price_source(settings: PricingSettings) -> PriceSource:
    """Build the price source named in ``settings.price_source``."""
    return _build(PRICE_SOURCES, settings.price_source, "price_source", settings)


def make_carbon_source(settings: PricingSettings) -> CarbonSource:
    """Build the carbon source named in ``settings.carbon_source``."""
    return _build(CARBON_SOURCES, settings.carbon_source, "carbon_source", settings)


def seasonal_price_reference() -> pd.Series:
    """The long price history for seasonal estimates: all bundled DE-LU prices [EUR/kWh]."""
    return bundled.bundled_quarter_hour_prices()


def seasonal_carbon_reference(factors: carbon.EmissionFactors = carbon.IPCC_AR5) -> pd.Series:
    """The long carbon history for seasonal estimates: the bundled estimate [gCO2eq/kWh]."""
    return _bundled_carbon_quarters(factors.solar)


def prices_for(
    index: pd.DatetimeIndex,
    source: PriceSource | None = None,
    reference: pd.Series | None = None,
) -> pd.DataFrame:
    """Spot prices on ``index``, gaps filled by a flagged estimate.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        UTC, fixed step of 5/15/30/60 min.
    source : PriceSource, optional
        Defaults to the bundled source.
    reference : pandas.Series, optional
        History for the seasonal estimate (e.g. :func:`seasonal_price_reference`) where the
        source knows nothing in the 35 days before a slot; without it that raises.

    Returns
    -------
    pandas.DataFrame
        ``spot_eur_per_kwh`` [EUR/kWh] and ``is_estimate`` (bool) per slot.
    """
    step = check_index(index)
    source = source or BundledPriceSource()
    known = source.spot_prices(index[0] - HISTORY, index[-1] + step)
    return prices_on_index(known, index, reference=reference)


def carbon_for(
    index: pd.DatetimeIndex,
    source: CarbonSource | None = None,
    reference: pd.Series | None = None,
) -> pd.DataFrame:
    """Grid carbon intensity on ``index``, gaps filled by a flagged estimate.

    Returns
    -------
    pandas.DataFrame
        ``co2_g_per_kwh`` [gCO2eq/kWh] and ``is_estimate`` (bool) per slot.
    """
    step = check_index(index)
    source = source or BundledCarbonSource()
    known = source.carbon_intensity(index[0] - HISTORY, index[-1] + step)
    return prices_on_index(known, index, column="co2_g_per_kwh", reference=reference)


__all__ = [
    "QUARTER",
    "CarbonSource",
    "PriceSource",
    "PricingSettings",
    "carbon_for",
    "make_carbon_source",
    "make_price_source",
    "prices_for",
    "seasonal_carbon_reference",
    "seasonal_price_reference",
]
