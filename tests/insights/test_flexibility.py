"""Battery flexibility per slot against hand-computed values."""

from __future__ import annotations

import pandas as pd
import pytest

from insights.flexibility import battery_flexibility
from optimizer import Battery

INDEX = pd.date_range("2024-06-12T08:00Z", periods=4, freq="15min")


def test_lossless_battery_by_hand() -> None:
    battery = Battery(10.0, 5.0, 5.0, 1.0, 1.0, soc_min=0.1, soc_max=0.9)
    slots = pd.DataFrame(
        {
            "battery_charge_kw": [2.0, 0.0, 0.0, 0.0],
            "battery_discharge_kw": [0.0, 4.0, 0.0, 5.0],
            "battery_soc": [0.55, 0.45, 0.45, 0.1],
        },
        index=INDEX,
    )
    flex = battery_flexibility(slots, battery)
    # slot 0: E = 5.5 - 2 * 0.25 = 5.0; up = 5 + 2 (stop charging); down = 5 - 2
    # slot 3: E = 1.0 + 5 * 0.25 = 2.25; (2.25 - 1) / 0.25 = 5 kW: exactly the planned 5 kW
    assert flex["energy_kwh"].tolist() == pytest.approx([5.0, 5.5, 4.5, 2.25])
    assert flex["up_kw"].tolist() == pytest.approx([7.0, 1.0, 5.0, 0.0])
    assert flex["down_kw"].tolist() == pytest.approx([3.0, 9.0, 5.0, 10.0])


def test_losses_and_energy_limits_from_net_power() -> None:
    battery = Battery(5.0, 3.0, 2.5, 0.9, 0.9, soc_min=0.0, soc_max=1.0)
    slots = pd.DataFrame({"battery_kw": [0.0, -1.0], "battery_soc": [0.98, 1.0]}, index=INDEX[:2])
    flex = battery_flexibility(slots, battery)
    # slot 0: room 0.1 kWh takes 0.1 / (0.9 * 0.25) = 0.444 kW of AC input
    # slot 1: E = 5 - 0.9 * 1 * 0.25 = 4.775; room 0.225 kWh = 1.0 kW, all of it planned
    assert flex["energy_kwh"].tolist() == pytest.approx([4.9, 4.775])
    assert flex["down_kw"].tolist() == pytest.approx([0.1 / 0.225, 0.0])
    assert flex["up_kw"].tolist() == pytest.approx([2.5, 3.5])


def test_plan_without_soc_is_refused() -> None:
    with pytest.raises(ValueError, match="battery_soc"):
        battery_flexibility(pd.DataFrame({"battery_kw": [0.0]}, index=INDEX[:1]), Battery())
