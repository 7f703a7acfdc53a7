"""Grid carbon intensity [gCO2eq/kWh] per slot.

Production-based, lifecycle: intensity = sum_i(P_i * f_i) / sum_i(P_i) over the generation
``P_i`` [MW] of each production type and its emission factor ``f_i`` [gCO2eq/kWh].
Storage (``Hydro Pumped Storage``, ``Energy storage``) is left out: it re-emits energy that was
generated, and counted already, elsewhere.

Two factor sets ship (``adapters/data/co2/emission_factors_gco2eq_per_kwh.csv`` has the sources):

* :data:`IPCC_AR5` - IPCC AR5 WGIII Annex III lifecycle medians (default). IPCC has no oil value;
  the Electricity Maps default (650) is used. Solar 45 lies between IPCC rooftop (41) and utility
  (48), as the German fleet is a mix. "Other"/waste use 700 (Electricity Maps fallback).
* :data:`ELECTRICITYMAPS_DE_2024` - Electricity Maps' German lifecycle values; the derived 2020
  reference series in ``adapters/data/co2`` was made with these.

The bundled estimate (:func:`intensity_from_load_and_solar`) needs only load and solar, the two
German series bundled for 2024-2025: solar share at the solar factor, the rest at one mean
factor of the non-solar mix (calibrated on the ENTSO-E week 2020-06-01, see docs/pricing.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pricing.errors import PriceDataError


@dataclass(frozen=True)
class EmissionFactors:
    """Lifecycle emission factor per fuel category [gCO2eq/kWh]."""

    coal: float
    gas: float
    oil: float
    biomass: float
    nuclear: float
    hydro: float
    geothermal: float
    solar: float
    wind_onshore: float
    wind_offshore: float
    other: float

    def for_type(self, production_type: str) -> float | None:
        """Factor of an ENTSO-E production type; ``None`` for storage (excluded)."""
        category = PRODUCTION_TYPE_CATEGORY.get(production_type)
        if production_type in STORAGE_TYPES:
            return None
        if category is None:
            raise PriceDataError(f"no emission factor for production type {production_type!r}")
        return float(getattr(self, category))


IPCC_AR5 = EmissionFactors(
    coal=820,
    gas=490,
    oil=650,
    biomass=230,
    nuclear=12,
    hydro=24,
    geothermal=38,
    solar=45,
    wind_onshore=11,
    wind_offshore=12,
    other=700,
)
ELECTRICITYMAPS_DE_2024 = EmissionFactors(
    coal=1140.4,
    gas=520.79,
    oil=1113.31,
    biomass=230,
    nuclear=5.13,
    hydro=10.7,
    geothermal=38,
    solar=35.12,
    wind_onshore=12.62,
    wind_offshore=12.62,
    other=700,
)
FACTOR_SETS = {"ipcc_ar5": IPCC_AR5, "electricitymaps_de_2024": ELECTRICITYMAPS_DE_2024}

STORAGE_TYPES = frozenset({"Hydro Pumped Storage", "Energy storage"})
PRODUCTION_TYPE_CATEGORY = {
    "Fossil Brown coal/Lignite": "coal",
    "Fossil Hard coal": "coal",
    "Fossil Coal-derived gas": "coal",
    "Fossil Peat": "coal",
    "Fossil Oil shale": "coal",
    "Fossil Gas": "gas",
    "Fossil Oil": "oil",
    "Biomass": "biomass",
    "Other renewable": "biomass",
    "Nuclear": "nuclear",
    "Hydro Run-of-river and pondage": "hydro",
    "Hydro Run-of-river and poundage": "hydro",  # spelling in older entsoe-py exports
    "Hydro Water Reservoir": "hydro",
    "Marine": "hydro",
    "Geothermal": "geothermal",
    "Solar": "solar",
    "Wind Onshore": "wind_onshore",
    "Wind Offshore": "wind_offshore",
    "Other": "other",
    "Waste": "other",
}


def intensity_from_generation(
    generation_mw: pd.DataFrame, factors: EmissionFactors = IPCC_AR5
) -> pd.Series:
    """Production-based lifecycle carbon intensity from generation per production type.

    Parameters
    ----------
    generation_mw : pandas.DataFrame
        Generation [MW] per ENTSO-E production type (columns), UTC index.
    factors : EmissionFactors
        Factor per fuel category [gCO2eq/kWh].

    Returns
    -------
    pandas.Series
        ``co2_g_per_kwh`` [gCO2eq/kWh]; NaN where a production type has no value in that slot
        or total generation is not positive (a gap, never a made-up number).
    """
    weights = {c: factors.for_type(str(c)) for c in generation_mw.columns}
    used = [c for c, f in weights.items() if f is not None]
    power = generation_mw[used].astype(float)
    total = power.sum(axis=1, skipna=False)
    emitted = (power * pd.Series({c: weights[c] for c in used})).sum(axis=1, skipna=False)
    intensity = (emitted / total).where(total > 0)
    return intensity.rename("co2_g_per_kwh")


def non_solar_mean_factor(generation_mw: pd.DataFrame, factors: EmissionFactors) -> float:
    """Generation-weighted mean factor of everything but solar [gCO2eq/kWh] over a period."""
    weights = {c: factors.for_type(str(c)) for c in generation_mw.columns if c != "Solar"}
    used = [c for c, f in weights.items() if f is not None]
    power = generation_mw[used].clip(lower=0)
    return float((power * pd.Series({c: weights[c] for c in used})).sum().sum() / power.sum().sum())


# non_solar_mean_factor(ENTSO-E DE 2020-06-01 week, IPCC_AR5), see docs/pricing.md
DE_NON_SOLAR_FACTOR_2020 = 267.5


def intensity_from_load_and_solar(
    load_mw: pd.Series,
    solar_mw: pd.Series,
    *,
    solar_factor: float = IPCC_AR5.solar,
    non_solar_factor: float = DE_NON_SOLAR_FACTOR_2020,
) -> pd.Series:
    """Carbon-intensity estimate from load and solar generation only.

    ``ci = s * solar_factor + (1 - s) * non_solar_factor`` with solar share
    ``s = min(solar / load, 1)``.

    Parameters
    ----------
    load_mw, solar_mw : pandas.Series
        National load and solar generation [MW] on the same index.
    solar_factor, non_solar_factor : float
        [gCO2eq/kWh].

    Returns
    -------
    pandas.Series
        ``co2_g_per_kwh`` [gCO2eq/kWh]; NaN where load is not positive.
    """
    share = (solar_mw.clip(lower=0) / load_mw.where(load_mw > 0)).clip(0.0, 1.0)
    return (share * solar_factor + (1 - share) * non_solar_factor).rename("co2_g_per_kwh")
