"""Hand-made energy frames: the grid column follows from the balance, so answers are known."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

FrameFactory = Callable[..., pd.DataFrame]


def _column(value: float | np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()


def build_frame(
    index: pd.DatetimeIndex,
    *,
    pv: float | np.ndarray = 0.0,
    house: float | np.ndarray = 0.0,
    ev: float | np.ndarray = 0.0,
    hp: float | np.ndarray = 0.0,
    battery: float | np.ndarray = 0.0,
    import_price: float | np.ndarray = 0.30,
    export_price: float | np.ndarray = 0.08,
    co2: float | np.ndarray = 400.0,
) -> pd.DataFrame:
    n = len(index)
    frame = pd.DataFrame(
        {
            "pv_kw": _column(pv, n),
            "house_kw": _column(house, n),
            "ev_kw": _column(ev, n),
            "hp_kw": _column(hp, n),
            "battery_kw": _column(battery, n),
            "import_eur_per_kwh": _column(import_price, n),
            "export_eur_per_kwh": _column(export_price, n),
            "co2_g_per_kwh": _column(co2, n),
        },
        index=index,
    )
    frame["grid_kw"] = (
        frame["house_kw"] + frame["ev_kw"] + frame["hp_kw"] - frame["pv_kw"] - frame["battery_kw"]
    )
    return frame


def slots(n: int, ranges: dict[tuple[int, int], float]) -> np.ndarray:
    """An array of ``n`` zeros with ``value`` on slots ``[start, stop)`` of each range."""
    out = np.zeros(n)
    for (start, stop), value in ranges.items():
        out[start:stop] = value
    return out
