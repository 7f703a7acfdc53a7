"""Heat-pump runs with a minimum power and run time: the DP against the LP's marginal prices
(:mod:`optimizer.devices.runs`) and the plans it lets end in the rule stage."""

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from optimizer import EVSession, HeatPump, Problem, Tuning, Wallbox, optimize
from optimizer.devices.runs import StoreModel, best_runs, run_moves
from optimizer.formulate import formulate
from optimizer.lazy import solve_lazily
from optimizer.solvers.base import SolveOptions
from optimizer.solvers.highs import HighsSession
from scheduler.scenario import Home, scenario_problem
from tests.optimizer.helpers import RecordingHighs, assert_balance, assert_min_runs


def _store(n: int = 8, **changes: object) -> StoreModel:
    """``n`` slots; a 1-3 kW heat pump adds 0.075 K per kW and slot (e.g. 15 min, COP 3,
    10 kWh/K); no losses; runs of at least 4 slots."""
    base = StoreModel(
        a=1.0,
        b=np.full(n, 0.075),
        c=np.zeros(n),
        t0_c=21.0,
        band_c=(20.0, 23.0),
        penalty_eur_per_k=(5.0, 0.5),
        temp_cost_eur_per_k=np.zeros(n),
        power_kw=(1.0, 3.0),
        min_run_slots=4,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _pattern_cost(
    store: StoreModel,
    price: np.ndarray,
    on: np.ndarray,
    surcharge: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Cheapest cost of ``store`` with the on/off pattern ``on`` fixed: an LP over power,
    temperature, comfort slacks and power above the surcharge's knee (scipy's HiGHS),
    independent of the DP [EUR]."""
    n = len(price)
    eye, lag = sp.identity(n), sp.eye(n, k=-1)
    zero = sp.csr_array((n, n))
    low, high = store.penalty_eur_per_k
    knee, extra = surcharge if surcharge is not None else (np.full(n, 1e3), np.zeros(n))
    cost = np.concatenate(
        (price, store.temp_cost_eur_per_k, np.full(n, low), np.full(n, high), extra)
    )
    # T_t - a T_{t-1} - b_t P_t = c_t  (+ a T0 in the first slot)
    a_eq = sp.hstack((-sp.diags(store.b), eye - store.a * lag, zero, zero, zero))
    b_eq = store.c.copy()
    b_eq[0] += store.a * store.t0_c
    a_ub = sp.vstack(
        (
            sp.hstack((zero, -eye, -eye, zero, zero)),
            sp.hstack((zero, eye, zero, -eye, zero)),
            sp.hstack((eye, zero, zero, zero, -eye)),  # P_t - over_t <= knee_t
        )
    )
    b_ub = np.concatenate((np.full(n, -store.band_c[0]), np.full(n, store.band_c[1]), knee))
    lo_kw, hi_kw = store.power_kw
    bounds = [(lo_kw * o, hi_kw * o) for o in on] + [(None, None)] * n + [(0, None)] * (3 * n)
    result = linprog(cost, a_ub, b_ub, a_eq, b_eq, bounds, method="highs")
    assert result.status == 0
    return float(result.fun)


def _best_by_enumeration(
    store: StoreModel,
    price: np.ndarray,
    surcharge: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """The optimum over every on/off pattern whose runs last >= the minimum (or reach the
    horizon's end) [EUR]."""
    n, k = len(price), store.min_run_slots
    best = np.inf
    for on in itertools.product((0, 1), repeat=n):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], on, [0]))))
        if ((edges[1::2] - edges[::2] >= k) | (edges[1::2] == n)).all():
            best = min(best, _pattern_cost(store, price, np.array(on), surcharge))
    return best


def test_runs_wait_for_the_cheap_slots_but_not_below_the_band() -> None:
    # The store loses 0.05 K a slot from 20.3 degC: off, it ends slots 6-9 below the band
    # (0.5 K-slots at 5 EUR). One run of 4 slots at the 1 kW minimum in the cheap slots
    # 4-7 costs 4 x 0.1 = 0.4 EUR and keeps it >= 20.1 degC (-0.05 + 0.075 K per slot);
    # any other start takes a dear slot (0.4 EUR).
    store = _store(10, c=np.full(10, -0.05), t0_c=20.3)
    price = np.array([0.4] * 4 + [0.1] * 4 + [0.4] * 2)
    on = best_runs(store, price)
    assert on.astype(int).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert _pattern_cost(store, price, on) == pytest.approx(0.4, abs=1e-9)
    assert _pattern_cost(store, price, on) == pytest.approx(_best_by_enumeration(store, price))


def test_a_surcharge_above_the_knee_moves_the_run_out_of_the_cheap_slots() -> None:
    # The day above, but in the cheap slots 4-7 only 0.5 kW comes at 0.1 EUR/kW (say PV
    # that would be exported), the rest costs 1.0 EUR/kW more. A 1 kW run there now costs
    # 4 x (0.1 + 0.5 x 1.0) = 2.4 EUR, one in slots 2-5 2 x 0.4 + 2 x 0.6 = 2.0 EUR; the
    # dear slots 0-3 cost 4 x 0.4 = 1.6 EUR and keep the store >= 20.1 degC (no run at all:
    # 0.5 K-slots below the band, 2.5 EUR).
    store = _store(10, c=np.full(10, -0.05), t0_c=20.3)
    price = np.array([0.4] * 4 + [0.1] * 4 + [0.4] * 2)
    knee = np.full(10, 10.0)
    knee[4:8] = 0.5
    on = best_runs(store, price, (knee, np.full(10, 1.0)))
    assert on.astype(int).tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    # a knee above the run's power changes nothing
    assert best_runs(store, price, (np.full(10, 1.0), np.full(10, 1.0))).tolist() == (
        best_runs(store, price).tolist()
    )


def test_runs_at_a_surcharge_above_a_knee_inside_the_power_range_are_the_cheapest() -> None:
    # A cold store (it loses 0.12 K a slot from 20.5 degC) needs more than the 1 kW minimum
    # over the cheap slots 2-5, but power above a knee of 1.2 kW costs 0.5 EUR/kW more
    # there (0.05 elsewhere). At the plain prices one run in slots 2-5 is best; with the
    # surcharge, a run one slot longer (from slot 1, or a run cut by the horizon in slot 7,
    # as cheap) spreads the heat below the knee: 0.887 against 0.980 EUR, the best of all
    # 2^8 patterns (each an LP).
    store = _store(c=np.full(8, -0.12), t0_c=20.5)
    price = np.array([0.3, 0.3, 0.1, 0.1, 0.1, 0.1, 0.3, 0.3])
    surcharge = (np.full(8, 1.2), np.array([0.05] * 2 + [0.5] * 4 + [0.05] * 2))
    plain = best_runs(store, price)
    assert plain.astype(int).tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    on = best_runs(store, price, surcharge)
    assert on.sum() == 5
    best = _best_by_enumeration(store, price, surcharge)
    assert best == pytest.approx(0.8867, abs=1e-4)
    assert _pattern_cost(store, price, on, surcharge) == pytest.approx(best, abs=1e-6)
    assert _pattern_cost(store, price, plain, surcharge) > best + 0.05


def test_no_run_when_its_heat_does_not_fit_in_the_store() -> None:
    # 22.9 degC, band top 23, the last two slots dear: the relaxation heats 0.1 K in a cheap
    # slot (0.133 EUR of power for 0.15 EUR of end value at 1.5 EUR/K), but the smallest run
    # adds 0.3 K. Best run (slots 2-5): 0.4 EUR + 0.975 K-slots over the band at 0.5 EUR
    # - 0.45 EUR of end value = +0.44 EUR; a run cut by the horizon (slot 7) costs 0.5 EUR
    # for 0.11 EUR. So it stays off.
    end_value = np.zeros(8)
    end_value[-1] = -1.5
    store = _store(t0_c=22.9, temp_cost_eur_per_k=end_value)
    price = np.array([0.1] * 6 + [0.5] * 2)
    assert not best_runs(store, price).any()
    assert _pattern_cost(store, price, np.zeros(8)) == pytest.approx(-1.5 * 22.9)
    # at 3 EUR/K a run pays; the DP finds the best pattern of all (checked by enumeration,
    # up to its 0.02 K grid)
    end_value[-1] = -3.0
    store = replace(store, temp_cost_eur_per_k=end_value)
    on = best_runs(store, price)
    assert on.any()
    assert _pattern_cost(store, price, on) <= _best_by_enumeration(store, price) + 3.0 * 0.02


def _pattern(text: str) -> np.ndarray:
    return np.array([c == "#" for c in text])


def _text(on: np.ndarray) -> str:
    return "".join("#" if v else "." for v in on)


def test_run_moves_shift_stretch_shorten_drop_and_merge_runs_keeping_the_minimum() -> None:
    on = _pattern("..####..#####....##")
    moves = {_text(m) for m in run_moves(on, 4)}
    assert moves == {
        ".#####..#####....##",  # first run extended left
        "..#####.#####....##",  # ... right
        ".####...#####....##",  # shifted left
        "...####.#####....##",  # shifted right (the first run cannot get shorter)
        "........#####....##",  # dropped
        "..####.######....##",  # second run extended left
        "..####..######...##",
        "..####...####....##",  # shortened from the left
        "..####..####.....##",  # ... from the right
        "..####.#####.....##",
        "..####...#####...##",
        "..####...........##",  # dropped
        "..####..#####...###",  # the run cut by the horizon's end
        "..####..#####.....#",
        "..####..#####......",
        "..###########....##",  # the first two merged (2 slots between them < 4)
    }
    for move in run_moves(on, 4):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], move.astype(int), [0]))))
        lengths = edges[1::2] - edges[::2]
        assert ((lengths >= 4) | (edges[1::2] == len(on))).all()
    # a run starting in the first slot cannot move left; nothing at all: no moves
    assert "#####..." in {_text(m) for m in run_moves(_pattern("####...."), 4)}
    assert run_moves(np.zeros(8, dtype=bool), 4) == []


def _min_run_day(
    day: str, tuning: Tuning | None = None, periods: int = 96, target_kwh: float = 50.0
) -> Problem:
    """A real day of the typical home with a 1-3 kW heat pump that runs >= 1 h and a car
    at 10 kWh that needs ``target_kwh`` by the horizon's end (as in
    benchmarks/hard_cases.py)."""
    start = pd.Timestamp(day, tz="Europe/Berlin").tz_convert("UTC")
    problem = scenario_problem(Home(), start, periods)[0]
    index = problem.inputs.index
    session = EVSession(
        capacity_kwh=80.0,
        energy_kwh=10.0,
        target_kwh=target_kwh,
        departure=index[-1] + (index[1] - index[0]),
    )
    site = replace(
        problem.site,
        wallboxes=(Wallbox(switch_phases=True, max_current_a=16.0),),
        heat_pumps=(HeatPump(min_kw=1.0, min_run_slots=4),),
    )
    state = replace(problem.state, ev_sessions=(session,))
    return replace(problem, site=site, state=state, tuning=tuning or problem.tuning)


def test_min_run_day_ends_in_the_rule_stage_within_the_gap_of_the_optimum() -> None:
    # A day whose rounded runs were 1.6 gaps above the LP bound, so HiGHS's branch and
    # bound ran (~0.1-0.3 s): the DP's runs are within the gap.
    problem = _min_run_day("2025-09-28")
    plan = optimize(problem)
    s = plan.summary
    assert (s.status, s.stage) == ("optimal", "fixed")
    # HiGHS's branch and bound to 0.05 %: its dual bound is below the optimum
    tight = Tuning(mip_gap=0.0005, mip_abs_gap_eur=0.001)
    exact = optimize(replace(problem, tuning=tight)).summary
    assert exact.stage == "mip"
    # the plan's bound is proven (no plan beats it), the plan no better than HiGHS's bound
    assert s.bound_eur <= exact.objective_eur + 1e-6
    assert exact.bound_eur <= s.objective_eur + 1e-6
    assert s.mip_gap <= 0.005 + 1e-9 or s.objective_eur - s.bound_eur <= 0.01 + 1e-9
    slots = plan.slots
    assert_balance(slots)
    assert_min_runs(slots["hp_kw"].to_numpy(), 4, min_kw=1.0)
    temp = slots["hp_temp_c"].to_numpy()
    # the band is soft: the plan may dip a few hundredths of a kelvin where that is cheaper
    assert temp.min() >= 20.0 - 0.05 and temp.max() <= 23.0 + 1e-4


def test_runs_moved_by_the_local_search_end_a_two_day_plan_without_branch_and_bound() -> None:
    # 48 h from 2024-04-20 (the hard suite's day 5): the DP's runs at the relaxation's
    # marginal prices leave the LP 0.87 tolerances above its bound and every rounding of the
    # car beyond the gap (HiGHS's MIP took 0.8 s). The optimum's runs are the DP's shifted and
    # stretched by a slot; the local search finds such runs and the car is rounded in its
    # cheapest slots: within the gap of the LP bound, no branch and bound.
    problem = _min_run_day("2024-04-20", periods=192)
    plan = optimize(problem)
    s = plan.summary
    assert (s.status, s.stage) == ("optimal", "fixed")
    assert s.mip_gap <= 0.005 + 1e-9 or s.objective_eur - s.bound_eur <= 0.01 + 1e-9
    slots = plan.slots
    assert_balance(slots)
    assert_min_runs(slots["hp_kw"].to_numpy(), 4)


def test_the_car_rounded_around_an_improvement_of_the_runs_ends_the_plan() -> None:
    # 48 h from 2025-09-06 (the hard suite's day 28, the car needing 30 kWh): the DP's runs
    # leave the LP 1.67 tolerances above its bound, the ranging DP's 0.94, and the car
    # rounded around those runs is beyond the gap (HiGHS's MIP took ~0.35 s). A few moves
    # of the runs later the LP is 0.83 tolerances above the bound, and one of the rules
    # rounds the car around that point within the gap: no branch and bound.
    problem = _min_run_day("2025-09-06", periods=192, target_kwh=40.0)
    plan = optimize(problem)
    s = plan.summary
    assert (s.status, s.stage) == ("optimal", "fixed")
    # proven by the LP bound: within 0.5 % of the gross value (or 1 cent) of any plan
    assert s.bound_eur <= s.objective_eur
    assert s.mip_gap <= 0.005 + 1e-9 or s.objective_eur - s.bound_eur <= 0.01 + 1e-9
    slots = plan.slots
    assert_balance(slots)
    assert_min_runs(slots["hp_kw"].to_numpy(), 4, min_kw=1.0)
    ev = slots["ev_kw"].to_numpy()
    assert ((ev < 1e-6) | (ev >= 1.38 - 1e-6)).all()  # off or at least 6 A on one phase


def test_the_car_trickle_away_from_its_blocks_moves_next_to_them_before_rounding() -> None:
    # 48 h from 2025-04-16 (day 66 of 90 spread over the bundled prices), the car needing
    # 50 kWh. Around the DP's runs the relaxation spreads the car's PV trickle over slots
    # below its 1.38 kW minimum, far from the blocks it charges at or above it; the repair
    # rules switched those on and rounded beyond the gap, so HiGHS's branch and bound ran
    # (~230 ms, a worse point). Switched off, the LP moves that energy next to the blocks at
    # no cost, the rules round within the gap, and the plan is cheaper.
    problem = _min_run_day("2025-04-16", periods=192, target_kwh=60.0)
    formulation = formulate(problem)
    canonical = formulation.problem
    session = HighsSession(canonical)
    relaxed = np.zeros(canonical.num_cols, dtype=bool)
    options = SolveOptions(mip_gap=0.005, mip_abs_gap=0.01)
    relaxation = session.solve(canonical.col_lower, canonical.col_upper, relaxed, options)
    assert relaxation.row_dual is not None
    point = relaxation.x.copy()
    owned = formulation.search(point, relaxation.row_dual)
    lower, upper = canonical.col_lower.copy(), canonical.col_upper.copy()
    lower[owned] = upper[owned] = np.round(point[owned])
    around = session.solve(lower, upper, relaxed, options)
    power = canonical.variable("ev-power").slice
    before = around.x[power]
    off = formulation.consolidate(around.x)
    slots = np.flatnonzero(off[power])
    assert len(slots) >= 3  # scattered trickle below the minimum, away from any block
    on = before >= 1.38 - 1e-6
    assert ((before[slots] > 1e-7) & (before[slots] < 1.38)).all()
    assert not on[np.clip(slots - 1, 0, None)].any() and not on[np.clip(slots + 1, None, 191)].any()
    upper[off] = lower[off]
    moved = session.solve(lower, upper, relaxed, options)
    after = moved.x[power]
    assert np.abs(after[slots]).max() <= 1e-7
    # the same energy, at (nearly) no cost: the LP puts it where the rules keep it
    assert abs(after.sum() - before.sum()) <= 1e-6 * max(before.sum(), 1.0) + 1e-6
    assert moved.objective <= around.objective + 0.002
    plan = optimize(problem)
    s = plan.summary
    assert (s.status, s.stage) == ("optimal", "fixed")
    assert s.bound_eur <= s.objective_eur
    assert s.mip_gap <= 0.005 + 1e-9 or s.objective_eur - s.bound_eur <= 0.01 + 1e-9
    assert_balance(plan.slots)
    ev = plan.slots["ev_kw"].to_numpy()
    assert ((ev < 1e-6) | (ev >= 1.38 - 1e-6)).all()
    assert_min_runs(plan.slots["hp_kw"].to_numpy(), 4)


def test_solve_time_counts_every_lp_of_the_heat_pump_searches() -> None:
    # The 48 h day above reaches the DPs and the local search: dozens of LP re-solves besides
    # the relaxation and the fixed patterns. The reported time is the whole solve's.
    formulation = formulate(_min_run_day("2024-04-20", periods=192))
    backend = RecordingHighs()
    result, _ = solve_lazily(
        backend,
        formulation.problem,
        SolveOptions(mip_gap=0.005, mip_abs_gap=0.01),
        formulation.round,
        search=formulation.search,
        neighbours=formulation.neighbours,
    )
    assert len(backend.solve_ms) > 4  # the searches ran
    assert result.solve_ms >= sum(backend.solve_ms)


def test_moves_of_a_car_and_a_heat_pump_change_one_slot_or_one_run() -> None:
    formulation = formulate(_min_run_day("2024-04-20"))
    canonical = formulation.problem
    on_1p, on_3p = (canonical.variable(f"ev-on_{k}p").slice for k in (1, 3))
    hp_on = canonical.variable("hp-on").slice
    x = np.zeros(canonical.num_cols)
    # all off: each move switches one slot of the car on at 1 phase (the lower minimum)
    free = canonical.integrality
    moves = formulation.neighbours(x, free)
    assert len(moves) == 96
    for cols, values in moves:
        assert len(cols) == 2 and values.sum() == 1.0
        assert cols[values == 1.0][0] - on_1p.start in range(96)
    # the car on at 3 phases in slot 10, one heat-pump run in slots 20-23
    x[on_3p.start + 10] = 1.0
    x[hp_on.start + 20 : hp_on.start + 24] = 1.0
    moves = formulation.neighbours(x, free)
    car = [(c, v) for c, v in moves if c[0] >= on_1p.start]
    # slot 10: off or 1 phase; every other slot: on at 1 phase
    assert len(car) == 95 + 2
    hp = [(c, v) for c, v in moves if c[0] < on_1p.start]
    assert {(hp_on.start + 19, 1.0), (hp_on.start + 24, 1.0)} <= {
        (int(c[0]), float(v[0])) for c, v in hp if len(c) == 1
    }
    assert all(hp_on.start <= c.min() and c.max() < hp_on.stop for c, _ in hp)
    # with only the heat pump's columns free, only its moves
    only_hp = np.zeros(canonical.num_cols, dtype=bool)
    only_hp[hp_on] = True
    assert len(formulation.neighbours(x, only_hp)) == len(hp)
