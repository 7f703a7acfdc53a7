"""The relax / round / fix / branch sequence: repair rules that keep a fixed pattern feasible,
the early tie-break, one gap definition, the plan-wide time limit, HiGHS's thread pool."""

import pickle
import subprocess
import sys
import textwrap
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from optimizer import (
    Battery,
    EVSession,
    HeatPump,
    Problem,
    Site,
    State,
    Tuning,
    Wallbox,
    optimize,
)
from optimizer.devices.context import CONSERVE
from optimizer.devices.heatpump import duty_cycle, stretch_runs
from optimizer.formulate import formulate
from optimizer.lazy import _fixed_bounds, round_relaxed, solve_lazily
from optimizer.model import ModelBuilder, diag
from optimizer.plan import shifted_basis
from optimizer.solvers.base import SolveOptions, SolverCutoffError, SolverError
from optimizer.solvers.highs import HighsSession, HighsSolver
from tests.optimizer.helpers import RecordingHighs, assert_balance, assert_min_runs, at, inputs

WB = Wallbox(max_current_a=16, phases=3, efficiency=1.0)  # 4.14 .. 11.04 kW
LP = np.zeros(0, dtype=bool)


def _fixed_solve(problem: Problem, x: np.ndarray) -> float:
    """Objective with every integer column fixed at its value in ``x`` (SolverError if none)."""
    canonical = formulate(problem).problem
    lower, upper = _fixed_bounds(canonical, x, canonical.integrality)
    session = HighsSession(canonical)
    relaxed = np.zeros(canonical.num_cols, dtype=bool)
    return session.solve(lower, upper, relaxed, SolveOptions()).objective


def _relaxed_point(problem: Problem) -> np.ndarray:
    canonical = formulate(problem).problem
    relaxed = np.zeros(canonical.num_cols, dtype=bool)
    return (
        HighsSession(canonical)
        .solve(canonical.col_lower, canonical.col_upper, relaxed, SolveOptions())
        .x
    )


def test_switching_on_every_fractional_slot_overfills_the_car_unless_trimmed() -> None:
    # One cause of infeasible dives: every slot the relaxation charges a little in switched
    # on at 4.14 kW puts more into the car than it has room for (a hard bound).
    session = EVSession(capacity_kwh=10, energy_kwh=4, departure=at(8))  # room: 6 kWh
    site = Site(pv=None, battery=None, wallboxes=(WB,))
    problem = Problem(site, inputs([0.3] * 8), State(ev_sessions=(session,)))
    formulation = formulate(problem)
    canonical = formulation.problem
    x = _relaxed_point(problem)
    power = canonical.variable("ev-power").slice
    x[power] = 0.75  # 6 kWh spread over 8 slots, each below the minimum
    on = canonical.variable("ev-on_3p").slice
    untrimmed = x.copy()
    untrimmed[on] = 1.0
    with pytest.raises(SolverError):
        _fixed_solve(problem, untrimmed)
    for repair in (CONSERVE, 0.5, 0.0):
        cand, _ = round_relaxed(canonical, x, canonical.integrality, formulation.round, repair)
        assert cand[on].sum() * 4.14 <= 6.0 + 1e-9
        _fixed_solve(problem, cand)  # feasible


def test_direction_binaries_are_rounded_up_so_a_car_switched_on_can_import() -> None:
    # The other cause: at a negative import price export pays more than import costs, so a
    # binary picks the direction; rounding it down forbids the import the car needs.
    session = EVSession(capacity_kwh=60, energy_kwh=10, target_kwh=20, departure=at(2))
    site = Site(pv=None, battery=None, wallboxes=(WB,))
    problem = Problem(site, inputs([-0.05, 0.3]), State(ev_sessions=(session,)))
    formulation = formulate(problem)
    canonical = formulation.problem
    x = _relaxed_point(problem)
    importing = canonical.variable("grid-importing").slice
    on = canonical.variable("ev-on_3p").slice
    x[importing] = 0.4
    floored = x.copy()
    floored[importing] = 0.0
    floored[on] = 1.0
    with pytest.raises(SolverError):
        _fixed_solve(problem, floored)
    for repair in (0.5, 0.0):
        cand, _ = round_relaxed(canonical, x, canonical.integrality, formulation.round, repair)
        assert cand[importing].tolist() == [1.0]
        _fixed_solve(problem, cand)


def test_heat_pump_runs_are_stretched_to_the_minimum_run_time() -> None:
    running = np.array([0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
    assert stretch_runs(running, 3).astype(int).tolist() == [0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1]
    # 0.5 kW relaxed over 8 slots = 4 slot-kW: one run of 4 slots at 1 kW, started early
    on = duty_cycle(np.full(8, 0.5), 1.0, 4, 1e-7)
    assert on.astype(int).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]


def test_min_run_heat_pump_plan_is_optimal_within_the_gap() -> None:
    hp = HeatPump(min_kw=1.0, min_run_slots=3)
    site = Site(pv=None, battery=None, heat_pumps=(hp,))
    prices = [0.3, 0.1, 0.1, 0.3, 0.3, 0.2, 0.2, 0.4] * 3
    problem = Problem(site, inputs(prices, t_out_c=np.zeros(24), step_min=60))
    plan = optimize(problem)
    exact = optimize(Problem(site, problem.inputs, tuning=Tuning(mip_gap=0, mip_abs_gap_eur=0)))
    s = plan.summary
    assert s.status == "optimal"
    assert s.mip_gap <= 0.005 + 1e-9
    # the bound is proven: no plan beats it, and the plan is within the reported gap
    assert s.bound_eur <= exact.summary.objective_eur + 1e-6
    assert s.objective_eur - exact.summary.objective_eur <= s.objective_eur - s.bound_eur + 1e-9
    assert_min_runs(plan.slots["hp_kw"].to_numpy(), 3)


def test_equal_prices_charge_the_car_in_the_earliest_slots() -> None:
    # Hourly prices on quarter-hours: four equal slots each. 5.52 kWh = two slots at 11.04 kW,
    # all cheap slots cost the same: the car charges in the first two cheap ones.
    session = EVSession(capacity_kwh=60, energy_kwh=20, target_kwh=25.52, departure=at(12, 15))
    site = Site(pv=None, battery=None, wallboxes=(WB,))
    prices = [0.30] * 4 + [0.10] * 8
    plan = optimize(Problem(site, inputs(prices, step_min=15), State(ev_sessions=(session,))))
    assert plan.slots["ev_kw"].to_numpy() == pytest.approx([0.0] * 4 + [11.04] * 2 + [0.0] * 6)
    # hand-computed optimum: 5.52 kWh x 0.10 EUR; the tie-break stays inside the gap
    assert plan.summary.cost_eur == pytest.approx(0.552, abs=1e-6)
    assert plan.summary.objective_eur == pytest.approx(0.552, abs=0.01)
    assert plan.summary.objective_eur - plan.summary.bound_eur <= 0.01 + 1e-9
    assert_balance(plan.slots)


def test_flat_day_fills_the_battery_early() -> None:
    site = Site(pv=None, battery=Battery(capacity_kwh=10, charge_kw=5, discharge_kw=5))
    tuning = Tuning(terminal_value_eur_per_kwh=0.5, battery_wear_eur_per_kwh=0.0)
    plan = optimize(Problem(site, inputs([0.2] * 8, step_min=60), State(0.0), tuning))
    charge = plan.slots["battery_charge_kw"].to_numpy()
    # 10 kWh at 95 %: 5 + 5 kW, then the rest; never a later slot before an earlier one
    assert charge[:3] == pytest.approx([5.0, 5.0, 0.5 / 0.95], abs=1e-6)
    assert charge[3:].sum() == pytest.approx(0.0, abs=1e-6)


def test_reported_gap_is_the_stopping_rule() -> None:
    # One definition: (objective - proven bound) / gross value, and optimal means within
    # max(mip_gap x gross, mip_abs_gap) of the bound.
    wb = Wallbox(switch_phases=True)
    session = EVSession(capacity_kwh=80, energy_kwh=10, target_kwh=55, departure=at(48, 30))
    site = Site(pv=None, battery=Battery(capacity_kwh=10), wallboxes=(wb,))
    prices = 0.2 + 0.1 * np.sin(np.arange(48) / 4) + 0.05 * np.cos(np.arange(48) * 1.7)
    tuning = Tuning(mip_gap=0.005, mip_abs_gap_eur=0.01)
    plan = optimize(
        Problem(site, inputs(prices, step_min=30, load=0.4), State(0.5, {}, (session,)), tuning)
    )
    s = plan.summary
    assert s.status == "optimal"
    assert s.bound_eur <= s.objective_eur + 1e-9
    gross = (s.objective_eur - s.bound_eur) / s.mip_gap if s.mip_gap > 0 else np.inf
    assert s.objective_eur - s.bound_eur <= max(0.005 * gross, 0.01) + 1e-9


def test_time_limit_is_the_plans_not_each_calls() -> None:
    session = EVSession(capacity_kwh=10, energy_kwh=4, departure=at(8))
    site = Site(pv=None, battery=None, wallboxes=(WB,))
    prices = [0.3, 0.1, 0.3, 0.2, 0.25, 0.1, 0.3, 0.3]
    problem = Problem(site, inputs(prices), State(ev_sessions=(session,)))
    formulation = formulate(problem)
    backend = RecordingHighs()
    solve_lazily(backend, formulation.problem, SolveOptions(time_limit_s=2.0), formulation.round)
    limits = [o.time_limit_s for o in backend.options]
    assert limits[0] <= 2.0
    assert all(b <= a for a, b in pairwise(limits))


def test_final_soc_target_is_met_when_cheaper_than_its_penalty() -> None:
    # 3 kWh short of 50 %: buying 3 / 0.9 kWh at 0.30 (1.00 EUR) beats 3 kWh x 1 EUR.
    cfg = dict(capacity_kwh=10.0, charge_kw=5.0, discharge_kw=5.0, charge_efficiency=0.9)
    site = Site(pv=None, battery=Battery(**cfg))  # type: ignore[arg-type]
    exact = dict(mip_gap=0.0, mip_abs_gap_eur=0.0, battery_wear_eur_per_kwh=0.0)
    tuning = Tuning(terminal_value_eur_per_kwh=0.0, final_soc=0.5, **exact)  # type: ignore[arg-type]
    plan = optimize(Problem(site, inputs([0.3, 0.3]), State(0.2), tuning))
    assert plan.slots["battery_soc"].iloc[-1] == pytest.approx(0.5, abs=1e-6)
    assert plan.summary.cost_eur == pytest.approx(3 / 0.9 * 0.3, abs=1e-6)
    assert plan.violations == ()
    # with a penalty below the price of the energy the target is missed and reported
    cheap = Tuning(
        terminal_value_eur_per_kwh=0.0,
        final_soc=0.5,
        final_soc_penalty_eur_per_kwh=0.1,
        **exact,  # type: ignore[arg-type]
    )
    plan = optimize(Problem(site, inputs([0.3, 0.3]), State(0.2), cheap))
    assert plan.summary.cost_eur == pytest.approx(0.0, abs=1e-6)
    (violation,) = plan.violations
    assert (violation.name, violation.amount) == ("battery-final_soc", pytest.approx(3.0))


def test_highs_recovers_when_another_user_started_its_thread_pool() -> None:
    # HiGHS keeps one thread pool per process; a first user with the default thread count
    # made every later threads=1 solve fail with "Not Set".
    script = textwrap.dedent(
        """
        import numpy as np, highspy
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.addVars(2, np.zeros(2), np.full(2, 10.5))
        h.changeColsCost(2, np.arange(2, dtype=np.int32), np.array([-1.0, -1.0]))
        h.changeColsIntegrality(2, np.arange(2, dtype=np.int32), np.ones(2, dtype=np.uint8))
        h.run()
        from optimizer import EVSession, Problem, Site, State, Wallbox, optimize
        from tests.optimizer.helpers import at, inputs
        session = EVSession(capacity_kwh=60, energy_kwh=20, target_kwh=22, departure=at(3))
        site = Site(pv=None, battery=None, wallboxes=(Wallbox(),))
        plan = optimize(Problem(site, inputs([0.3, 0.1, 0.2]), State(ev_sessions=(session,))))
        print(plan.summary.status)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "optimal"


def test_previous_plan_as_start_keeps_the_plan_within_the_gap() -> None:
    wb = Wallbox(switch_phases=True)
    site = Site(pv=None, battery=Battery(capacity_kwh=10), wallboxes=(wb,))
    prices = 0.2 + 0.1 * np.sin(np.arange(49) / 4)
    session = EVSession(capacity_kwh=80, energy_kwh=10, target_kwh=40, departure=at(48, 30))
    full = inputs(prices, step_min=30, load=0.4)
    first = Problem(site, replace(full, **_cut(full, 0)), State(0.5, {}, (session,)))
    plan = optimize(first)
    assert set(plan.pattern) == {"ev-on_1p", "ev-on_3p"}
    later = Problem(site, replace(full, **_cut(full, 1)), State(0.5, {}, (session,)))
    cold, warm = optimize(later), optimize(later, previous=plan)
    assert warm.summary.status == cold.summary.status == "optimal"
    assert abs(warm.summary.objective_eur - cold.summary.objective_eur) <= 0.01 + max(
        cold.summary.objective_eur - cold.summary.bound_eur,
        warm.summary.objective_eur - warm.summary.bound_eur,
    )


def _cut(full, k):  # type: ignore[no-untyped-def]
    """Fields of ``full`` for the 48 slots from slot ``k``."""
    names = ("index", "import_eur_per_kwh", "export_eur_per_kwh", "pv_kw", "load_kw")
    return {name: getattr(full, name)[k : k + 48] for name in names}


def test_previous_cycles_basis_shifted_a_slot_starts_the_relaxation_near_its_optimum() -> None:
    # The cycle before solved the same LP one slot earlier: its basis, every per-slot block
    # moved by a slot, is accepted by HiGHS and leaves few simplex iterations of the ~100s a
    # cold start takes; the warm plan is the cold one within the gap.
    wb = Wallbox(switch_phases=True)
    site = Site(pv=None, battery=Battery(capacity_kwh=10), wallboxes=(wb,))
    prices = 0.2 + 0.1 * np.sin(np.arange(49) / 4)
    session = EVSession(capacity_kwh=80, energy_kwh=10, target_kwh=40, departure=at(48, 30))
    full = inputs(prices, step_min=30, load=0.4)
    plan = optimize(Problem(site, replace(full, **_cut(full, 0)), State(0.5, {}, (session,))))
    assert plan.basis is not None
    plan = pickle.loads(pickle.dumps(plan))  # plans cross process boundaries in the fleet
    later = Problem(site, replace(full, **_cut(full, 1)), State(0.5, {}, (session,)))
    canonical = formulate(later).problem
    basis = shifted_basis(HighsSolver(), plan, later, canonical)
    assert basis is not None
    iterations = []
    for start in (None, basis):
        session_ = HighsSession(canonical)
        relaxed = np.zeros(canonical.num_cols, dtype=bool)
        options = SolveOptions(basis=start)
        session_.solve(canonical.col_lower, canonical.col_upper, relaxed, options)
        assert session_._h is not None
        iterations.append(session_._h.getInfo().simplex_iteration_count)
    assert iterations[0] > 50 and iterations[1] < iterations[0] / 4
    cold, warm = optimize(later), optimize(later, previous=plan)
    assert warm.summary.status == cold.summary.status == "optimal"
    tolerance = 0.01 + max(
        cold.summary.objective_eur - cold.summary.bound_eur,
        warm.summary.objective_eur - warm.summary.bound_eur,
    )
    assert abs(warm.summary.objective_eur - cold.summary.objective_eur) <= tolerance


def test_relaxation_room_is_how_far_a_row_can_rise_at_its_dual() -> None:
    # Demand 1 kW from a cheap source (1 EUR/kW, at most 2.5 kW) and a dear one (3 EUR/kW):
    # the cheap one serves it, the balance's dual is 1 EUR/kW and holds for 1.5 kW more
    # demand (then the dear source takes over at 3 EUR/kW).
    m = ModelBuilder(1)
    cheap = m.var("cheap", 0.0, 2.5, 1.0)
    dear = m.var("dear", 0.0, 10.0, 3.0)
    m.rows("balance", [(cheap, diag(1)), (dear, diag(1))], 1.0, 1.0)
    problem = m.build()
    session = HighsSession(problem)
    assert session.relaxation_room(SolveOptions()) is None  # nothing solved yet
    relaxed = np.zeros(problem.num_cols, dtype=bool)
    lp = session.solve(problem.col_lower, problem.col_upper, relaxed, SolveOptions())
    assert lp.row_dual is not None and lp.row_dual[0] == pytest.approx(1.0)
    room = session.relaxation_room(SolveOptions())
    assert room is not None and room[0] == pytest.approx(1.5)
    # another solve in between (the cheap source fixed at 0) does not change the answer
    upper = problem.col_upper.copy()
    upper[0] = 0.0
    session.solve(problem.col_lower, upper, relaxed, SolveOptions())
    room = session.relaxation_room(SolveOptions())
    assert room is not None and room[0] == pytest.approx(1.5)


def test_an_lp_re_solve_stops_at_the_cutoff_only_when_it_cannot_beat_it() -> None:
    # 96 slots of 1 kW demand, a cheap source (1 EUR/kW, at most 2 kW) and a dear one
    # (3 EUR/kW): 96 EUR. With the cheap source off in slots 0-47 the optimum is
    # 48 x 3 + 48 x 1 = 192 EUR: a re-solve with a cutoff far below that stops without a
    # point (HiGHS checks the exact dual objective every few iterations), one with a cutoff
    # above it returns the optimum.
    n = 96
    m = ModelBuilder(n)
    cheap = m.var("cheap", 0.0, 2.0, 1.0)
    dear = m.var("dear", 0.0, 10.0, 3.0)
    m.rows("balance", [(cheap, diag(n)), (dear, diag(n))], 1.0, 1.0)
    problem = m.build()
    session = HighsSession(problem)
    relaxed = np.zeros(problem.num_cols, dtype=bool)
    lp = session.solve(problem.col_lower, problem.col_upper, relaxed, SolveOptions())
    assert lp.objective == pytest.approx(96.0)
    upper = problem.col_upper.copy()
    upper[:48] = 0.0
    with pytest.raises(SolverCutoffError):
        session.solve(problem.col_lower, upper, relaxed, SolveOptions(cutoff=100.0))
    again = session.solve(problem.col_lower, upper, relaxed, SolveOptions(cutoff=192.5))
    assert again.objective == pytest.approx(192.0)
    assert again.x[48:96] == pytest.approx(np.ones(48))  # the cheap source where it may
    # the cutoff holds for that call only: back to all sources, the optimum again
    back = session.solve(problem.col_lower, problem.col_upper, relaxed, SolveOptions())
    assert back.objective == pytest.approx(96.0)
