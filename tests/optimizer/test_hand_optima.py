"""Plans on 1-6-slot cases against optima computed by hand."""

import pickle

import numpy as np
import pytest

from optimizer import (
    Battery,
    ChargingMode,
    EVSession,
    FeedInRule,
    Grid,
    Plan,
    Problem,
    Site,
    State,
    Tuning,
    Wallbox,
    optimize,
)
from tests.optimizer.helpers import assert_balance, at, inputs

EXACT = Tuning(mip_gap=0.0, mip_abs_gap_eur=0.0)
NO_WEAR = Tuning(
    battery_wear_eur_per_kwh=0.0, terminal_value_eur_per_kwh=0.0, mip_gap=0.0, mip_abs_gap_eur=0.0
)


def battery(**kw: float) -> Battery:
    cfg = dict(
        capacity_kwh=10.0,
        charge_kw=5.0,
        discharge_kw=5.0,
        charge_efficiency=0.9,
        discharge_efficiency=0.9,
        soc_min=0.0,
        soc_max=1.0,
    )
    cfg.update(kw)
    return Battery(**cfg)  # type: ignore[arg-type]


def test_battery_shifts_cheap_energy_with_losses() -> None:
    # 2 kWh needed at 0.40 in hour 2; storing it costs 2 / 0.9 / 0.9 kWh at 0.10.
    site = Site(pv=None, battery=battery())
    plan = optimize(Problem(site, inputs([0.10, 0.40], load=[0.0, 2.0]), State(0.0), NO_WEAR))
    assert plan.summary.cost_eur == pytest.approx(2 / 0.81 * 0.10, abs=1e-6)
    assert plan.slots["battery_soc"].iloc[0] == pytest.approx(2 / 0.9 / 10, abs=1e-6)
    assert plan.summary.penalty_eur == pytest.approx(0.0, abs=1e-9)
    assert plan.summary.terminal_value_eur == pytest.approx(0.0, abs=1e-9)
    assert_balance(plan.slots)


def test_battery_not_used_when_spread_below_losses_and_wear() -> None:
    # 0.30 -> 0.35 does not cover a 0.81 round trip: buy when needed.
    site = Site(pv=None, battery=battery())
    plan = optimize(Problem(site, inputs([0.30, 0.35], load=[0.0, 2.0]), State(0.0), NO_WEAR))
    assert plan.summary.cost_eur == pytest.approx(0.70, abs=1e-6)
    assert plan.slots["battery_charge_kw"].sum() == pytest.approx(0.0, abs=1e-6)


def test_wear_cost_stops_marginal_arbitrage() -> None:
    # Spread 0.10 -> 0.40 earns 0.40 - 0.10/0.81 = 0.2765 per kWh out; wear 0.30 per kWh of
    # (in + out)/2 costs (1/0.81 + 1)/2 * 0.30 = 0.335 per kWh out: not worth it.
    tuning = Tuning(battery_wear_eur_per_kwh=0.30, terminal_value_eur_per_kwh=0.0)
    site = Site(pv=None, battery=battery())
    plan = optimize(Problem(site, inputs([0.10, 0.40], load=[0.0, 2.0]), State(0.0), tuning))
    assert plan.summary.cost_eur == pytest.approx(0.80, abs=1e-6)


def test_terminal_value_keeps_energy_in_the_battery() -> None:
    # 5 kWh stored; load 1 kWh at 0.20. A kWh out uses 1/0.9 kWh stored, worth 0.222 > 0.20:
    # keep it; a kWh bought stores 0.9 kWh worth 0.18 < 0.20: do not buy to store.
    tuning = Tuning(battery_wear_eur_per_kwh=0.0, terminal_value_eur_per_kwh=0.20)
    site = Site(pv=None, battery=battery())
    plan = optimize(Problem(site, inputs([0.20], load=[1.0]), State(0.5), tuning))
    assert plan.summary.cost_eur == pytest.approx(0.20, abs=1e-6)
    assert plan.slots["battery_soc"].iloc[-1] == pytest.approx(0.5, abs=1e-6)
    # the summary values the change of stored energy (none), the objective the level
    assert plan.summary.terminal_value_eur == pytest.approx(0.0, abs=1e-9)
    assert plan.summary.objective_eur == pytest.approx(0.20 - 5.0 * 0.20, abs=1e-6)


def test_pv_covers_load_and_surplus_is_exported() -> None:
    site = Site(battery=None)
    plan = optimize(Problem(site, inputs([0.30, 0.30], export_price=0.08, pv=[3.0, 0.5], load=1.0)))
    # hour 1: export 2 kWh at 0.08; hour 2: import 0.5 kWh at 0.30
    assert plan.summary.cost_eur == pytest.approx(-0.16 + 0.15, abs=1e-6)
    assert plan.summary.self_consumption == pytest.approx(1.5 / 3.5, abs=1e-6)


def test_negative_spot_with_feed_in_rule_curtails_instead_of_paying() -> None:
    # Spot-based export would pay -0.05 per kWh exported; PV is curtailed to the load.
    site = Site(battery=None, grid=Grid(feed_in_rule=FeedInRule.NO_PAYMENT_AT_NEGATIVE_SPOT))
    kw = dict(export_price=-0.05, pv=5.0, load=1.0, spot_eur_per_kwh=np.array([-0.05]))
    plan = optimize(Problem(site, inputs([0.25], **kw)))
    assert plan.summary.cost_eur == pytest.approx(0.0, abs=1e-6)
    assert plan.slots["pv_kw"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert plan.slots["pv_curtailed_kw"].iloc[0] == pytest.approx(4.0, abs=1e-6)


def test_feed_in_rule_removes_payment_at_negative_spot() -> None:
    # Fixed feed-in 0.08 would pay for 4 kWh; the rule makes it 0 while spot < 0.
    for rule, expected in [
        (FeedInRule.ALWAYS_PAID, -0.32),
        (FeedInRule.NO_PAYMENT_AT_NEGATIVE_SPOT, 0.0),
    ]:
        site = Site(battery=None, grid=Grid(feed_in_rule=rule))
        kw = dict(export_price=0.08, pv=5.0, load=1.0, spot_eur_per_kwh=np.array([-0.01]))
        plan = optimize(Problem(site, inputs([0.25], **kw)))
        assert plan.summary.cost_eur == pytest.approx(expected, abs=1e-6)


def test_negative_import_price_is_earned_and_battery_never_burns_energy() -> None:
    # A full battery could burn energy by charging and discharging at once; it must not.
    # The plan imports the load (1 kWh) at -0.10 and curtails PV: cost -0.10.
    site = Site(battery=battery())
    plan = optimize(Problem(site, inputs([-0.10], pv=2.0, load=1.0), State(1.0), NO_WEAR))
    s = plan.slots.iloc[0]
    assert min(s["battery_charge_kw"], s["battery_discharge_kw"]) == pytest.approx(0.0, abs=1e-9)
    assert plan.summary.cost_eur == pytest.approx(-0.10, abs=1e-6)
    assert plan.slots["pv_kw"].iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_negative_import_price_charges_an_empty_battery_at_full_power() -> None:
    site = Site(pv=None, battery=battery())
    plan = optimize(Problem(site, inputs([-0.10], load=1.0), State(0.0), NO_WEAR))
    assert plan.summary.cost_eur == pytest.approx(-0.60, abs=1e-6)  # (1 + 5) kWh x -0.10
    assert plan.slots["battery_soc"].iloc[0] == pytest.approx(0.45, abs=1e-6)


def test_smart_ev_charges_in_cheapest_hour() -> None:
    # 11 kWh into the car (efficiency 1) at 11 kW: one hour, the cheapest (0.10).
    wb = Wallbox(max_current_a=16, phases=3, efficiency=1.0, voltage_v=230)
    session = EVSession(
        mode=ChargingMode.SMART,
        capacity_kwh=60,
        energy_kwh=20,
        target_kwh=20 + 11.04,
        departure=at(4),
    )
    site = Site(pv=None, battery=None, wallboxes=(wb,))
    plan = optimize(
        Problem(site, inputs([0.40, 0.10, 0.20, 0.30]), State(ev_sessions=(session,)), EXACT)
    )
    assert plan.summary.cost_eur == pytest.approx(11.04 * 0.10, abs=1e-6)
    assert plan.slots["ev_kw"].tolist() == pytest.approx([0.0, 11.04, 0.0, 0.0], abs=1e-6)
    assert plan.summary.violations == ()


def test_ev_minimum_power_rounds_a_small_need_up_to_the_minimum() -> None:
    # 2 kWh needed, but a 3-phase wallbox cannot charge below 6 A x 3 x 230 V = 4.14 kW:
    # charging 4.14 kWh at 0.10 (0.414 EUR) beats 2 kWh x 2 EUR/kWh shortfall penalty.
    wb = Wallbox(max_current_a=16, phases=3, efficiency=1.0)
    session = EVSession(capacity_kwh=60, energy_kwh=30, target_kwh=32, departure=at(3))
    site = Site(pv=None, battery=None, wallboxes=(wb,))
    plan = optimize(Problem(site, inputs([0.30, 0.10, 0.20]), State(ev_sessions=(session,)), EXACT))
    assert plan.slots["ev_kw"].tolist() == pytest.approx([0.0, 4.14, 0.0], abs=1e-6)
    assert plan.summary.cost_eur == pytest.approx(0.414, abs=1e-6)


def test_phase_switching_charges_small_need_on_one_phase() -> None:
    # With 1p/3p switching, 2 kWh fit one slot at 2 kW on one phase (1.38..3.68 kW).
    wb = Wallbox(max_current_a=16, phases=3, switch_phases=True, efficiency=1.0)
    session = EVSession(capacity_kwh=60, energy_kwh=30, target_kwh=32, departure=at(3))
    site = Site(pv=None, battery=None, wallboxes=(wb,))
    plan = optimize(Problem(site, inputs([0.30, 0.10, 0.20]), State(ev_sessions=(session,)), EXACT))
    assert plan.summary.cost_eur == pytest.approx(0.20, abs=1e-6)
    assert plan.slots["ev_phases"].tolist() == [0, 1, 0]
    assert plan.setpoints(1).wallboxes["ev"].current_a == pytest.approx(2000 / 230, abs=1e-6)


def test_unreachable_ev_target_is_reported_not_infeasible() -> None:
    wb = Wallbox(max_current_a=16, phases=3, efficiency=1.0)
    session = EVSession(capacity_kwh=60, energy_kwh=0, target_kwh=50, departure=at(2))
    site = Site(pv=None, battery=None, wallboxes=(wb,))
    plan = optimize(Problem(site, inputs([0.3, 0.3]), State(ev_sessions=(session,))))
    (violation,) = plan.violations
    assert violation.name == "ev-target_energy"
    assert violation.amount == pytest.approx(50 - 2 * 11.04, abs=1e-6)


def test_unservable_load_is_reported_as_a_violation() -> None:
    site = Site(pv=None, battery=None, grid=Grid(import_limit_kw=3.0))
    plan = optimize(Problem(site, inputs([0.3], load=5.0)))
    assert plan.violations[0].name == "grid-unserved_load"
    assert plan.violations[0].amount == pytest.approx(2.0, abs=1e-6)


def _car_on_one_phase_in_the_cheap_slot() -> Plan:
    """2 kWh at the cheap one of three hourly slots, on one phase (2 kW); the car is off in
    the other two."""
    wb = Wallbox(max_current_a=16, phases=3, switch_phases=True, efficiency=1.0)
    session = EVSession(capacity_kwh=60, energy_kwh=30, target_kwh=32, departure=at(3))
    site = Site(pv=None, battery=battery(), wallboxes=(wb,))
    return optimize(
        Problem(site, inputs([0.30, 0.10, 0.20]), State(0.5, ev_sessions=(session,)), EXACT)
    )


def test_schedule_matches_per_slot_setpoints() -> None:
    plan = _car_on_one_phase_in_the_cheap_slot()
    schedule = plan.schedule()
    assert schedule == tuple(plan.setpoints(i) for i in range(3))
    assert schedule[1].wallboxes["ev"].phases == 1
    assert schedule[1].wallboxes["ev"].current_a == pytest.approx(2000 / 230, abs=1e-6)
    assert schedule[2].start == at(2) and schedule[2].end == at(3)
    assert [s.battery_kw for s in schedule] == pytest.approx(plan.slots["battery_kw"].tolist())
    with pytest.raises(IndexError):
        plan.setpoints(3)


def test_schedule_travels_as_arrays_and_reads_like_a_tuple() -> None:
    plan = _car_on_one_phase_in_the_cheap_slot()
    schedule = plan.schedule(2)
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule == (plan.setpoints(0), plan.setpoints(1))
    assert len(copy) == 2 and copy[-1] == copy[1] and copy[0:1] == (copy[0],)
    assert [s.start for s in copy] == [at(0), at(1)] and copy[1].end == at(2)
    off, charging = copy[0].wallboxes["ev"], copy[1].wallboxes["ev"]
    assert (off.power_kw, off.current_a, off.phases) == (0.0, None, 0)
    assert (charging.power_kw, charging.phases) == (pytest.approx(2.0), 1)
    assert copy != plan.schedule(3) and copy != (plan.setpoints(0), plan.setpoints(2))
    with pytest.raises(IndexError):
        copy[2]
