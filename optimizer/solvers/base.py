"""Solver protocol and result types shared by the backends."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

import numpy as np

from optimizer.model import CanonicalProblem


class SolveStatus(StrEnum):
    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"  # a feasible solution, not proven optimal
    INFEASIBLE = "infeasible"
    ERROR = "error"


@dataclass(frozen=True)
class SolveOptions:
    """Solver settings.

    ``mip_gap`` relative [-] and ``mip_abs_gap`` absolute [EUR]: a solution counts as optimal
    when it is within either of the best bound. ``start``: a feasible point to warm-start from.
    ``time_limit_s`` is what one call may take; :mod:`optimizer.lazy` passes each call what is
    left of the plan's limit.
    """

    mip_gap: float = 1e-4
    mip_abs_gap: float = 1e-3
    time_limit_s: float = 10.0
    threads: int = 1
    start: np.ndarray | None = None
    #: a backend's LP basis to start an LP from (HiGHS: ``highspy.HighsBasis``), e.g. the
    #: previous cycle's shifted by a slot; ignored by backends without one
    basis: object | None = None
    #: an LP may stop once its objective is proven above this [EUR] (the dual simplex's
    #: objective only rises): it then raises :class:`SolverCutoffError`; ignored by backends
    #: without such a stop
    cutoff: float = float("inf")


@dataclass(frozen=True)
class SolveResult:
    status: SolveStatus
    x: np.ndarray
    objective: float
    mip_gap: float
    solve_ms: float
    solver: str
    #: A proven lower bound of the objective (the LP's, or a MIP's dual bound) [EUR]
    bound: float = float("-inf")
    #: Which step produced the point (see :mod:`optimizer.lazy`)
    stage: str = ""
    #: The plan's gross value, the denominator of the relative gap [EUR]
    gross: float = 0.0
    #: Row duals of an LP solve where the backend gives them (d objective / d row bound)
    row_dual: np.ndarray | None = None
    #: The LP relaxation's basis where the backend gives one (a start for the next cycle)
    basis: object | None = None


class SolverError(RuntimeError):
    """The solver returned no usable solution."""


class SolverCutoffError(SolverError):
    """The LP's objective is above :attr:`SolveOptions.cutoff`; no point was returned."""


class SolverTimeLimitError(SolverError):
    """The time limit ran out before the solver had any feasible solution."""


class Solver(Protocol):
    name: str

    def solve(self, problem: CanonicalProblem, options: SolveOptions) -> SolveResult: ...


class SolverSession(Protocol):
    """One problem solved repeatedly with other column bounds or integer columns.

    The relax-round-fix loop (:mod:`optimizer.lazy`) changes only bounds and integrality
    between solves; a session lets a backend keep the model (and its basis) instead of
    rebuilding it each time.
    """

    def solve(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        integrality: np.ndarray,
        options: SolveOptions,
    ) -> SolveResult: ...


class RebuildSession:
    """A session for any :class:`Solver`: each solve builds the variant problem anew."""

    def __init__(self, solver: Solver, problem: CanonicalProblem) -> None:
        self.solver = solver
        self.problem = problem

    def solve(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        integrality: np.ndarray,
        options: SolveOptions,
    ) -> SolveResult:
        variant = replace(self.problem, col_lower=lower, col_upper=upper, integrality=integrality)
        return self.solver.solve(variant, options)


def open_session(solver: Solver, problem: CanonicalProblem) -> SolverSession:
    """The backend's own session if it has one, else one that rebuilds the problem."""
    make = getattr(solver, "session", None)
    return make(problem) if make is not None else RebuildSession(solver, problem)
