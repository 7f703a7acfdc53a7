"""The battery's end value as concave segments: hand-computed optima where the value of
tomorrow's first kWh differs from the next ones."""

from dataclasses import replace

import pytest

from optimizer import Battery, ConfigError, Problem, Site, State, Tuning, optimize
from tests.optimizer.helpers import assert_balance, inputs

NO_WEAR = Tuning(battery_wear_eur_per_kwh=0.0, mip_gap=0.0, mip_abs_gap_eur=0.0)
#: Tomorrow the first 3 kWh replace imports at 0.40; the rest only what PV would earn (0.10).
SEGMENTS = ((3.0, 0.40), (7.0, 0.10))


def _site() -> Site:
    lossless = Battery(capacity_kwh=10.0, charge_kw=5.0, discharge_kw=5.0, charge_efficiency=1.0,
                       discharge_efficiency=1.0, soc_min=0.0, soc_max=1.0)  # fmt: skip
    return Site(pv=None, battery=lossless)


def test_energy_beyond_tomorrows_need_serves_today() -> None:
    # 5 kWh stored, 2 kWh load at 0.30. The top 2 kWh are worth 0.10 tomorrow < 0.30 now:
    # serve the load from the battery, keep the 3 kWh worth 0.40.
    problem = Problem(_site(), inputs([0.30], load=[2.0]), State(0.5), NO_WEAR, SEGMENTS)
    plan = optimize(problem)
    assert plan.slots["battery_soc"].iloc[-1] == pytest.approx(0.3, abs=1e-6)
    assert plan.summary.cost_eur == pytest.approx(0.0, abs=1e-6)
    assert plan.summary.objective_eur == pytest.approx(-3 * 0.40, abs=1e-6)
    # the change of stored value: V(3 kWh) - V(5 kWh) = 1.20 - 1.40
    assert plan.summary.terminal_value_eur == pytest.approx(-0.20, abs=1e-6)
    assert plan.summary.penalty_eur == pytest.approx(0.0, abs=1e-6)
    assert_balance(plan.slots)


def test_tomorrows_first_kwh_is_bought_today() -> None:
    # 2 kWh stored, 2 kWh load at 0.30: the stored kWh are worth 0.40 tomorrow, so the load is
    # bought, and 1 kWh more is stored to fill the 0.40 segment; nothing beyond (worth 0.10).
    problem = Problem(_site(), inputs([0.30], load=[2.0]), State(0.2), NO_WEAR, SEGMENTS)
    plan = optimize(problem)
    assert plan.slots["battery_soc"].iloc[-1] == pytest.approx(0.3, abs=1e-6)
    assert plan.summary.cost_eur == pytest.approx(3 * 0.30, abs=1e-6)
    assert plan.summary.terminal_value_eur == pytest.approx(1 * 0.40, abs=1e-6)
    assert_balance(plan.slots)
    # one flat value, the top kWh's 0.10, would empty the battery, tomorrow's need included
    flat = replace(NO_WEAR, terminal_value_eur_per_kwh=0.10)
    plan = optimize(Problem(_site(), inputs([0.30], load=[2.0]), State(0.2), flat))
    assert plan.slots["battery_soc"].iloc[-1] == pytest.approx(0.0, abs=1e-6)


def test_rising_end_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="must not rise"):
        Problem(_site(), inputs([0.30]), State(0.5), NO_WEAR, ((3.0, 0.10), (7.0, 0.40)))
