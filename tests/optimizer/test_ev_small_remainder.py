"""A car that lacks less than one slot at the wallbox's minimum power still gets its target."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.timeindex import utc_range
from optimizer import EVSession, Inputs, Problem, Site, State, Wallbox, optimize
from optimizer.config import ChargingMode

WALLBOX = Wallbox(max_current_a=16, phases=3, efficiency=0.9)
SITE = Site(pv=None, battery=None, wallboxes=(WALLBOX,), heat_pumps=())


def test_remainder_below_the_minimum_slot_is_charged() -> None:
    # 0.124 kWh missing, one plugged slot at the highest price: the minimum (4.14 kW for a
    # quarter-hour, 0.32 EUR) costs more than 0.124 kWh x the penalty per kWh (0.25 EUR)
    index = utc_range("2024-06-12T00:45Z", 48, 15)
    prices = np.repeat(np.resize([0.31, 0.22, 0.25], 13), 4)[:48]
    session = EVSession(
        mode=ChargingMode.SMART,
        capacity_kwh=60.0,
        energy_kwh=5.0,
        target_kwh=5.124,
        departure=pd.Timestamp("2024-06-12T01:00Z"),
    )
    n = len(index)
    inputs = Inputs(index, prices, np.full(n, 0.08), np.zeros(n), np.full(n, 0.3))
    plan = optimize(Problem(SITE, inputs, State(0.5, {}, (session,))))
    assert plan.slots["ev_kw"].iloc[0] >= 4.14 - 1e-6
    assert plan.violations == ()
