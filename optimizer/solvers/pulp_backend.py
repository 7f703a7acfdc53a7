"""PuLP bridge: the same canonical problem as a PuLP model, for CBC or any PuLP solver.

PuLP has no bulk interface, so the conversion builds one affine expression per row from the
CSR matrix; it is slower than HiGHS and meant for cross-checks, other solvers and writing the
model as ``.lp`` / ``.mps`` for inspection.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pulp

from optimizer.model import CanonicalProblem
from optimizer.solvers.base import SolveOptions, SolverError, SolveResult, SolveStatus


def _safe(name: str) -> str:
    return name.replace("-", "_").replace("[", "_").replace("]", "")


def to_pulp(problem: CanonicalProblem) -> tuple[pulp.LpProblem, list[pulp.LpVariable]]:
    """The canonical problem as a PuLP model and its columns in canonical order."""
    model = pulp.LpProblem("hbopt", pulp.LpMinimize)
    columns = []
    for j, name in enumerate(problem.col_names()):
        lb, ub = problem.col_lower[j], problem.col_upper[j]
        columns.append(
            model.add_variable(
                _safe(name),
                lowBound=None if np.isinf(lb) else float(lb),
                upBound=None if np.isinf(ub) else float(ub),
                cat=pulp.LpInteger if problem.integrality[j] else pulp.LpContinuous,
            )
        )
    nz = np.flatnonzero(problem.cost)
    model += (
        pulp.LpAffineExpression([(columns[j], float(problem.cost[j])) for j in nz]) + problem.offset
    )
    A = problem.A
    for i, name in enumerate(problem.row_names()):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        expr = pulp.LpAffineExpression(
            [(columns[j], float(v)) for j, v in zip(A.indices[lo:hi], A.data[lo:hi], strict=True)]
        )
        rl, ru = problem.row_lower[i], problem.row_upper[i]
        if rl == ru:
            model += (expr == float(rl)), _safe(name)
            continue
        if not np.isinf(rl):
            model += (expr >= float(rl)), _safe(name) + "_lo"
        if not np.isinf(ru):
            model += (expr <= float(ru)), _safe(name) + "_up"
    return model, columns


def write_model(problem: CanonicalProblem, path: str | Path) -> Path:
    """Write the model as ``.lp`` or ``.mps`` (by the file's suffix)."""
    path = Path(path)
    model, _ = to_pulp(problem)
    if path.suffix == ".mps":
        model.writeMPS(str(path))
    elif path.suffix == ".lp":
        model.writeLP(str(path))
    else:
        raise ValueError(f"{path}: suffix must be .lp or .mps")
    return path


class PulpSolver:
    """Any PuLP solver by its PuLP name (default CBC, which ships with PuLP)."""

    def __init__(self, solver_name: str = "PULP_CBC_CMD") -> None:
        if solver_name not in pulp.listSolvers(onlyAvailable=True):
            raise ValueError(f"PuLP solver {solver_name!r} is not available here")
        self.solver_name = solver_name
        self.name = f"pulp:{solver_name}"

    def solve(self, problem: CanonicalProblem, options: SolveOptions) -> SolveResult:
        t0 = time.perf_counter()
        model, columns = to_pulp(problem)
        warm = options.start is not None and problem.num_integers > 0
        if options.start is not None and warm:
            start = np.clip(options.start, problem.col_lower, problem.col_upper)
            for column, value in zip(columns, start, strict=True):
                column.setInitialValue(float(value))
        solver = pulp.getSolver(
            self.solver_name,
            msg=False,
            gapRel=options.mip_gap,
            gapAbs=options.mip_abs_gap,
            timeLimit=options.time_limit_s,
            threads=options.threads,
            warmStart=warm,
        )
        code = model.solve(solver)
        solve_ms = (time.perf_counter() - t0) * 1e3
        if code != pulp.LpStatusOptimal:
            raise SolverError(f"{self.name}: {pulp.LpStatus[code]}")
        x = np.array([c.varValue if c.varValue is not None else 0.0 for c in columns])
        objective = float(problem.cost @ x + problem.offset)
        # "optimal" from PuLP's solvers means within their gap settings of their bound
        slack = max(options.mip_abs_gap, options.mip_gap * abs(objective))
        bound = objective - slack if problem.num_integers else objective
        return SolveResult(SolveStatus.OPTIMAL, x, objective, 0.0, solve_ms, self.name, bound=bound)
