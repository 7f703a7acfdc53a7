"""Solver backends behind one small protocol, chosen by name.

``highs`` (default) passes the canonical problem to HiGHS through ``highspy`` in bulk (one CSR
matrix). ``pulp`` converts the same problem to a PuLP model, so any PuLP solver (CBC, GLPK,
Gurobi, CPLEX) can run it and the model can be written as ``.lp`` / ``.mps``.
"""

from __future__ import annotations

from collections.abc import Callable

from optimizer.solvers.base import (
    SolveOptions,
    Solver,
    SolverError,
    SolveResult,
    SolverTimeLimitError,
    SolveStatus,
)
from optimizer.solvers.highs import HighsSolver
from optimizer.solvers.pulp_backend import PulpSolver

_REGISTRY: dict[str, Callable[[], Solver]] = {"highs": HighsSolver, "pulp": PulpSolver}


def get_solver(name: str = "highs") -> Solver:
    """The backend registered as ``name`` (``highs``, ``pulp``, ``pulp:<PuLP solver name>``)."""
    base, _, variant = name.partition(":")
    if base not in _REGISTRY:
        raise ValueError(f"unknown solver {name!r}; known: {sorted(_REGISTRY)}")
    if variant:
        return PulpSolver(variant)
    return _REGISTRY[base]()


def available_solvers() -> list[str]:
    return sorted(_REGISTRY)


__all__ = [
    "SolveOptions",
    "SolveResult",
    "SolveStatus",
    "Solver",
    "SolverError",
    "SolverTimeLimitError",
    "available_solvers",
    "get_solver",
]
