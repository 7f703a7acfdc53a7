"""Timing of the service's live inputs per call; prints a table (median, p90), not a test.

Run: ``.venv/bin/python benchmarks/inputs_bench.py [repetitions]`` (default 20). Offline: the
price store is a temporary file, the weather response the stored Open-Meteo file.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from adapters.weather import read_open_meteo_json
from pricing import SiteExportRules, load_tariff, prices_for
from pricing.bundled import data_path
from pricing.smard import read_smard_json
from pricing.sources import seasonal_price_reference
from pricing.store import PriceStore
from pricing.tariffs import EXAMPLE_TARIFF
from scheduler.inputs import InputSettings, LiveInputs

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
TODAY = pd.Timestamp("2026-12-05T06:00Z")


def _times_ms(func: Callable[[], object], repetitions: int) -> tuple[float, float]:
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), float(np.percentile(samples, 90))


def main(repetitions: int) -> None:
    folder = Path(tempfile.mkdtemp())
    week = read_smard_json(
        data_path("prices", "smard_4169_DE-LU_quarterhour_1760911200000.json").read_text(),
        "quarterhour",
    )
    store = PriceStore(folder / "bench.sqlite3")
    clock = lambda: TODAY  # noqa: E731
    inputs = LiveInputs(InputSettings(folder / "live.sqlite3", weather_url=""), clock=clock)
    tariff = load_tariff(EXAMPLE_TARIFF)
    feed = inputs.price_feed("DE_LU", tariff, SiteExportRules())
    day = pd.date_range(TODAY, periods=96, freq="15min")
    two_days = pd.date_range(TODAY, periods=192, freq="15min")
    feed.refresh(day[0], day[-1])
    om_text = (DATA / "open_meteo_forecast_berlin_2023-01-01_hourly.json").read_text()
    reference = seasonal_price_reference()
    weather = inputs.weather.weather
    cases: list[tuple[str, Callable[[], object]]] = [
        ("PriceStore.write one SMARD week (676 QH)", lambda: store.write("DE_LU", week, "smard")),
        (
            "PriceStore.read 2 days",
            lambda: store.read("DE_LU", week.index[0], week.index[0] + pd.Timedelta(days=2)),
        ),
        ("prices_for 48 h today, seasonal estimate", lambda: prices_for(two_days, None, reference)),
        ("PriceFeed.refresh (store + carbon), 24 h", lambda: feed.refresh(day[0], day[-1])),
        ("PriceFeed.frame 96 slots (cached window)", lambda: feed.frame(day)),
        ("read_open_meteo_json (48 h, 17 variables)", lambda: read_open_meteo_json(om_text)),
        ("WeatherFeed.weather 96 slots, clear-sky fallback", lambda: weather(day, 51.3, 6.8)),
    ]  # fmt: skip
    print(f"{'case (' + str(repetitions) + ' runs)':<52} {'median [ms]':>12} {'p90 [ms]':>10}")
    for name, func in cases:
        median, p90 = _times_ms(func, repetitions)
        print(f"{name:<52} {median:12.2f} {p90:10.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
