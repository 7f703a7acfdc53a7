"""Feed-in cap, §14a dimming and the daylight-saving days."""

import numpy as np
import pytest

from core.timeindex import local_day
from optimizer import (
    Battery,
    EVSession,
    Grid,
    Inputs,
    Problem,
    Site,
    State,
    Wallbox,
    optimize,
)
from tests.optimizer.helpers import assert_balance, at, inputs


def test_feed_in_cap_limits_export_and_curtails_the_rest() -> None:
    # 10 kWp under a 60 % rule: export at most 6 kW; 9 kW PV - 1 kW load = 8 kW surplus.
    site = Site(battery=None, grid=Grid(feed_in_cap_kw=6.0))
    plan = optimize(Problem(site, inputs([0.3], export_price=0.08, pv=9.0, load=1.0)))
    assert plan.slots["grid_export_kw"].iloc[0] == pytest.approx(6.0, abs=1e-6)
    assert plan.slots["pv_curtailed_kw"].iloc[0] == pytest.approx(2.0, abs=1e-6)


def test_dimming_caps_controllable_devices_but_not_the_household() -> None:
    # Slot 0 dimmed to 4.2 kW for the one controllable device: the EV gets at most 4.2 kW
    # on top of the 1 kW household load; slot 1 is free.
    wb = Wallbox(max_current_a=16, phases=3, efficiency=1.0)
    session = EVSession(capacity_kwh=60, energy_kwh=0, target_kwh=30, departure=at(2))
    site = Site(pv=None, battery=None, wallboxes=(wb,))
    cap = np.array([0.0, np.nan])
    plan = optimize(
        Problem(
            site, inputs([0.1, 0.3], load=1.0, import_cap_kw=cap), State(ev_sessions=(session,))
        )
    )
    s = plan.slots
    assert s["grid_import_kw"].iloc[0] == pytest.approx(5.2, abs=1e-6)
    assert s["ev_kw"].iloc[0] == pytest.approx(4.2, abs=1e-6)
    assert s["ev_kw"].iloc[1] == pytest.approx(11.04, abs=1e-6)


@pytest.mark.parametrize(("day", "slots"), [("2024-03-31", 92), ("2024-10-27", 100)])
def test_daylight_saving_days(day: str, slots: int) -> None:
    index = local_day(day)
    n = len(index)
    hours = np.arange(n) / 4
    price = 0.25 + 0.1 * np.cos(2 * np.pi * hours / 24)
    pv = np.clip(5 * np.sin(np.pi * (hours - 6) / 12), 0, None)
    site = Site(battery=Battery())
    plan = optimize(Problem(site, Inputs(index, price, np.full(n, 0.08), pv, np.full(n, 0.5))))
    assert len(plan.slots) == slots
    assert plan.slots.index.equals(index)
    assert_balance(plan.slots)
    assert plan.summary.import_kwh - plan.summary.export_kwh == pytest.approx(
        (plan.slots["grid_kw"].sum()) / 4, abs=1e-6
    )
