"""HiGHS through highspy: the canonical problem is passed in bulk as one row-wise matrix."""

from __future__ import annotations

import time
from dataclasses import replace

import highspy
import numpy as np

from optimizer.model import CanonicalProblem
from optimizer.solvers.base import (
    SolveOptions,
    SolverCutoffError,
    SolverError,
    SolveResult,
    SolverTimeLimitError,
    SolveStatus,
)

_FEASIBLE = int(highspy.SolutionStatus.kSolutionStatusFeasible)
_STATUS = {
    highspy.HighsModelStatus.kOptimal: SolveStatus.OPTIMAL,
    highspy.HighsModelStatus.kTimeLimit: SolveStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kInfeasible: SolveStatus.INFEASIBLE,
}


def pass_model(h: highspy.Highs, problem: CanonicalProblem) -> None:
    """Hand the canonical problem to ``h`` as arrays (the row-wise matrix as it is).

    highspy copies numpy arrays straight into the model here; filling a ``HighsLp``'s fields
    instead converts every entry through Python (0.3 of 0.4 ms per fleet site at 144 slots).
    """
    a = problem.A
    integrality = problem.integrality.astype(np.int32)  # HighsVarType: 0 continuous, 1 integer
    h.passModel(
        problem.num_cols,
        problem.num_rows,
        a.nnz,
        int(highspy.MatrixFormat.kRowwise),
        int(highspy.ObjSense.kMinimize),
        problem.offset,
        problem.cost,
        problem.col_lower,
        problem.col_upper,
        problem.row_lower,
        problem.row_upper,
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        a.data,
        integrality,
    )


class _QuietHighs(highspy.Highs):
    """``highspy.Highs`` that never prints its banner.

    highspy 1.16 logs the "Running HiGHS ... Copyright" banner from its constructor, when it
    registers its callbacks, before a caller can set ``output_flag``; this sets the option first.
    """

    def enableCallbacks(self) -> None:  # noqa: N802  (highspy's name)
        self.setOptionValue("output_flag", False)
        super().enableCallbacks()


def _highs(options: SolveOptions) -> highspy.Highs:
    h = _QuietHighs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", options.mip_gap)
    h.setOptionValue("mip_abs_gap", options.mip_abs_gap)
    h.setOptionValue("time_limit", options.time_limit_s)
    h.setOptionValue("threads", options.threads)
    return h


THREAD_CLASH = (
    "HiGHS: Not Set. HiGHS keeps one thread pool per process, and another HiGHS user in "
    "this process (e.g. scipy.optimize or a notebook's highspy with default threads) "
    "started it with another thread count; retrying with threads=0 and after resetting the "
    "pool did not help. Call highspy.Highs.resetGlobalScheduler(True) between the two users."
)


def _run(h: highspy.Highs, threads: int) -> None:
    """``h.run()``, recovering from a thread pool another HiGHS user in this process started.

    HiGHS refuses to run (model status "Not Set") when the process's one thread pool was
    started with another thread count. First retry with the automatic count (what another
    user with default settings started), then after shutting the pool down.
    """
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kNotset:
        return
    h.setOptionValue("threads", 0)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kNotset:
        highspy.Highs.resetGlobalScheduler(True)
        h.setOptionValue("threads", threads)
        h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kNotset:
        raise SolverError(THREAD_CLASH)


def _result(h: highspy.Highs, num_cols: int, integer: bool, solve_ms: float) -> SolveResult:
    if h.getModelStatus() == highspy.HighsModelStatus.kObjectiveBound:
        raise SolverCutoffError("HiGHS: the LP's objective is above the cutoff")
    status = _STATUS.get(h.getModelStatus(), SolveStatus.ERROR)
    solution = h.getSolution()
    x = np.asarray(solution.col_value, dtype=float)
    if status in (SolveStatus.INFEASIBLE, SolveStatus.ERROR) or len(x) != num_cols:
        raise SolverError(f"HiGHS: {h.modelStatusToString(h.getModelStatus())}")
    info = h.getInfo()
    if status == SolveStatus.TIME_LIMIT and int(info.primal_solution_status) != _FEASIBLE:
        # HiGHS stops at the limit without a point; its col_value is then all zeros
        raise SolverTimeLimitError("HiGHS: time limit reached before any feasible solution")
    objective = float(info.objective_function_value)
    gap = float(info.mip_gap) if integer else 0.0
    bound = float(info.mip_dual_bound) if integer else objective
    if not np.isfinite(bound):
        bound = float("-inf")
    duals = None
    if not integer and solution.dual_valid:
        duals = np.asarray(solution.row_dual, dtype=float)
    return SolveResult(status, x, objective, gap, solve_ms, "highs", bound=bound, row_dual=duals)


class HighsSession:
    """One HiGHS model kept across solves: only bounds and integrality change, and an LP
    re-solve starts from the previous basis (the dive's LPs cost a fraction of a cold solve)."""

    def __init__(self, problem: CanonicalProblem) -> None:
        self.problem = problem
        self._h: highspy.Highs | None = None
        self._integer = np.zeros(problem.num_cols, dtype=bool)
        self._cols = np.arange(problem.num_cols, dtype=np.int32)
        #: the column bounds the model holds
        self._lower, self._upper = problem.col_lower.copy(), problem.col_upper.copy()
        #: the basis of the session's first LP solve (the relaxation), for the next cycle
        self.relaxation_basis: LpBasis | None = None

    def solve(
        self,
        lower: np.ndarray,
        upper: np.ndarray,
        integrality: np.ndarray,
        options: SolveOptions,
    ) -> SolveResult:
        t0 = time.perf_counter()
        if self._h is None:
            self._h = _highs(options)
            pass_model(self._h, self.problem.with_integrality(self._integer))
        h, n = self._h, self.problem.num_cols
        h.setOptionValue("time_limit", options.time_limit_s)
        h.setOptionValue("mip_rel_gap", options.mip_gap)
        h.setOptionValue("mip_abs_gap", options.mip_abs_gap)
        # Presolve costs more than it saves on these LPs (measured: 4.8 -> 3.2 ms CPU for
        # 96 slots battery + EV + heat pump, 8.7 -> 7.5 ms for 192; docs/optimizer.md);
        # the MIPs need it.
        h.setOptionValue("presolve", "on" if integrality.any() else "off")
        h.setOptionValue("objective_bound", np.inf if integrality.any() else options.cutoff)
        # only the columns whose bounds differ from the model's: passing all of them costs
        # ~0.3 ms per re-solve at 192 slots (HiGHS then re-checks every column)
        changed = np.flatnonzero((lower != self._lower) | (upper != self._upper))
        if len(changed):
            cols = changed.astype(np.int32)
            h.changeColsBounds(len(cols), cols, lower[changed], upper[changed])
            self._lower, self._upper = lower.copy(), upper.copy()
        if (integrality != self._integer).any():
            h.changeColsIntegrality(n, self._cols, integrality.astype(np.uint8))
            self._integer = integrality.copy()
        if isinstance(options.basis, LpBasis) and not integrality.any():
            h.setBasis(options.basis.basis)  # an inconsistent one is refused: a cold start
        if options.start is not None and integrality.any():
            start = highspy.HighsSolution()
            start.col_value = np.clip(options.start, lower, upper)
            start.value_valid = True
            h.setSolution(start)
        _run(h, options.threads)
        result = _result(h, n, bool(integrality.any()), (time.perf_counter() - t0) * 1e3)
        if self.relaxation_basis is None and not integrality.any():
            self.relaxation_basis = LpBasis(h.getBasis())
        return result

    def relaxation_room(self, options: SolveOptions) -> np.ndarray | None:
        """How far each row's bound can rise with the relaxation's duals unchanged (HiGHS's
        ranging of the relaxation, re-solved from its basis: no simplex iterations) [row
        units]; ``None`` before the relaxation was solved or when HiGHS has no ranging.

        A row dual is the price of a marginal change; this says how large a change that
        price holds for (e.g. the site's balance: how much more load the same source
        serves before a dearer one takes over). About 5 ms at 192 slots.
        """
        if self._h is None or self.relaxation_basis is None:
            return None
        h, n = self._h, self.problem.num_cols
        relaxed = np.zeros(n, dtype=bool)
        start = replace(options, basis=self.relaxation_basis)
        self.solve(self.problem.col_lower, self.problem.col_upper, relaxed, start)
        status, ranging = h.getRanging()
        if status != highspy.HighsStatus.kOk:
            return None
        rhs = np.asarray(h.getSolution().row_value, dtype=float)
        return np.maximum(np.asarray(ranging.row_bound_up.value_, dtype=float) - rhs, 0.0)


class LpBasis:
    """A HiGHS basis that pickles (a plan crosses process boundaries in the fleet): the
    statuses become plain ints only when pickled, not on every solve."""

    def __init__(self, basis: highspy.HighsBasis) -> None:
        self.basis = basis

    def __getstate__(self) -> tuple[list[int], list[int]]:
        b = self.basis
        return [int(v) for v in b.col_status], [int(v) for v in b.row_status]

    def __setstate__(self, state: tuple[list[int], list[int]]) -> None:
        basis = highspy.HighsBasis()
        basis.col_status = [highspy.HighsBasisStatus(v) for v in state[0]]
        basis.row_status = [highspy.HighsBasisStatus(v) for v in state[1]]
        basis.valid = True
        self.basis = basis


def shift_basis(basis: LpBasis, problem: CanonicalProblem, n: int, shift: int) -> LpBasis:
    """``basis`` of the same model ``shift`` slots earlier, moved to this one's start: every
    per-slot block (``n`` entries) loses its first ``shift`` statuses and repeats its last.

    The previous cycle solved almost the same LP; its basis, shifted, is nearly optimal
    (measured: 0-1 simplex iterations instead of ~600 at 96 slots, docs/optimizer.md)."""
    status = [list(basis.basis.col_status), list(basis.basis.row_status)]
    for blocks, part in zip((problem.variables, problem.constraints), status, strict=True):
        for b in blocks:
            if b.size == n:
                seg = part[b.start + shift : b.start + n]
                part[b.start : b.start + n] = seg + seg[-1:] * shift
    moved = highspy.HighsBasis()
    moved.col_status, moved.row_status = status
    moved.valid = True
    return LpBasis(moved)


class HighsSolver:
    """The default backend."""

    name = "highs"
    shift_basis = staticmethod(shift_basis)

    def session(self, problem: CanonicalProblem) -> HighsSession:
        return HighsSession(problem)

    def solve(self, problem: CanonicalProblem, options: SolveOptions) -> SolveResult:
        session = HighsSession(problem)
        return session.solve(problem.col_lower, problem.col_upper, problem.integrality, options)
