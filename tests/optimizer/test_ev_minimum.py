"""The owner's minimum at departure is a hard promise wherever the wallbox can deliver it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import EVSession, Grid, Problem, Site, State, Tuning, Wallbox, optimize
from optimizer.config import ChargingMode, ConfigError
from tests.optimizer.helpers import at, inputs

CHEAP_PROMISE = Tuning(ev_target_penalty_eur_per_kwh=0.01)  # soft alone would not charge


def _site(wb: Wallbox, import_limit_kw: float = 30.0) -> Site:
    return Site(Grid(import_limit_kw, 30.0), pv=None, battery=None, wallboxes=(wb,), heat_pumps=())


def test_minimum_at_the_hand_optimum() -> None:
    # 15 kWh into the car by 03:00 = 16.667 kWh AC: 11.04 kWh in the 0.10 hour, the other
    # 5.627 kWh in the 0.20 hour: 1.104 + 1.1253 = 2.2293 EUR
    wb = Wallbox(max_current_a=16, phases=3, efficiency=0.9)
    car = EVSession("ev", ChargingMode.SMART, capacity_kwh=60, energy_kwh=10, target_kwh=25,
                    min_kwh=25, departure=at(3))  # fmt: skip
    problem = Problem(_site(wb), inputs([0.1, 0.5, 0.2, 0.4]), State(0.5, {}, (car,)),
                      CHEAP_PROMISE)  # fmt: skip
    plan = optimize(problem)
    assert plan.summary.cost_eur == pytest.approx(11.04 * 0.1 + (15 / 0.9 - 11.04) * 0.2, abs=1e-4)
    expected = [11.04, 0, 15 / 0.9 - 11.04, 0]
    assert plan.slots["ev_kw"].to_numpy() == pytest.approx(expected, abs=1e-4)
    assert plan.slots["ev_energy_kwh"].iloc[2] >= 25 - 1e-5


def test_without_a_minimum_a_cheap_target_is_left_short() -> None:
    # the same case as a soft target only: 0.01 EUR/kWh does not pay for 0.1 EUR/kWh energy
    wb = Wallbox(max_current_a=16, phases=3, efficiency=0.9)
    car = EVSession("ev", ChargingMode.SMART, capacity_kwh=60, energy_kwh=10, target_kwh=25,
                    departure=at(3))  # fmt: skip
    plan = optimize(Problem(_site(wb), inputs([0.1, 0.5, 0.2, 0.4]), State(0.5, {}, (car,)),
                            CHEAP_PROMISE))  # fmt: skip
    assert plan.slots["ev_kw"].sum() == pytest.approx(0.0, abs=1e-6)


def test_unreachable_remainder_stays_soft_and_the_plan_exists() -> None:
    # 2 slots at 11.04 kW x 0.9 = 19.87 kWh reachable of the 40 asked: charge all of it
    wb = Wallbox(max_current_a=16, phases=3, efficiency=0.9)
    car = EVSession("ev", ChargingMode.SMART, capacity_kwh=60, energy_kwh=10, min_kwh=50,
                    target_kwh=50, departure=at(2))  # fmt: skip
    plan = optimize(Problem(_site(wb), inputs([0.3] * 4), State(0.5, {}, (car,)), CHEAP_PROMISE))
    assert plan.slots["ev_energy_kwh"].iloc[1] == pytest.approx(10 + 2 * 11.04 * 0.9, abs=1e-4)
    assert [v.name for v in plan.violations] == ["ev-target_energy"]


def test_minimum_above_capacity_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"EVSession\.min_kwh"):
        EVSession(capacity_kwh=40, energy_kwh=10, min_kwh=41)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {
            "departure": st.integers(1, 12),
            "amps": st.integers(6, 32),
            "phases": st.sampled_from([1, 3]),
            "energy": st.floats(0, 50),
            "need": st.floats(0, 60),
            "import_limit": st.floats(2.0, 30.0),
            "load": st.floats(0.0, 3.0),
            "prices": st.lists(st.floats(-0.1, 0.6), min_size=12, max_size=12),
        }
    )
)
def test_reachable_minimum_is_always_met(case: dict) -> None:
    """By hand: each slot before the departure can add at most the wallbox's maximum, less
    where the grid's headroom (limit - household) is smaller, nothing where the headroom is
    below the minimum power, so j slots deliver any amount between j minima and j such maxima;
    the car ends with at least the most of its minimum that such slots can deliver."""
    departure, phases, need, load = case["departure"], case["phases"], case["need"], case["load"]
    import_limit, prices = case["import_limit"], case["prices"]
    wb = Wallbox(max_current_a=case["amps"], phases=phases, efficiency=0.9)
    low, high = wb.power_range_kw(phases)
    headroom = import_limit - load
    per_slot = min(high, headroom) if headroom >= low else 0.0
    capacity = 60.0
    energy = min(case["energy"], capacity)
    car = EVSession("ev", ChargingMode.SMART, capacity_kwh=capacity, energy_kwh=energy,
                    min_kwh=need, target_kwh=need, departure=at(departure, 15))  # fmt: skip
    problem = Problem(_site(wb, import_limit), inputs(prices, load=load, step_min=15),
                      State(0.5, {}, (car,)), CHEAP_PROMISE)  # fmt: skip
    plan = optimize(problem)
    assert plan.summary.status in ("optimal", "time_limit")
    # j slots deliver any amount between j minimum and j per-slot powers (0.9 x 0.25 h)
    wanted = min(need, capacity) - energy
    deliverable = max(
        (min(wanted, j * per_slot * 0.225) for j in range(departure + 1)
         if per_slot > 0 and j * low * 0.225 <= wanted + 1e-9),
        default=0.0,
    )  # fmt: skip
    held = plan.slots["ev_energy_kwh"].to_numpy(float)[departure - 1]
    assert held >= energy + deliverable - 1e-4
    # the promise never takes power from the household (only a limit below the load does)
    unserved = plan.slots["grid_unserved_kw"].to_numpy(float)
    # (0.1 W: a plan within its gap once shed 0.01 W of a 0.01 W household, 2.5e-5 EUR)
    assert np.all(unserved <= max(load - import_limit, 0.0) + 1e-4)
    assert np.all(plan.slots["grid_kw"].to_numpy(float) <= import_limit + 1e-6)


@pytest.mark.parametrize(
    ("amps", "energy", "held"), [(6, 50.0, 50 + 10 * 0.9315), (16, 59.5, 59.5)]
)
def test_a_minimum_of_a_full_car_is_promised_in_whole_slots(
    amps: int, energy: float, held: float
) -> None:
    """By hand: 6 A on 3 phases is 4.14 kW and nothing else, 0.9315 kWh into the car a slot;
    10 kWh to a full 60 kWh car is 10.7 slots, and an 11th slot would overfill it, so 10 slots
    are the most the wallbox can deliver (the plan used to be infeasible: a solver error).
    A car 0.5 kWh from full takes nothing from a 16 A wallbox (at least 0.9315 kWh a slot)."""
    wb = Wallbox(max_current_a=amps, phases=3, efficiency=0.9)
    car = EVSession("ev", ChargingMode.SMART, capacity_kwh=60.0, energy_kwh=energy,
                    min_kwh=60.0, target_kwh=60.0, departure=at(11, 15))  # fmt: skip
    problem = Problem(_site(wb), inputs([0.3, -0.1] * 6, step_min=15), State(0.5, {}, (car,)),
                      CHEAP_PROMISE)  # fmt: skip
    plan = optimize(problem)
    energy_kwh = plan.slots["ev_energy_kwh"].to_numpy(float)
    assert energy_kwh[10] == pytest.approx(held, abs=1e-4)
    assert energy_kwh.max() <= 60.0 + 1e-6
