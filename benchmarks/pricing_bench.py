"""Timing of the pricing readers and per-cycle functions; prints a table (not a test).

Run: ``.venv/bin/python benchmarks/pricing_bench.py [repetitions]``
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pricing import SiteExportRules, carbon_for, load_tariff, prices_for, retail_prices
from pricing.bundled import bundled_hourly, bundled_quarter_hour_prices
from pricing.entsoe import read_entsoe_generation, read_entsoe_prices
from pricing.tariffs import EXAMPLE_TARIFF

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def _best_ms(func: Callable[[], object], repetitions: int) -> float:
    best = float("inf")
    for _ in range(repetitions):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main(repetitions: int) -> None:
    es = (DATA / "entsoe_A44_ES_day_ahead_2025-09-29_to_2025-10-02_PT60M_to_PT15M.xml").read_text()
    fi = (DATA / "entsoe_A75_FI_generation_per_type_2025-10-21_to_2025-10-24.xml").read_text()
    start = time.perf_counter()
    bundled_hourly(), bundled_quarter_hour_prices()
    first_load_ms = (time.perf_counter() - start) * 1000
    horizon = pd.date_range("2024-06-14T22:00Z", periods=192, freq="15min")
    tariff = load_tariff(EXAMPLE_TARIFF)
    spot = prices_for(horizon)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("read_entsoe_prices ES A44 (4 days, 384 QH)", lambda: read_entsoe_prices(es)),
        ("read_entsoe_generation FI A75 (3 days, 12 types)", lambda: read_entsoe_generation(fi)),
        ("prices_for 48 h @15 min (bundled)", lambda: prices_for(horizon)),
        ("retail_prices 48 h @15 min", lambda: retail_prices(spot, tariff, SiteExportRules())),
        ("carbon_for 48 h @15 min (bundled)", lambda: carbon_for(horizon)),
        ("load_tariff (example TOML)", lambda: load_tariff(EXAMPLE_TARIFF)),
    ]
    print(f"{'case':<52} {'best of ' + str(repetitions) + ' [ms]':>16}")
    print(f"{'bundled data first load (CSV + JSON)':<52} {first_load_ms:16.1f}")
    for name, func in cases:
        print(f"{name:<52} {_best_ms(func, repetitions):16.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
