"""HiGHS and PuLP (CBC) solve the same canonical problem to the same optimum."""

from pathlib import Path

import numpy as np
import pytest

from core.timeindex import utc_range
from optimizer import (
    Battery,
    EVSession,
    HeatPump,
    Inputs,
    Problem,
    Site,
    State,
    Wallbox,
    formulate,
    optimize,
    write_model,
)


def lp_problem() -> Problem:
    n = 24
    rng = np.random.default_rng(7)
    index = utc_range("2024-06-15", n, 60)
    price = 0.2 + 0.1 * rng.random(n)
    pv = np.clip(6 * np.sin(np.pi * (np.arange(n) - 6) / 12), 0, None)
    site = Site(battery=Battery(), heat_pumps=(HeatPump(),))
    inputs = Inputs(
        index, price, np.full(n, 0.07), pv, rng.uniform(0.2, 1.5, n), t_out_c=np.full(n, 5.0)
    )
    return Problem(site, inputs, State(0.4))


def test_backends_agree_on_lp_cases() -> None:
    problem = lp_problem()
    assert formulate(problem).problem.num_integers == 0
    highs = optimize(problem, "highs").summary.objective_eur
    cbc = optimize(problem, "pulp").summary.objective_eur
    assert cbc == pytest.approx(highs, rel=1e-6)


def test_backends_agree_on_a_mip_case() -> None:
    base = lp_problem()
    site = Site(battery=Battery(), wallboxes=(Wallbox(switch_phases=True),))
    session = EVSession(energy_kwh=10, target_kwh=25, departure=base.inputs.index[-1])
    problem = Problem(site, base.inputs, State(0.4, ev_sessions=(session,)))
    highs = optimize(problem, "highs").summary.objective_eur
    cbc = optimize(problem, "pulp").summary.objective_eur
    assert cbc == pytest.approx(highs, abs=0.02)  # both within the default 1-cent gap


@pytest.mark.parametrize("suffix", [".lp", ".mps"])
def test_model_can_be_written(tmp_path: Path, suffix: str) -> None:
    path = write_model(formulate(lp_problem()).problem, tmp_path / f"model{suffix}")
    text = path.read_text()
    assert "battery_energy_balance" in text


def test_unknown_solver_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown solver"):
        optimize(lp_problem(), "gurobi-on-the-moon")


def test_time_limit_without_a_solution_raises_instead_of_a_zero_plan() -> None:
    """HiGHS stopped before any feasible point returns all-zero values: a plan that serves no
    load and empties the battery at once. That must be an error, never a schedule."""
    from optimizer import SolverTimeLimitError, Tuning
    from optimizer.formulate import formulate
    from optimizer.solvers.base import SolveOptions
    from optimizer.solvers.highs import HighsSolver
    from scheduler.scenario import Home, scenario_problem

    problem, _ = scenario_problem(Home(), "2024-06-12T22:00Z", 96, tuning=Tuning())
    canonical = formulate(problem).problem
    # the backend itself, stopped before it could find any point, must raise
    with pytest.raises(SolverTimeLimitError, match="before any feasible solution"):
        HighsSolver().solve(canonical, SolveOptions(time_limit_s=1e-9))
    # optimize() gives every call at least optimizer.lazy.MIN_CALL_S, so a plan-wide limit far
    # below that still ends in a plan that serves the load, never in zeros
    tight = scenario_problem(Home(), "2024-06-12T22:00Z", 96, tuning=Tuning(time_limit_s=1e-9))[0]
    plan = optimize(tight)
    assert plan.summary.cost_eur > 0 and plan.summary.import_kwh > 0
