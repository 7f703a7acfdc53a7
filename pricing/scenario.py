"""One call for everything a site's plan needs per slot: spot, retail prices and CO2."""

from __future__ import annotations

import pandas as pd

from pricing.sources import (
    CarbonSource,
    PriceSource,
    carbon_for,
    prices_for,
    seasonal_carbon_reference,
    seasonal_price_reference,
)
from pricing.tariff import SiteExportRules, Tariff, retail_prices


def site_prices(
    index: pd.DatetimeIndex,
    tariff: Tariff,
    site_rules: SiteExportRules,
    *,
    price_source: PriceSource | None = None,
    carbon_source: CarbonSource | None = None,
    seasonal: bool = False,
) -> pd.DataFrame:
    """Per-slot money and carbon for one site.

    Parameters
    ----------
    index : pandas.DatetimeIndex
        UTC, fixed step of 5/15/30/60 min.
    tariff : Tariff
        Retail tariff (see :func:`pricing.tariff.load_tariff`).
    site_rules : SiteExportRules
        Negative-price rule and feed-in cap of the site.
    price_source, carbon_source : optional
        Default: the bundled sources.
    seasonal : bool
        Where nothing is known in the 35 days before a slot, use the flagged seasonal estimate
        from the bundled history (see :mod:`pricing.estimate`) instead of raising.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`pricing.tariff.retail_prices` [EUR/kWh] plus
        ``co2_g_per_kwh`` [gCO2eq/kWh], ``price_is_estimate`` and ``co2_is_estimate`` (bool).
    """
    spot = prices_for(index, price_source, seasonal_price_reference() if seasonal else None)
    frame = retail_prices(spot, tariff, site_rules).drop(columns="is_estimate")
    co2 = carbon_for(index, carbon_source, seasonal_carbon_reference() if seasonal else None)
    frame["co2_g_per_kwh"] = co2["co2_g_per_kwh"]
    frame["price_is_estimate"] = spot["is_estimate"]
    frame["co2_is_estimate"] = co2["is_estimate"]
    return frame
