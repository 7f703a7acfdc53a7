"""Assemble one site's MILP from its device blocks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from optimizer.devices.battery import add_battery
from optimizer.devices.context import Consolidate, Context, Move, Neighbours, Rounder, Search
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
    searches: tuple[Search, ...] = ()
    moves: tuple[Neighbours, ...] = ()
    #: the early-charging tie-break's part of ``problem.cost`` [EUR per unit of each column]
    tiebreak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    consolidators: tuple[Consolidate, ...] = ()

    @property
    def tiebreak_max_eur(self) -> float:
        """The most the tie-break can add to any plan's objective [EUR]."""
        if not len(self.tiebreak):
            return 0.0
        upper = np.where(np.isfinite(self.problem.col_upper), self.problem.col_upper, 0.0)
        return float(self.tiebreak @ upper)

    def round(self, x: np.ndarray, relaxed: np.ndarray, repair: float | None = None) -> None:
        for rounder in self.rounders:
            rounder(x, relaxed, repair)

    def search(
        self, x: np.ndarray, row_dual: np.ndarray, room: np.ndarray | None = None
    ) -> np.ndarray:
        """Set the integer columns the devices' searches own (e.g. heat-pump runs) in ``x``
        from the relaxation's ``row_dual`` (and, where given, the ``room`` of each row at
        its dual); return which columns they set (bool)."""
        owned = np.zeros(len(x), dtype=bool)
        for search in self.searches:
            owned |= search(self.problem, x, row_dual, room)
        return owned

    def consolidate(self, x: np.ndarray) -> np.ndarray:
        """The columns of ``x`` to fix at their lower bound before its integer columns are
        rounded around fixed heat-pump runs (bool per column; see
        :data:`optimizer.devices.context.Consolidate`)."""
        off = np.zeros(len(x), dtype=bool)
        for consolidate in self.consolidators:
            off |= consolidate(x)
        return off

    def neighbours(self, x: np.ndarray, free: np.ndarray) -> list[Move]:
        """The devices' moves of their integer columns from ``x`` (columns, new values), of
        devices with columns ``free`` to change (bool per column)."""
        return [move for moves in self.moves for move in moves(self.problem, x, free)]


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
    canonical = ctx.m.build()
    tiebreak = early_tiebreak(problem, canonical)
    canonical = replace(canonical, cost=canonical.cost + tiebreak)
    return Formulation(
        canonical,
        tuple(ctx.rounders),
        tuple(ctx.searches),
        tuple(ctx.neighbours),
        tiebreak,
        tuple(ctx.consolidators),
    )


#: Tie-break cost of the last slot [EUR/kWh]: below any real price step (0.01 ct/kWh).
TIEBREAK_EUR_PER_KWH = 1e-4


def early_tiebreak(problem: Problem, canonical: CanonicalProblem) -> np.ndarray:
    """A cost per kWh that rises from 0 to at most 0.01 ct over the horizon, on charging the
    cars and the battery and on running the heat pumps.

    Among equally cheap slots the plan then charges (and fills the stores) earlier: margin
    for forecast errors and early departures, and one optimum instead of many symmetric ones
    (an hourly price makes four equal quarter-hours). Its largest possible effect is held to
    half the absolute MIP gap, so every plan stays within the gap without it
    (``mip_abs_gap_eur = 0`` switches it off).
    """
    tiebreak = np.zeros(canonical.num_cols)
    names = [f"{wb.name}-power" for wb in problem.site.wallboxes]
    names += [f"{hp.name}-power" for hp in problem.site.heat_pumps] + ["battery-charge"]
    blocks = [canonical.variable(b) for b in names if canonical.has_variable(b)]
    if not blocks:
        return tiebreak
    n, dt = problem.inputs.n, problem.inputs.dt_h
    ramp = dt * np.arange(1, n + 1) / n
    most_kwh = sum(float(canonical.col_upper[b.slice] @ ramp) for b in blocks)
    rate = min(TIEBREAK_EUR_PER_KWH, 0.5 * problem.tuning.mip_abs_gap_eur / max(most_kwh, 1e-9))
    for b in blocks:
        tiebreak[b.slice] = rate * ramp
    return tiebreak
