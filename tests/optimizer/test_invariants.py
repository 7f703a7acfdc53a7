"""Physics every plan obeys, over random homes, prices and states (hypothesis)."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.timeindex import utc_range
from optimizer import (
    Battery,
    ChargingMode,
    EVSession,
    Grid,
    HeatPump,
    Inputs,
    Problem,
    Site,
    State,
    Wallbox,
    optimize,
)
from optimizer.devices.heatpump import cop
from tests.optimizer.helpers import assert_balance

TOL = 1e-6


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n = draw(st.integers(4, 24))
    step = draw(st.sampled_from([15, 30, 60]))
    index = utc_range("2024-06-15T06:00", n, step)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spot = rng.normal(0.08, 0.08, n)
    import_price = spot + 0.20
    export_price = np.where(rng.random() < 0.5, 0.08, spot)
    pv = np.clip(rng.normal(3, 3, n), 0, None) * draw(st.sampled_from([0.0, 1.0]))
    load = rng.uniform(0.1, 2.0, n)
    battery = Battery(
        capacity_kwh=draw(st.floats(2, 15)),
        charge_kw=draw(st.floats(1, 6)),
        discharge_kw=draw(st.floats(1, 6)),
        charge_efficiency=draw(st.floats(0.85, 1)),
        discharge_efficiency=draw(st.floats(0.85, 1)),
        soc_min=0.1,
        soc_max=0.95,
        reserve_soc=draw(st.sampled_from([0.0, 0.3])),
    )
    wallbox = Wallbox(switch_phases=draw(st.booleans()), efficiency=0.9)
    hp = HeatPump(min_kw=draw(st.sampled_from([0.0, 0.8])), capacity_kwh_per_k=5.0)
    mode = draw(st.sampled_from(list(ChargingMode)))
    session = EVSession(
        mode=mode,
        capacity_kwh=50,
        energy_kwh=draw(st.floats(5, 45)),
        target_kwh=draw(st.floats(20, 50)),
        departure=index[-1] + pd.Timedelta(minutes=step) * draw(st.integers(-2, 3)),
    )
    site = Site(
        grid=Grid(
            import_limit_kw=draw(st.floats(8, 30)),
            feed_in_cap_kw=draw(st.sampled_from([None, 4.0])),
        ),
        battery=battery,
        wallboxes=(wallbox,),
        heat_pumps=(hp,),
    )
    inputs = Inputs(
        index,
        import_price,
        export_price,
        pv,
        load,
        t_out_c=rng.uniform(-5, 15, n),
        spot_eur_per_kwh=spot,
    )
    state = State(draw(st.floats(0.0, 1.0)), {"hp": draw(st.floats(18, 24))}, (session,))
    return Problem(site, inputs, state)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_plan_obeys_physics(problem: Problem) -> None:
    plan = optimize(problem)
    s, site = plan.slots, problem.site
    dt = problem.inputs.dt_h
    assert_balance(s, TOL)
    assert (s["grid_import_kw"] <= site.grid.import_limit_kw + TOL).all()
    assert (s["grid_export_kw"] <= 4.0 + TOL).all() or site.grid.feed_in_cap_kw is None
    assert (s[["grid_import_kw", "grid_export_kw"]].min(axis=1) <= TOL).all()
    assert (s["pv_kw"] <= s["pv_forecast_kw"] + TOL).all()
    # battery: SOC window (or held where it started outside), never both flows, SOC dynamics
    b = site.battery
    assert b is not None
    soc0 = problem.state.battery_soc
    assert (s["battery_soc"] >= min(b.soc_min, soc0) - TOL).all()
    assert (s["battery_soc"] <= max(b.soc_max, soc0) + TOL).all()
    assert (s[["battery_charge_kw", "battery_discharge_kw"]].min(axis=1) <= TOL).all()
    energy = np.concatenate([[soc0], s["battery_soc"]]) * b.capacity_kwh
    flows = (
        s["battery_charge_kw"] * b.charge_efficiency
        - s["battery_discharge_kw"] / b.discharge_efficiency
    ) * dt
    assert np.allclose(np.diff(energy), flows, atol=1e-5)
    # EV: power 0 or within the range of the phases it uses
    wb = site.wallboxes[0]
    ev, phases = s["ev_kw"], s["ev_phases"]
    for k in (1, 3):
        low, high = wb.power_range_kw(k)
        on = phases == k
        assert ((ev[on] >= low - TOL) & (ev[on] <= high + TOL)).all()
    assert (ev[phases == 0] <= TOL).all()
    assert (s["ev_energy_kwh"] <= 50 + TOL).all()
    # heat pump: store temperature follows the thermal balance
    hp = site.heat_pumps[0]
    t_out = problem.inputs.t_out_c
    assert t_out is not None
    temp = np.concatenate([[problem.state.hp_temp_c["hp"]], s["hp_temp_c"]])
    heat = s["hp_kw"] * cop(hp, t_out)
    expected = (
        temp[:-1] + dt * (heat - hp.loss_kw_per_k * (temp[:-1] - t_out)) / hp.capacity_kwh_per_k
    )
    assert np.allclose(temp[1:], expected, atol=1e-5)
    running = s["hp_kw"] > TOL
    assert (s["hp_kw"][running] >= hp.min_kw - TOL).all()
