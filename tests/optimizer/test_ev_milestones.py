"""Milestones: energy a car should have by earlier times, soft at the target penalty."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer import EVSession, Grid, Milestone, Problem, Site, State, Wallbox, optimize
from optimizer.config import ChargingMode, ConfigError
from tests.optimizer.helpers import at, inputs

WB = Wallbox(max_current_a=16, phases=3, efficiency=0.9)
PRICES = [0.4, 0.3, 0.1, 0.1]


def _plan(*milestones: tuple[pd.Timestamp, float]) -> pd.DataFrame:
    car = EVSession("ev", ChargingMode.SMART, capacity_kwh=60, energy_kwh=10, target_kwh=25,
                    departure=at(4), milestones=milestones)  # fmt: skip
    site = Site(Grid(30.0, 30.0), pv=None, battery=None, wallboxes=(WB,), heat_pumps=())
    plan = optimize(Problem(site, inputs(PRICES), State(0.5, {}, (car,))))
    cost = plan.summary.cost_eur
    return plan.slots.assign(cost=cost)


def test_without_milestones_the_car_charges_in_the_cheap_hours() -> None:
    # 15 kWh into the car = 16.667 kWh AC, all at 0.10: 1.6667 EUR
    slots = _plan()
    assert slots["cost"].iloc[0] == pytest.approx(15 / 0.9 * 0.1, abs=1e-4)
    assert slots["ev_kw"].iloc[:2].sum() == pytest.approx(0.0, abs=1e-6)


def test_a_milestone_buys_what_it_needs_by_then_and_the_rest_later() -> None:
    # 15 kWh by 01:00: 5 kWh in the car = 5.556 kWh AC in the 0.40 hour (2.2222 EUR); the
    # other 10 kWh = 11.111 kWh AC in the 0.10 hours (1.1111 EUR): 3.3333 EUR, not 0.30's hour
    slots = _plan((at(1), 15.0))
    assert slots["cost"].iloc[0] == pytest.approx(5 / 0.9 * 0.4 + 10 / 0.9 * 0.1, abs=1e-4)
    assert slots["ev_energy_kwh"].iloc[0] >= 15 - 1e-5
    assert slots["ev_kw"].iloc[1] == pytest.approx(0.0, abs=1e-6)
    assert slots["ev_energy_kwh"].iloc[3] >= 25 - 1e-5


def test_a_milestone_due_within_the_first_slot_is_charged_in_it() -> None:
    slots = _plan((at(0) + pd.Timedelta(minutes=30), 15.0))
    assert slots["ev_energy_kwh"].iloc[0] >= 15 - 1e-5
    assert slots["cost"].iloc[0] == pytest.approx(5 / 0.9 * 0.4 + 10 / 0.9 * 0.1, abs=1e-4)


def test_past_or_held_milestones_ask_nothing() -> None:
    slots = _plan((at(0) - pd.Timedelta(hours=1), 30.0), (at(2), 8.0))
    assert slots["cost"].iloc[0] == pytest.approx(15 / 0.9 * 0.1, abs=1e-4)


def test_a_milestone_above_capacity_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"EVSession\.milestones"):
        EVSession(capacity_kwh=40, energy_kwh=10, milestones=((at(1), 41.0),))


@pytest.mark.parametrize(("first_price", "charged"), [(0.14, True), (0.40, False)])
def test_a_cheap_milestone_is_met_only_where_it_costs_less_than_its_penalty(
    first_price: float, charged: bool
) -> None:
    # 4 kWh by 00:30 at 0.05 EUR/kWh short (0.20 EUR): 4.444 kWh AC in the first hour at 0.14
    # cost 0.178 EUR more than in the 0.10 hours, at 0.40 1.33 EUR more
    # (the car's 25 kWh are met either way)
    guard = Milestone(at(0) + pd.Timedelta(minutes=30), 14.0, 0.05)
    car = EVSession("ev", ChargingMode.SMART, capacity_kwh=60, energy_kwh=10, target_kwh=25,
                    departure=at(4), milestones=(guard,))  # fmt: skip
    site = Site(Grid(30.0, 30.0), pv=None, battery=None, wallboxes=(WB,), heat_pumps=())
    plan = optimize(Problem(site, inputs([first_price, 0.3, 0.1, 0.1]), State(0.5, {}, (car,))))
    assert bool(plan.slots["ev_energy_kwh"].iloc[0] >= 14 - 1e-5) is charged
    assert plan.slots["ev_energy_kwh"].iloc[3] >= 25 - 1e-5
