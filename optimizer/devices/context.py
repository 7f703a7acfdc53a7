"""Shared state while the device blocks of one problem are built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from optimizer.model import Block, CanonicalProblem, Coeffs, ModelBuilder, diag
from optimizer.problem import Problem

#: Sets the relaxed (``relaxed[j]`` true) integer columns of a candidate point from its
#: continuous columns, in place. With a ``repair`` threshold (a fraction of a device's minimum
#: below which it is switched off) also where no exact rounding exists; the next LP re-solve
#: makes the point feasible. See :mod:`optimizer.lazy`.
Rounder = Callable[[np.ndarray, np.ndarray, float | None], None]
#: The ``repair`` rule that keeps a device's relaxed energy: of the slots it runs below its
#: minimum, switch on as many as that energy fills at the minimum, largest relaxed power first.
CONSERVE = -1.0
#: The ``repair`` rule that switches on as many of a device's slots below its minimum as
#: :data:`CONSERVE` does, the cheapest import price first instead of the largest relaxed power
#: (a car's PV trickle is worth topping up where grid or battery energy costs least).
CHEAPEST = -2.0
#: Sets a device's integer columns of a candidate point (in place) from the LP relaxation's
#: row duals, by a search of its own (e.g. a heat pump's runs against the marginal prices),
#: and returns which columns it set: ``search(problem, x, row_dual, room) -> bool per column``,
#: ``room`` (or ``None``) how far each row's bound can rise at its dual
#: (:meth:`optimizer.solvers.highs.HighsSession.relaxation_room`). See :mod:`optimizer.lazy`.
Search = Callable[[CanonicalProblem, np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]
#: A device's moves of its integer columns from the point ``x``: ``neighbours(problem, x,
#: free)`` returns per move the columns it changes and their new values (e.g. a heat-pump run
#: shifted by one slot, a car's slot switched on); none unless its columns are ``free`` (bool
#: per column). See :mod:`optimizer.lazy`.
Move = tuple[np.ndarray, np.ndarray]
Neighbours = Callable[[CanonicalProblem, np.ndarray, np.ndarray], list[Move]]
#: The columns of a point (bool per column) to fix at their lower bound before its integer
#: columns are rounded around a heat pump's fixed runs: a device's flow where no rounding
#: would keep it (a car charging below its minimum, next to no slot it charges at or above
#: it). The LP re-solve moves that energy into the slots the rounding keeps on. See
#: :mod:`optimizer.lazy`.
Consolidate = Callable[[np.ndarray], np.ndarray]


@dataclass
class BatteryBlocks:
    charge: Block
    discharge: Block
    energy: Block
    capacity_kwh: float
    energy_now_kwh: float


@dataclass
class Context:
    """What device blocks read (problem, slot length) and write (model, balance terms).

    ``balance`` holds ``(block, sign)``: ``+1`` for power into the site's bus, ``-1`` out.
    """

    problem: Problem
    m: ModelBuilder
    dt_h: float
    balance: list[tuple[Block, float]] = field(default_factory=list)
    pv_used: Block | None = None
    battery: BatteryBlocks | None = None
    hp_power: list[Block] = field(default_factory=list)
    #: slots where more consumption is worth money (import price < 0): simultaneous
    #: battery charge and discharge could pay there, so those slots get a binary.
    burn_slots: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rounders: list[Rounder] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    neighbours: list[Neighbours] = field(default_factory=list)
    consolidators: list[Consolidate] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.m.n

    def hp_terms(self, sign: float = 1.0) -> list[tuple[Block, Coeffs]]:
        """``sign x`` every heat pump's power, as row terms per slot."""
        return [(hp, diag(self.n, sign)) for hp in self.hp_power]

    @property
    def hp_max_kw(self) -> float:
        return sum(hp.max_kw for hp in self.problem.site.heat_pumps)
