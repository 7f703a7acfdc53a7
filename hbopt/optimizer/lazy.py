"""Exact MILP solving that pays for integrality only where the relaxation needs it.

Most binaries of a home's plan (EV on/off and phase per slot, grid or battery direction) are
decided "for free" by the LP relaxation: in most slots the relaxed EV power is 0 or above its
minimum. General MIP solvers spend most of their time on primal heuristics for such models,
while the relaxation's bound is already (nearly) tight. So:

1. Solve the LP relaxation: its objective is a lower bound of the MIP optimum.
2. Round the integer columns (up when above the tolerance, then the devices' own rules, e.g.
   the phase option whose power range holds the relaxed power) and check every row.
3. If the rounded point is feasible and within the MIP gap of the bound, it is optimal.
4. Otherwise fix the integer columns the rounding decided cleanly, keep integrality on the
   rest (those in rows the rounding broke) and solve that small MIP: a feasible point. If it is
   within the gap of the LP bound, it is optimal.
5. Otherwise solve the full MIP, warm-started with that point.

The answer is always within the MIP gap of the true optimum; only the work differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from hbopt.optimizer.model import CanonicalProblem
from hbopt.optimizer.solvers import SolveOptions, Solver, SolverError, SolveResult

FEAS_TOL = 1e-6

#: A device rounding rule: sets relaxed integer columns of a point in place.
Rounder = Callable[[np.ndarray, np.ndarray], None]


def _violated_rows(problem: CanonicalProblem, x: np.ndarray) -> np.ndarray:
    ax = problem.A @ x
    tol = FEAS_TOL * (1.0 + np.abs(ax))
    return (ax < problem.row_lower - tol) | (ax > problem.row_upper + tol)


def _cols_of_rows(problem: CanonicalProblem, rows: np.ndarray) -> np.ndarray:
    sub = problem.A[np.flatnonzero(rows)]
    cols = np.zeros(problem.num_cols, dtype=bool)
    cols[sub.indices] = True
    return cols


def round_relaxed(
    problem: CanonicalProblem, x: np.ndarray, relaxed: np.ndarray, rounder: Rounder
) -> tuple[np.ndarray, np.ndarray]:
    """Round the ``relaxed`` integer columns of ``x``; return the point and violated rows."""
    cand = x.copy()
    up = np.ceil(x - FEAS_TOL)
    cand[relaxed] = up[relaxed]
    rounder(cand, relaxed)
    return cand, _violated_rows(problem, cand)


def gap_tolerance(bound: float, options: SolveOptions) -> float:
    """How far above the lower bound an objective may be and still count as optimal [EUR]."""
    return max(options.mip_gap * abs(bound), options.mip_abs_gap) + 1e-9


def solve_lazily(
    backend: Solver,
    problem: CanonicalProblem,
    options: SolveOptions,
    rounder: Rounder = lambda x, relaxed: None,
) -> tuple[SolveResult, int]:
    """Solution of ``problem`` within the MIP gap; also how many integer columns were imposed."""
    integer = problem.integrality
    relaxation = backend.solve(problem.with_integrality(np.zeros_like(integer)), options)
    if not integer.any():
        return relaxation, 0
    bound = relaxation.objective
    tol = gap_tolerance(bound, options)
    cand, bad = round_relaxed(problem, relaxation.x, integer, rounder)
    objective = float(problem.cost @ cand + problem.offset)
    if not bad.any() and objective <= bound + tol:
        return _result(relaxation, cand, objective, bound, relaxation.solve_ms), 0
    undecided = integer & _cols_of_rows(problem, bad)
    spent = relaxation.solve_ms
    try:
        partial = backend.solve(_fix(problem, cand, integer & ~undecided), options)
        spent += partial.solve_ms
        if partial.objective <= bound + tol:
            return _result(partial, partial.x, partial.objective, bound, spent), int(
                undecided.sum()
            )
        start: np.ndarray | None = partial.x
    except SolverError:
        start = None
    full = backend.solve(problem, replace(options, start=start))
    return replace(full, solve_ms=spent + full.solve_ms), int(integer.sum())


def _fix(problem: CanonicalProblem, x: np.ndarray, cols: np.ndarray) -> CanonicalProblem:
    lower, upper = problem.col_lower.copy(), problem.col_upper.copy()
    lower[cols] = upper[cols] = x[cols]
    return replace(problem, col_lower=lower, col_upper=upper)


def _result(
    base: SolveResult, x: np.ndarray, objective: float, bound: float, solve_ms: float
) -> SolveResult:
    gap = (objective - bound) / max(abs(objective), 1e-9)
    return replace(base, x=x, objective=objective, mip_gap=max(gap, 0.0), solve_ms=solve_ms)
