"""Pricing: day-ahead spot prices, the retail tariff and grid carbon intensity per slot.

Public API (everything on a tz-aware UTC index with a fixed step of 5/15/30/60 min)::

    prices_for(index, source=None) -> DataFrame[spot_eur_per_kwh, is_estimate]
    carbon_for(index, source=None) -> DataFrame[co2_g_per_kwh, is_estimate]
    retail_prices(spot_frame, tariff, site_rules) -> DataFrame[... import_eur_per_kwh,
                                                     export_eur_per_kwh, export_unpaid]
    site_prices(index, tariff, site_rules, price_source=None, carbon_source=None)
        -> DataFrame[retail columns, co2_g_per_kwh, price_is_estimate, co2_is_estimate]
    load_tariff(path) -> Tariff
    make_price_source(settings) / make_carbon_source(settings)
    SeriesCache.for_prices(source, max_age).get(index) -> CachedFrame(frame, fetched_at, is_stale)

Readers (``read_*`` parse text, ``get_*`` fetch) live in :mod:`pricing.entsoe`,
:mod:`pricing.smard` and :mod:`pricing.bundled`.
"""

# The names are imported on first use (PEP 562) so that ``import pricing.cli`` for the command
# line's --help does not load pandas and the HTTP clients.
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pricing.cache import CachedFrame, SeriesCache
    from pricing.carbon import (
        ELECTRICITYMAPS_DE_2024,
        IPCC_AR5,
        EmissionFactors,
        intensity_from_generation,
        intensity_from_load_and_solar,
    )
    from pricing.errors import (
        EntsoeAuthError,
        EntsoeErrorDocument,
        EntsoeNoDataError,
        PriceDataError,
        PricingError,
    )
    from pricing.scenario import site_prices
    from pricing.sources import (
        CarbonSource,
        PriceSource,
        PricingSettings,
        carbon_for,
        make_carbon_source,
        make_price_source,
        prices_for,
    )
    from pricing.tariff import (
        SiteExportRules,
        Tariff,
        TariffConfigError,
        load_tariff,
        retail_prices,
    )

_EXPORTS = {
    "CachedFrame": "pricing.cache",
    "CarbonSource": "pricing.sources",
    "ELECTRICITYMAPS_DE_2024": "pricing.carbon",
    "EmissionFactors": "pricing.carbon",
    "EntsoeAuthError": "pricing.errors",
    "EntsoeErrorDocument": "pricing.errors",
    "EntsoeNoDataError": "pricing.errors",
    "IPCC_AR5": "pricing.carbon",
    "PriceDataError": "pricing.errors",
    "PriceSource": "pricing.sources",
    "PricingError": "pricing.errors",
    "PricingSettings": "pricing.sources",
    "SeriesCache": "pricing.cache",
    "SiteExportRules": "pricing.tariff",
    "Tariff": "pricing.tariff",
    "TariffConfigError": "pricing.tariff",
    "carbon_for": "pricing.sources",
    "intensity_from_generation": "pricing.carbon",
    "intensity_from_load_and_solar": "pricing.carbon",
    "load_tariff": "pricing.tariff",
    "make_carbon_source": "pricing.sources",
    "make_price_source": "pricing.sources",
    "prices_for": "pricing.sources",
    "retail_prices": "pricing.tariff",
    "site_prices": "pricing.scenario",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pricing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ELECTRICITYMAPS_DE_2024",
    "IPCC_AR5",
    "CachedFrame",
    "CarbonSource",
    "EmissionFactors",
    "EntsoeAuthError",
    "EntsoeErrorDocument",
    "EntsoeNoDataError",
    "PriceDataError",
    "PriceSource",
    "PricingError",
    "PricingSettings",
    "SeriesCache",
    "SiteExportRules",
    "Tariff",
    "TariffConfigError",
    "carbon_for",
    "intensity_from_generation",
    "intensity_from_load_and_solar",
    "load_tariff",
    "make_carbon_source",
    "make_price_source",
    "prices_for",
    "retail_prices",
    "site_prices",
]
