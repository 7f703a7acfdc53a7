"""Small builders for optimizer tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.timeindex import utc_range
from optimizer import Inputs

START = pd.Timestamp("2024-06-15T00:00Z")


def inputs(
    import_price: Sequence[float],
    *,
    export_price: Sequence[float] | float = 0.0,
    pv: Sequence[float] | float = 0.0,
    load: Sequence[float] | float = 0.0,
    step_min: int = 60,
    **extra: object,
) -> Inputs:
    """Inputs of ``len(import_price)`` slots; scalars are broadcast."""
    n = len(import_price)

    def arr(v: Sequence[float] | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()

    return Inputs(
        utc_range(START, n, step_min),
        arr(import_price),
        arr(export_price),
        arr(pv),
        arr(load),
        **extra,  # type: ignore[arg-type]
    )


def at(slot: int, step_min: int = 60) -> pd.Timestamp:
    """Start time of ``slot``."""
    return START + pd.Timedelta(minutes=slot * step_min)


def assert_balance(slots: pd.DataFrame, tol: float = 1e-6) -> None:
    """grid import - export + PV + battery discharge - charge = load + EVs + heat pumps."""
    supply = slots["grid_kw"] + slots["pv_kw"] + slots.get("battery_kw", 0.0)
    demand = slots["load_kw"].copy() - slots["grid_unserved_kw"]
    for col in slots.columns:
        if (
            col.endswith("_kw")
            and col.split("_")[0]
            not in {
                "grid",
                "pv",
                "battery",
                "load",
            }
            and not col.endswith("heat_kw")
        ):
            demand += slots[col]
    assert np.abs(supply - demand).max() < tol
