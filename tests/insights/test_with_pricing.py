"""The energy frame takes the pricing package's series as they come (names, units, index)."""

from __future__ import annotations

import numpy as np
import pytest

from core.timeindex import local_day
from insights import InsightSettings, assemble_energy_frame, energy_highlights
from pricing import SiteExportRules, carbon_for, load_tariff, prices_for, retail_prices
from pricing.tariffs import EXAMPLE_TARIFF
from tests.insights.frames import build_frame, slots


def test_bundled_retail_prices_and_carbon_feed_the_highlights() -> None:
    index = local_day("2024-06-16")  # a sunny Sunday with negative spot prices
    retail = retail_prices(prices_for(index), load_tariff(EXAMPLE_TARIFF), SiteExportRules())
    carbon = carbon_for(index)
    pv = slots(len(index), {(40, 64): 3.0})
    power = build_frame(index, pv=pv, house=1.0)[
        ["pv_kw", "house_kw", "ev_kw", "hp_kw", "battery_kw", "grid_kw"]
    ]
    frame = assemble_energy_frame(
        power,
        import_eur_per_kwh=retail["import_eur_per_kwh"],
        export_eur_per_kwh=retail["export_eur_per_kwh"],
        co2_g_per_kwh=carbon["co2_g_per_kwh"],
    )
    p = energy_highlights(frame, "day", InsightSettings(battery=None)).periods[0]
    imported = np.where(pv == 0, 0.25, 0.0)  # kWh per slot: 1 kW house outside PV hours
    exported = np.where(pv > 0, 0.5, 0.0)  # 3 kW PV - 1 kW house
    imp = retail["import_eur_per_kwh"].to_numpy()
    exp = retail["export_eur_per_kwh"].to_numpy()
    assert p.cost_eur == pytest.approx((imported * imp).sum() - (exported * exp).sum())
    ci = carbon["co2_g_per_kwh"].to_numpy()
    assert p.co2.caused_kg == pytest.approx((imported * ci).sum() / 1000)
    assert p.co2.avoided_total_kg == pytest.approx((np.where(pv > 0, 0.25, 0) * ci).sum() / 1000)
