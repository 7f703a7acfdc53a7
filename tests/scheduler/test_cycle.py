"""The picklable compute step: a plan as setpoints, failures as results."""

import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from core.timeindex import utc_range
from optimizer import Battery, Inputs, Problem, Site, State
from scheduler.cycle import CycleRequest, plan_cycle


def request(site_id: str, load: float = 1.0) -> CycleRequest:
    idx = utc_range("2024-06-15", 8, 60)
    price = np.array([0.1, 0.1, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4])
    inputs = Inputs(idx, price, np.zeros(8), np.zeros(8), np.full(8, load))
    site = Site(pv=None, battery=Battery(capacity_kwh=10, soc_min=0.0))
    return CycleRequest(site_id, Problem(site, inputs, State(0.0)), schedule_slots=4)


def test_cycle_returns_current_setpoints_and_schedule() -> None:
    result = plan_cycle(request("a"))
    assert result.ok and result.summary is not None
    assert len(result.setpoints) == 4
    # cheap first two hours: the battery charges (negative = charge), later it discharges
    assert result.setpoints[0].battery_kw is not None and result.setpoints[0].battery_kw < 0
    assert result.setpoints[0].start == utc_range("2024-06-15", 1, 60)[0]


def test_a_failing_site_comes_back_as_a_result() -> None:
    bad = request("b")
    broken = CycleRequest("b", bad.problem, solver="no-such-solver")
    result = plan_cycle(broken)
    assert not result.ok
    assert "unknown solver" in result.error


def test_requests_and_results_cross_process_boundaries() -> None:
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(plan_cycle, [request("a"), request("b", load=2.0)]))
    assert [r.site_id for r in results] == ["a", "b"]
    assert all(r.ok for r in results)
    cost_a, cost_b = (r.summary.cost_eur for r in results if r.summary)
    assert cost_b > cost_a
    assert pickle.loads(pickle.dumps(results[0])).summary == results[0].summary


@pytest.mark.parametrize("slots", [1, 8])
def test_schedule_never_longer_than_the_plan(slots: int) -> None:
    req = request("a")
    result = plan_cycle(CycleRequest("a", req.problem, schedule_slots=slots * 10))
    assert len(result.setpoints) == 8
