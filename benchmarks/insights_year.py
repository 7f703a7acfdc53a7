"""Time the insights on one year of 15-minute data (35 136 slots) and print a table.

Run: .venv/bin/python benchmarks/insights_year.py [repetitions]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from core.timeindex import utc_range
from insights import (
    energy_highlights,
    notable_moments,
    share_card_png,
    slot_quantities,
)


def year_frame(n: int = 366 * 96) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    idx = utc_range(pd.Timestamp("2024-01-01", tz="Europe/Berlin"), n)
    hour = (idx.hour.to_numpy() + idx.minute.to_numpy() / 60) % 24
    pv = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 6 * rng.uniform(0.3, 1, n)
    house = rng.uniform(0.2, 1.5, n)
    battery = np.clip(house - pv, -4, 4) * (rng.random(n) < 0.8)
    frame = pd.DataFrame(
        {
            "pv_kw": pv,
            "house_kw": house,
            "ev_kw": 0.0,
            "hp_kw": 0.0,
            "battery_kw": battery,
            "import_eur_per_kwh": rng.uniform(0.2, 0.4, n),
            "export_eur_per_kwh": 0.08,
            "co2_g_per_kwh": rng.uniform(100, 600, n),
        },
        index=idx,
    )
    frame["grid_kw"] = frame["house_kw"] - frame["pv_kw"] - frame["battery_kw"]
    return frame


def best_of(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    frame = year_frame()
    month = energy_highlights(frame, "month").periods[-1]
    cases: list[tuple[str, Callable[[], object]]] = [
        ("slot_quantities (year)", lambda: slot_quantities(frame)),
        ("energy_highlights day", lambda: energy_highlights(frame, "day")),
        ("energy_highlights month", lambda: energy_highlights(frame, "month")),
        ("notable_moments (year)", lambda: notable_moments(frame)),
        ("share_card_png", lambda: share_card_png(month)),
    ]
    print(f"{len(frame)} slots of 15 min, best of {reps}")
    print(f"{'operation':<28}{'seconds':>10}")
    for name, fn in cases:
        print(f"{name:<28}{best_of(fn, reps):>10.3f}")


if __name__ == "__main__":
    main()
