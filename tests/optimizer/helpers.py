"""Small builders for optimizer tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.timeindex import utc_range
from optimizer import Inputs
from optimizer.solvers.base import SolveOptions, SolveResult
from optimizer.solvers.highs import HighsSession, HighsSolver

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


def assert_min_runs(power_kw: np.ndarray, min_slots: int, min_kw: float | None = None) -> None:
    """Every run of ``power_kw`` (on above 1e-6 kW) lasts ``min_slots`` or reaches the
    horizon's end, and, with ``min_kw``, runs at ``min_kw`` or more."""
    running = power_kw > 1e-6
    if min_kw is not None:
        assert (power_kw[running] >= min_kw - 1e-6).all()
    edges = np.flatnonzero(np.diff(np.concatenate(([0], running.astype(int), [0]))))
    lengths = edges[1::2] - edges[::2]
    assert ((lengths >= min_slots) | (edges[1::2] == len(running))).all()


class RecordingHighs(HighsSolver):
    """The real HiGHS backend, noting each solve's options (before it runs) and reported
    time [ms] (when it returns a point)."""

    def __init__(self) -> None:
        self.options: list[SolveOptions] = []
        self.solve_ms: list[float] = []

    def session(self, problem):  # type: ignore[no-untyped-def]
        outer = self

        class Session(HighsSession):
            def solve(self, lower, upper, integrality, options):  # type: ignore[no-untyped-def]
                outer.options.append(options)
                result: SolveResult = super().solve(lower, upper, integrality, options)
                outer.solve_ms.append(result.solve_ms)
                return result

        return Session(problem)
