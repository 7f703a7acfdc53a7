"""The fair score on hand-computed cases: stored energy worth what it saves the next day,
a car left short priced at the replacement price, energy cost by slot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer import PV, Battery, Grid, Site, Tuning
from optimizer.forecast import PvSystem
from scheduler.backtest_inputs import BacktestInputs
from scheduler.fair_score import Scorer, Trace
from scheduler.scenario import Home
from tests.scheduler.test_backtest_inputs import TARIFF

START = pd.Timestamp("2019-11-04 00:00", tz="UTC")
IMPORT, LOAD = 0.30, 1.0  # EUR/kWh flat, kW flat


def battery_home(tmp_path: Path) -> BacktestInputs:
    """No PV (night-dark weather), a flat 1 kW load, flat prices, a 10 kWh battery."""
    q = pd.date_range(START, periods=3 * 96, freq="15min")
    tariff = tmp_path / "tariff.toml"
    tariff.write_text(TARIFF)
    site = Site(grid=Grid(), pv=PV(), battery=Battery(capacity_kwh=10.0, charge_kw=5.0,
                discharge_kw=5.0, charge_efficiency=0.95, discharge_efficiency=0.95,
                soc_min=0.05))  # fmt: skip
    home = Home(site=site, pv_system=PvSystem(peak_kw=1.0), tariff_path=tariff)
    zero = np.zeros(len(q))
    weather = {"temp_air_c": 5.0, "ghi_wm2": zero, "dhi_wm2": zero, "wind_speed_ms": 2.0}
    sessions = pd.DataFrame(
        {
            "plugin_utc": [START + pd.Timedelta(hours=18)],
            "plugout_utc": [START + pd.Timedelta(hours=20)],
            "energy_kwh": [12.0],
        }
    )
    return BacktestInputs(
        prices=pd.DataFrame({"import_eur_per_kwh": IMPORT, "export_eur_per_kwh": 0.0}, index=q),
        weather=pd.DataFrame(weather, index=q),
        load_kw=pd.Series(LOAD, index=q),
        ev_sessions=sessions,
        co2_g_per_kwh=pd.Series(400.0, index=q),
        home=home,
    )


def trace(soc_end: float, ev_kw: float = 0.0) -> Trace:
    """A day importing the load (and the car), the battery moved to ``soc_end`` at the end."""
    index = pd.date_range(START, periods=96, freq="15min")
    hour = index.hour.to_numpy()
    ev = np.where(hour == 18, ev_kw, 0.0)
    soc = np.full(96, 0.5)
    soc[-1] = soc_end
    frame = pd.DataFrame(
        {"dt_s": 900.0, "grid_kw": LOAD + ev, "ev_kw": ev, "soc_end": soc, "t_store_c": 21.0},
        index=index,
    )
    return Trace(frame, 0.5, 21.0)


def test_stored_energy_is_worth_the_imports_it_saves_the_next_day(tmp_path: Path) -> None:
    inputs = battery_home(tmp_path).for_period(START, START + pd.Timedelta(days=1))
    scorer = Scorer(inputs, START, START + pd.Timedelta(days=1), tuning=Tuning())
    same, fuller = scorer.at(trace(0.5), scorer.end), scorer.at(trace(1.0), scorer.end)
    assert same.end_state_eur == pytest.approx(0.0, abs=1e-6)
    # 5 kWh more in the cells give 5 x 0.95 kWh at the plug: imports of the next day avoided
    assert fuller.end_state_eur - same.end_state_eur == pytest.approx(-5 * 0.95 * IMPORT, abs=1e-4)
    assert same.cost_eur == pytest.approx(24 * LOAD * IMPORT)


def test_a_car_left_short_costs_the_replacement_price(tmp_path: Path) -> None:
    inputs = battery_home(tmp_path).for_period(START, START + pd.Timedelta(days=1))
    scorer = Scorer(inputs, START, START + pd.Timedelta(days=1), Tuning(), 0.55)
    score = scorer.at(trace(0.5, ev_kw=11.0), scorer.end)  # 11 kWh of the 12 wanted
    assert (score.ev_met, score.ev_total) == (0, 1)
    assert score.ev_short_kwh == pytest.approx(1.0)
    assert score.ev_short_eur == pytest.approx(0.55)
    assert score.cost_eur == pytest.approx((24 * LOAD + 11.0) * IMPORT)
    assert score.net_eur == pytest.approx(score.cost_eur + score.end_state_eur + 0.55)
