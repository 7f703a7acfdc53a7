"""Exact MILP solving that pays for integrality only where the relaxation needs it.

Most binaries of a home's plan (EV on/off and phase per slot, heat pump on/off, grid or
battery direction) are decided "for free" by the LP relaxation: the relaxed EV charges at full
power in the cheapest slots and leaves at most a few slots between 0 and its minimum. General
MIP solvers spend most of their time on primal heuristics for such models, while the
relaxation's bound is already (nearly) tight. So:

1. Solve the LP relaxation: its objective is a lower bound of the MIP optimum.
2. ``rounded``: round the integer columns (the devices' rules, e.g. the phase option whose
   power range holds the relaxed power) and check every row. Feasible and within the gap of
   the bound: done.
3. ``fixed``: fix *every* integer column by the devices' repair rules and re-solve the LP (a
   warm re-solve, about a millisecond). The rules keep the pattern feasible: the EV's
   fractional slots are switched on in the number that carries their energy (largest relaxed
   power first), never more than the car has room for; a heat pump run is stretched to its
   minimum run time; direction binaries are rounded up (allowing the flow the relaxation
   used). Four rules are tried (energy-conserving, off below half the minimum, on
   whenever it runs, energy-conserving in the cheapest slots), the best point is kept.
   After the first, the devices' searches: a heat pump's runs by a DP against the
   relaxation's marginal prices, the LP re-solved with them fixed, the other columns rounded
   by the rules around that (all but "on whenever it runs", after the LP moved a car's
   scattered trickle next to the slots it charges at or above its minimum); then a capped
   local search of the runs (each move valued by the LP with the other integer columns
   relaxed, stopped as soon as it cannot beat the point) from that DP's runs or, when their
   LP is well beyond the gap, the better of those and the runs of a DP whose prices hold
   only as far as the relaxation's ranging says; the rules around every improvement the LP
   puts within the gap's reach; last, a capped local search over every integer column from
   the best point. Within the gap of the bound: done.
4. ``partial``: a MIP over the binaries in the rows the rounding of step 2 broke, the others
   fixed as rounded, from the best point of step 3; within the gap of the LP bound: done.
5. ``mip``: otherwise HiGHS's branch and bound, with the plan's remaining time and the same
   stopping rule (the absolute tolerance of step 2), started from the best point so far.
   HiGHS's root bound (presolve and cuts) is tighter than the LP's and often proves that
   point within the gap at once. Its dual bound then proves the gap.

One definition of the gap everywhere (docs/optimizer.md): ``objective - bound`` over the
plan's gross value (the sum of the absolute objective terms at the LP optimum). A plan is
optimal when ``objective - bound <= max(mip_gap x gross, mip_abs_gap)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from optimizer.devices.context import CHEAPEST, CONSERVE, Consolidate
from optimizer.model import CanonicalProblem
from optimizer.solvers.base import (
    SolveOptions,
    Solver,
    SolverError,
    SolveResult,
    SolverSession,
    SolveStatus,
    open_session,
)

FEAS_TOL = 1e-6
#: Repair rules of step 3, in the order tried: conserve the fractional energy, off below half
#: the minimum, on wherever it runs, conserve in the cheapest slots.
REPAIRS = (CONSERVE, 0.5, 0.0, CHEAPEST)
#: The rules tried around the heat-pump searches' points (the car rounded around fixed runs):
#: "on wherever it runs" left out. Of 78 such roundings on 90 hard days it was the best twice,
#: and left out it saves an LP in every one (docs/optimizer.md).
AROUND_REPAIRS = (CONSERVE, 0.5, CHEAPEST)
#: Warm-start HiGHS's MIP with the best heuristic point. Measured on the heat-pump-with-minimum-
#: run days that reach the MIP (docs/optimizer.md): 3 of 6 proven at the root in ~60 ms
#: instead of 0.9-1.2 s, the others as fast as without.
START_MIP = True
#: HiGHS needs some time to return even a bad answer [s].
MIN_CALL_S = 0.05
#: The local search of the searched columns (heat-pump runs): at most this many LP re-solves
#: (1-2 ms each at 192 slots), trying at most ``MOVES_PER_ROUND`` moves from each point, the
#: most promising first by the reduced costs of the columns they change (docs/optimizer.md).
SEARCH_LPS = 20
MOVES_PER_ROUND = 12
#: The same for the last local search, every integer column fixed (a car's slots too).
FINAL_LPS = 20
#: Start the local search from the better of the searches' points at marginal prices and
#: at prices that hold only as far as the relaxation's ranging says.
CONVEX_START = True
#: ... only when the LP with the marginal prices' runs is this many gap tolerances above the
#: bound or more (the ranging and the second DP cost ~15-20 ms at 192 slots).
CONVEX_ABOVE = 1.2
#: During the local search of the runs, try the car rounded by the repair rules around
#: every improvement whose LP (the car relaxed) is within this many gap tolerances of the
#: bound (0: only after the search).
EARLY_ROUNDING = 1.0

#: A device rounding rule: sets relaxed integer columns of a point in place (see
#: :data:`optimizer.devices.context.Rounder`).
Rounder = Callable[[np.ndarray, np.ndarray, float | None], None]
#: Devices' searches: set their integer columns of a point in place from the relaxation's
#: row duals (and the rows' room at them, or ``None``) and return which columns they set
#: (:meth:`optimizer.formulate.Formulation.search`).
Search = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]
#: Devices' moves of their integer columns from a point, of those a mask allows: per move the
#: columns it changes and their new values (:meth:`optimizer.formulate.Formulation.neighbours`).
Neighbours = Callable[[np.ndarray, np.ndarray], list[tuple[np.ndarray, np.ndarray]]]


def _violated_rows(problem: CanonicalProblem, x: np.ndarray) -> np.ndarray:
    ax = problem.A @ x
    tol = FEAS_TOL * (1.0 + np.abs(ax))
    return (ax < problem.row_lower - tol) | (ax > problem.row_upper + tol)


def _cols_of_rows(problem: CanonicalProblem, rows: np.ndarray) -> np.ndarray:
    """Columns with a coefficient in any of ``rows`` (bool per column)."""
    sub = problem.A[np.flatnonzero(rows)]
    cols = np.zeros(problem.num_cols, dtype=bool)
    cols[sub.indices] = True
    return cols


def round_relaxed(
    problem: CanonicalProblem,
    x: np.ndarray,
    relaxed: np.ndarray,
    rounder: Rounder,
    repair: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Round the ``relaxed`` integer columns of ``x``; return the point and violated rows.

    Columns no device rule owns (grid and battery direction, surplus switches) are rounded
    up: that allows the flow the relaxation used, so fixing them never makes a problem
    infeasible (rounding them down could forbid the import an EV switched on needs). Under
    :data:`CONSERVE` they are rounded to the nearest instead (the larger flow wins), which
    keeps more of the relaxation's plan; the other rules are the fallback.
    """
    cand = x.copy()
    up = np.round(x) if repair == CONSERVE else np.ceil(x - FEAS_TOL)
    cand[relaxed] = up[relaxed]
    rounder(cand, relaxed, repair)
    return cand, _violated_rows(problem, cand)


def gross_value(problem: CanonicalProblem, x: np.ndarray) -> float:
    """The plan's gross value: the sum of the absolute objective terms at ``x`` [EUR].

    The relative gap is taken of this, not of the net objective: a home whose costs and end
    values nearly cancel has a net objective near zero, and a gap relative to that would
    demand cents where the plan moves euros.
    """
    return float(np.abs(problem.cost * x).sum())


def gap_tolerance(problem: CanonicalProblem, relaxed_x: np.ndarray, options: SolveOptions) -> float:
    """How far above the LP bound an objective may be and still count as optimal [EUR]."""
    gross = gross_value(problem, relaxed_x)
    return max(options.mip_gap * gross, options.mip_abs_gap) + 1e-9


class _Clock:
    """The plan's time limit, shared by all solver calls of one plan."""

    def __init__(self, options: SolveOptions) -> None:
        self.deadline = time.perf_counter() + options.time_limit_s
        self.options = options

    def left(self, **changes: object) -> SolveOptions:
        """``options`` with the time left (at least :data:`MIN_CALL_S`) and ``changes``."""
        left = max(self.deadline - time.perf_counter(), MIN_CALL_S)
        return replace(self.options, time_limit_s=left, **changes)  # type: ignore[arg-type]


def solve_lazily(
    backend: Solver,
    problem: CanonicalProblem,
    options: SolveOptions,
    rounder: Rounder = lambda x, relaxed, repair: None,
    *,
    slack: float = 0.0,
    start: np.ndarray | None = None,
    search: Search | None = None,
    neighbours: Neighbours | None = None,
    consolidate: Consolidate | None = None,
) -> tuple[SolveResult, int]:
    """Solution of ``problem`` within the MIP gap; also how many integer columns were imposed.

    ``slack`` [EUR] is taken off the tolerance (the tie-break's largest effect, so that the
    plan without it is still within the gap). ``start`` is an integer pattern (e.g. the
    previous cycle's, shifted by a slot; NaN where it says nothing) tried after the repair
    rules. All solves go through one session of the backend (:func:`open_session`): between
    them only bounds and integer columns change, which HiGHS re-solves from its previous
    basis. ``options.time_limit_s`` is the plan's.
    """
    t0 = time.perf_counter()
    session = open_session(backend, problem)
    searches = None if search is None else _Searches(search, neighbours, consolidate)
    result, imposed = _solve_steps(
        session, problem, options, rounder, slack=slack, start=start, searches=searches
    )
    # the whole sequence's time: every LP re-solve of the searches and the searches' own work
    solve_ms = (time.perf_counter() - t0) * 1e3
    basis = getattr(session, "relaxation_basis", None)
    return replace(result, basis=basis, solve_ms=solve_ms), imposed


def _solve_steps(
    session: SolverSession,
    problem: CanonicalProblem,
    options: SolveOptions,
    rounder: Rounder,
    *,
    slack: float,
    start: np.ndarray | None,
    searches: _Searches | None,
) -> tuple[SolveResult, int]:
    """The steps of :func:`solve_lazily` through one ``session``."""
    clock = _Clock(options)
    integer = problem.integrality
    relaxation = session.solve(
        problem.col_lower, problem.col_upper, np.zeros_like(integer), clock.left()
    )
    clock.options = replace(options, basis=None)  # the relaxation's start only
    if not integer.any():
        gross = gross_value(problem, relaxation.x)
        return replace(relaxation, bound=relaxation.objective, stage="lp", gross=gross), 0
    bound = relaxation.objective
    gross = gross_value(problem, relaxation.x)
    tol = max(gap_tolerance(problem, relaxation.x, options) - slack, 1e-9)
    cand, bad = round_relaxed(problem, relaxation.x, integer, rounder)
    objective = float(problem.cost @ cand + problem.offset)
    if not bad.any() and objective <= bound + tol:
        return _result(relaxation, cand, objective, bound, gross, stage="rounded"), 0
    best = _fixed_patterns(
        session, problem, clock, rounder, (relaxation, tol), start=start, searches=searches
    )
    if best is not None and best.objective <= bound + tol:
        return _result(best, best.x, best.objective, bound, gross, stage="fixed"), 0
    hint = best.x if best is not None and START_MIP else None
    undecided = integer & _cols_of_rows(problem, bad)
    try:  # branch only on the binaries the rounding could not decide, the rest fixed
        lower, upper = _fixed_bounds(problem, cand, integer & ~undecided)
        options_ = clock.left(mip_gap=0.0, mip_abs_gap=tol, start=hint)
        partial = session.solve(lower, upper, integer, options_)
        if best is None or partial.objective < best.objective:
            best, hint = partial, partial.x
        if best.objective <= bound + tol:
            best = replace(best, status=SolveStatus.OPTIMAL)
            result = _result(best, best.x, best.objective, bound, gross, stage="partial")
            return result, int(undecided.sum())
    except SolverError:
        pass
    mip_options = clock.left(mip_gap=0.0, mip_abs_gap=tol, start=hint)
    try:
        full = session.solve(problem.col_lower, problem.col_upper, integer, mip_options)
    except SolverError:
        if best is None:
            raise
        best = replace(best, status=SolveStatus.TIME_LIMIT)
        return _result(best, best.x, best.objective, bound, gross, stage="fixed"), 0
    if best is not None and best.objective < full.objective:
        full = replace(full, x=best.x, objective=best.objective)
    proven = max(bound, full.bound)
    status = SolveStatus.OPTIMAL if full.objective <= proven + tol else full.status
    full = replace(full, status=status)
    result = _result(full, full.x, full.objective, proven, gross, stage="mip")
    return result, int(integer.sum())


def _fixed_patterns(
    session: SolverSession,
    problem: CanonicalProblem,
    clock: _Clock,
    rounder: Rounder,
    relaxed: tuple[SolveResult, float],
    *,
    start: np.ndarray | None,
    searches: _Searches | None = None,
) -> SolveResult | None:
    """The best point with every integer column fixed by a repair rule (step 3); stops at
    the first within ``tol`` of the relaxation (``relaxed`` is the relaxation and ``tol``).

    Returns the point (``None`` when every pattern was infeasible).
    """
    relaxation, tol = relaxed
    integer = problem.integrality
    best: SolveResult | None = None
    tried: list[np.ndarray] = []
    searched: Iterator[np.ndarray] = iter(())
    if searches is not None:
        searched = _searched(session, problem, clock, relaxed, rounder=rounder, searches=searches)
    patterns = _patterns(problem, relaxation, rounder, searched, start)
    for cand in patterns:
        pattern = np.round(cand[integer])
        if any(np.array_equal(pattern, p) for p in tried):
            continue
        tried.append(pattern)
        lower, upper = _fixed_bounds(problem, cand, integer)
        cutoff = np.inf if best is None else best.objective - 1e-12  # only a better one counts
        try:
            point = session.solve(lower, upper, np.zeros_like(integer), clock.left(cutoff=cutoff))
        except SolverError:
            continue
        if best is None or point.objective < best.objective - 1e-12:
            best = point
        if best.objective <= relaxation.objective + tol:
            break
    neighbours = None if searches is None else searches.neighbours
    if best is not None and best.objective > relaxation.objective + tol and neighbours:
        # last, the devices' moves with every integer column fixed (a car's slot switched
        # on or off as well as the heat pump's runs moved)
        at = (best, best.x, integer)
        best, _ = _descend(session, problem, clock, at, neighbours, most=FINAL_LPS)
    return best


def _patterns(
    problem: CanonicalProblem,
    relaxation: SolveResult,
    rounder: Rounder,
    searched: Iterator[np.ndarray],
    start: np.ndarray | None,
) -> Iterator[np.ndarray]:
    """Candidate points of step 3, in the order tried, each made only when asked for: the
    repair rules, the ``searched`` points after the first, then ``start``."""
    integer = problem.integrality
    first = round_relaxed(problem, relaxation.x, integer, rounder, REPAIRS[0])[0]
    yield first
    yield from searched
    for repair in REPAIRS[1:]:
        yield round_relaxed(problem, relaxation.x, integer, rounder, repair)[0]
    if start is not None:  # tried last (measured: first costs more than it saves, see
        # docs/optimizer.md); where it says nothing, the first rule's values
        known = integer & np.isfinite(start)
        yield np.where(known, start, first)


def _searched(
    session: SolverSession,
    problem: CanonicalProblem,
    clock: _Clock,
    relaxed: tuple[SolveResult, float],
    *,
    rounder: Rounder,
    searches: _Searches,
) -> Iterator[np.ndarray]:
    """Points with the devices' searches' columns (heat-pump runs against the relaxation's
    marginal prices) fixed, the other integer columns by the repair rules applied to the LP
    re-solved around those: the rules then round a relaxation that already fits the runs.
    Then the searches once more, priced with the other columns fixed as rounded. Last, a
    local search of the searched columns (:func:`_descend`) and the rules around its point.
    Rules are skipped where the re-solve alone is beyond the gap (no rounding could be
    within it)."""
    relaxation, tol = relaxed
    search, neighbours, consolidate = searches
    if relaxation.row_dual is None:
        return
    integer = problem.integrality
    point = relaxation.x.copy()
    owned = search(point, relaxation.row_dual, None)

    def rounded(at: tuple[SolveResult, np.ndarray]) -> Generator[np.ndarray, None, np.ndarray]:
        around, point = at
        around = _consolidated(session, problem, clock, (around, point, owned), consolidate)
        return (yield from _rounded_around(problem, around, point, owned, rounder))

    lower, upper = _fixed_bounds(problem, point, owned)
    try:
        around = session.solve(lower, upper, np.zeros_like(integer), clock.left())
    except SolverError:
        return
    if around.objective <= relaxation.objective + tol:
        first = yield from rounded((around, point))
        # once more, the searches priced with the other integer columns fixed as rounded
        lower, upper = _fixed_bounds(problem, first, integer & ~owned)
        try:
            rest = session.solve(lower, upper, np.zeros_like(integer), clock.left())
        except SolverError:
            return
        if rest.row_dual is not None:
            again = first.copy()
            search(again, rest.row_dual, None)
            yield again
    if neighbours is None:
        return
    if around.objective > relaxation.objective + CONVEX_ABOVE * tol:
        points = (relaxation, around, point)
        around, point = _convex_start(session, problem, clock, points, search)
    descent = _descents(
        session, problem, clock, (around, point, owned), neighbours, most=SEARCH_LPS
    )
    while True:
        try:
            around, point = next(descent)
        except StopIteration as stop:
            around, point = stop.value
            break
        if EARLY_ROUNDING and around.objective <= relaxation.objective + EARLY_ROUNDING * tol:
            # a chance to end here: the car rounded by the rules around these runs
            yield from rounded((around, point))
    if around.objective <= relaxation.objective + tol:
        yield from rounded((around, point))


class _Searches(NamedTuple):
    """The devices' searches of their columns, their moves, and what they switch off
    before the rules round a point around fixed runs."""

    search: Search
    neighbours: Neighbours | None
    consolidate: Consolidate | None


def _consolidated(
    session: SolverSession,
    problem: CanonicalProblem,
    clock: _Clock,
    at: tuple[SolveResult, np.ndarray, np.ndarray],
    consolidate: Consolidate | None,
) -> SolveResult:
    """The LP ``around`` (``at``: it, the point, its fixed columns) re-solved with the
    columns the devices consolidate fixed at their lower bound, where there are any; else,
    or when that LP fails, ``around`` itself. A car's trickle away from the slots it
    charges at or above its minimum moves next to them at (nearly) no cost, so the rules
    round a relaxation that already fits them (docs/optimizer.md)."""
    around, point, owned = at
    if consolidate is None:
        return around
    off = consolidate(around.x) & ~owned
    if not off.any():
        return around
    lower, upper = _fixed_bounds(problem, point, owned)
    upper[off] = lower[off]
    try:
        return session.solve(lower, upper, np.zeros_like(problem.integrality), clock.left())
    except SolverError:
        return around


def _rounded_around(
    problem: CanonicalProblem,
    around: SolveResult,
    point: np.ndarray,
    owned: np.ndarray,
    rounder: Rounder,
) -> Generator[np.ndarray, None, np.ndarray]:
    """``point``'s ``owned`` columns with the other integer columns rounded by each of
    :data:`AROUND_REPAIRS` from ``around`` (the LP with ``owned`` fixed); returns the first
    rule's point."""
    first = None
    for repair in AROUND_REPAIRS:
        cand = round_relaxed(problem, around.x, problem.integrality, rounder, repair)[0]
        cand[owned] = point[owned]
        first = cand if first is None else first
        yield cand
    assert first is not None
    return first


def _convex_start(
    session: SolverSession,
    problem: CanonicalProblem,
    clock: _Clock,
    points: tuple[SolveResult, SolveResult, np.ndarray],
    search: Search,
) -> tuple[SolveResult, np.ndarray]:
    """The better start for :func:`_descend`: the searches' point at marginal prices
    (``points``: the relaxation, the LP with that point's columns fixed, the point) or theirs
    where each price holds only as far as the relaxation's ranging says (the session's
    ``relaxation_room``; HiGHS only)."""
    relaxation, around, point = points
    room_of = getattr(session, "relaxation_room", None) if CONVEX_START else None
    room = None if room_of is None else room_of(clock.left())
    if room is None or relaxation.row_dual is None:
        return around, point
    convex = relaxation.x.copy()
    owned = search(convex, relaxation.row_dual, room)
    if np.array_equal(convex[owned], point[owned]):
        return around, point
    lower, upper = _fixed_bounds(problem, convex, owned)
    try:
        other = session.solve(lower, upper, np.zeros_like(problem.integrality), clock.left())
    except SolverError:
        return around, point
    return (other, convex) if other.objective < around.objective else (around, point)


def _descend(
    session: SolverSession,
    problem: CanonicalProblem,
    clock: _Clock,
    at: tuple[SolveResult, np.ndarray, np.ndarray],
    neighbours: Neighbours,
    *,
    most: int,
) -> tuple[SolveResult, np.ndarray]:
    """First-improvement local search of the ``owned`` columns from ``point`` (``at``: the LP
    with them fixed, the point, the columns); returns the best LP and point
    (:func:`_descents`)."""
    descent = _descents(session, problem, clock, at, neighbours, most=most)
    while True:
        try:
            next(descent)
        except StopIteration as stop:
            return stop.value


def _descents(
    session: SolverSession,
    problem: CanonicalProblem,
    clock: _Clock,
    at: tuple[SolveResult, np.ndarray, np.ndarray],
    neighbours: Neighbours,
    *,
    most: int,
) -> Generator[tuple[SolveResult, np.ndarray], None, tuple[SolveResult, np.ndarray]]:
    """First-improvement local search of the ``owned`` columns from ``point`` (``at``: the LP
    with them fixed, the point, the columns), each move valued by the LP re-solved with the
    other integer columns relaxed; yields every improvement (LP and point), returns the best.

    The searches' prices are marginal, and a whole heat-pump run is not: the battery's plan
    answers it. The LP sees that answer; the moves most promising at the current point's
    reduced costs are tried first, at most :data:`MOVES_PER_ROUND` per point and
    ``most`` re-solves in all. A move's LP stops as soon as its objective is proven no
    better than the point's (the cutoff).
    """
    best, point, owned = at
    integer = problem.integrality
    solves = 0
    while solves < most and best.row_dual is not None:
        reduced = problem.cost - problem.A.T @ best.row_dual
        moves = [(c, v) for c, v in neighbours(point, owned) if owned[c].all()]
        promise = [float(reduced[c] @ (v - point[c])) for c, v in moves]
        improved = False
        for i in np.argsort(promise, kind="stable")[:MOVES_PER_ROUND]:
            if solves >= most:
                break
            solves += 1
            moved = point.copy()
            moved[moves[i][0]] = moves[i][1]
            lower, upper = _fixed_bounds(problem, moved, owned)
            try:
                options = clock.left(cutoff=best.objective - 1e-9)
                trial = session.solve(lower, upper, np.zeros_like(integer), options)
            except SolverError:
                continue
            if trial.objective < best.objective - 1e-9:
                best, point, improved = trial, moved, True
                yield best, point
                break
        if not improved:
            break
    return best, point


def _fixed_bounds(
    problem: CanonicalProblem, x: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Column bounds with ``cols`` fixed at their (rounded) values in ``x``."""
    lower, upper = problem.col_lower.copy(), problem.col_upper.copy()
    values = np.clip(np.round(x[cols]), lower[cols], upper[cols])
    lower[cols] = upper[cols] = values
    return lower, upper


def _result(
    base: SolveResult,
    x: np.ndarray,
    objective: float,
    bound: float,
    gross: float,
    *,
    stage: str,
) -> SolveResult:
    """``base`` at point ``x`` with the gap of the one definition (module docstring)."""
    gap = max(objective - bound, 0.0) / max(gross, 1e-9)
    return replace(
        base, x=x, objective=objective, bound=bound, mip_gap=gap, stage=stage, gross=gross
    )
