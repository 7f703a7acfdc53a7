"""Assemble one site's MILP from its device blocks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.devices.battery import add_battery
from optimizer.devices.context import Context, Rounder
from optimizer.devices.grid import add_balance, add_grid, effective_prices
from optimizer.devices.heatpump import add_heat_pumps
from optimizer.devices.pv import add_pv
from optimizer.devices.wallbox import add_wallboxes
from optimizer.model import CanonicalProblem, ModelBuilder
from optimizer.problem import Problem


def burn_slots(problem: Problem) -> np.ndarray:
    """Slots where consuming more pays (import cost < 0): simultaneous flows could pay there."""
    import_cost, _ = effective_prices(problem)
    return np.flatnonzero(import_cost < 0)


@dataclass(frozen=True)
class Formulation:
    """The canonical problem and the devices' rounding rules (see :mod:`optimizer.lazy`)."""

    problem: CanonicalProblem
    rounders: tuple[Rounder, ...]

    def round(self, x: np.ndarray, relaxed: np.ndarray, repair: float | None = None) -> None:
        for rounder in self.rounders:
            rounder(x, relaxed, repair)


def formulate(problem: Problem, extra_burn_slots: np.ndarray | None = None) -> Formulation:
    """Build the canonical MILP of ``problem``.

    ``extra_burn_slots`` adds slots where the battery gets a charge/discharge binary besides the
    negative-price slots (used when an LP solution showed simultaneous flows anyway).
    """
    ctx = Context(problem, ModelBuilder(problem.inputs.n), problem.inputs.dt_h)
    slots = burn_slots(problem)
    if extra_burn_slots is not None:
        slots = np.union1d(slots, extra_burn_slots)
    ctx.burn_slots = slots.astype(np.int64)
    add_pv(ctx)
    add_battery(ctx)
    add_heat_pumps(ctx)
    add_wallboxes(ctx)
    add_grid(ctx)
    add_balance(ctx)
    return Formulation(ctx.m.build(), tuple(ctx.rounders))
