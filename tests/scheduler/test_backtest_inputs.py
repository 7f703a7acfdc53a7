"""Backtests on the analyst's own data: a home built entirely from arguments, none bundled.

The data are synthetic but physical (a March day in 2018, outside the bundled price years, so a
bundled source would raise): spot prices through a flat tariff written here, a daily
temperature swing, a clear-sky-like irradiance bell, a 1-minute household load, heat demand
and two car sessions, one of which no wallbox can fill before its departure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer import Problem
from optimizer.forecast import PvSystem, pv_power
from pricing import load_tariff
from scheduler.backtest import backtest, format_result
from scheduler.backtest_inputs import BacktestInputs, InputError
from scheduler.controller import SiteConfig, SiteController
from scheduler.fair_score import REPLACEMENT_EUR_PER_KWH
from scheduler.frame_feeds import RetailPriceFeed
from scheduler.scenario import Home

START = pd.Timestamp("2018-03-05 00:00", tz="UTC")
END = START + pd.Timedelta(days=2)
FIXED_EUR = 0.02 + 0.10  # the test tariff: margin + flat grid fee, no tax, no VAT
EXPORT_EUR = 0.07
TARIFF = """name = "flat test tariff"
timezone = "Europe/Berlin"
supplier_margin_eur_per_kwh = 0.02
electricity_tax_eur_per_kwh = 0.0
vat_rate = 0.0
levies = []
[grid_fee]
low_eur_per_kwh = 0.10
standard_eur_per_kwh = 0.10
high_eur_per_kwh = 0.10
windows = []
[export]
mode = "fixed"
fixed_eur_per_kwh = 0.07
"""


def hours(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.hour + index.minute / 60, dtype=float)


def own_data(tmp_path: Path) -> BacktestInputs:
    """Two days of a home, a day before and three after (the last plan's 36 h and the day
    after them that values its end energy), every series made here."""
    q = pd.date_range(START - pd.Timedelta(days=1), END + pd.Timedelta(days=3), freq="15min",
                      inclusive="left")  # fmt: skip
    h, day = hours(q), np.asarray((q - q[0]).days, dtype=float)
    spot = 0.08 + 0.06 * np.sin(2 * np.pi * (h - 13) / 24) + 0.01 * day  # evening peak
    ghi = 450 * np.clip(np.sin(np.pi * (h - 6) / 12), 0, None)
    weather = pd.DataFrame(
        {
            "temp_air_c": 4 + 5 * np.sin(2 * np.pi * (h - 9) / 24) - 0.5 * day,
            "ghi_wm2": ghi,
            "dhi_wm2": 0.4 * ghi,
            "wind_speed_ms": 3.0,
        },
        index=q,
    )
    minutes = pd.date_range(q[0], q[-1] + pd.Timedelta(minutes=15), freq="1min", inclusive="left")
    hm = hours(minutes)
    load = 0.25 + 0.6 * np.exp(-(((hm - 18.5) / 1.5) ** 2)) + 0.1 * (minutes.minute % 2)
    sessions = pd.DataFrame(
        {
            "plugin_utc": [START + pd.Timedelta(hours=17), START + pd.Timedelta(hours=36)],
            "plugout_utc": [START + pd.Timedelta(hours=30), START + pd.Timedelta(hours=37)],
            "energy_kwh": [20.0, 30.0],  # the second: 1 h at 11 kW cannot give 30 kWh
        }
    )
    tariff = tmp_path / "tariff.toml"
    tariff.write_text(TARIFF)
    home = Home(pv_system=PvSystem(peak_kw=6.0), annual_load_kwh=2500.0, tariff_path=tariff)
    return BacktestInputs(
        prices=pd.DataFrame({"spot_eur_per_kwh": spot}, index=q),
        weather=weather,
        load_kw=pd.Series(load, index=minutes),
        ev_sessions=sessions,
        co2_g_per_kwh=pd.Series(300 + 100 * np.cos(2 * np.pi * h / 24), index=q),
        heat_demand_kw=pd.Series(0.4 + 0.3 * (h < 7), index=q),
        home=home,
    )


def published_until(now: pd.Timestamp) -> pd.Timestamp:
    """Day-ahead prices known at ``now``: to the end of today (local), after 13:00 tomorrow."""
    local = now.tz_convert("Europe/Berlin")
    days = 2 if local.hour >= 13 else 1
    return (local.normalize() + pd.Timedelta(days=days)).tz_convert("UTC")


def recorder(seen: list[tuple[pd.Timestamp, Problem]]) -> Callable[[SiteController], None]:
    def watch(ctl: SiteController) -> None:
        p = ctl.last_problem
        if p is not None and (not seen or seen[-1][1] is not p):
            seen.append((pd.Timestamp(ctl.clock.now(), unit="s", tz="UTC"), p))

    return watch


def test_a_home_from_arguments_only_is_what_the_controller_sees(tmp_path: Path) -> None:
    inputs = own_data(tmp_path)
    seen: list[tuple[pd.Timestamp, Problem]] = []
    config = SiteConfig("own-data", watchdog_timeout_s=180, pv_forecast="weather")
    result = backtest(START, 2, config, inputs=inputs, progress=False,
                      store_dir=str(tmp_path), watch=recorder(seen))  # fmt: skip
    reports = result.run.controller.reports
    assert len(reports) >= 2 * 96 and all(r.ok for r in reports)
    assert len(seen) >= 2 * 96

    spot = inputs.prices["spot_eur_per_kwh"]
    temp = inputs.weather["temp_air_c"]
    pv = pv_power(inputs.weather, inputs.home.pv_system).clip(lower=0)
    for now, problem in seen:
        x, idx = problem.inputs, problem.inputs.index
        np.testing.assert_allclose(x.t_out_c, temp.reindex(idx), rtol=0, atol=1e-12)
        np.testing.assert_allclose(x.co2_g_per_kwh, inputs.co2_g_per_kwh.reindex(idx), atol=1e-9)
        # the weather-based PV times the bias learned from the box's measured PV (within 3 %:
        # the box reports power in whole register units)
        np.testing.assert_allclose(x.pv_kw, pv.reindex(idx), rtol=0.03, atol=1e-9)
        np.testing.assert_allclose(x.heat_demand_kw["hp"], inputs.heat_demand_kw.reindex(idx))
        known = np.asarray(idx < published_until(now))
        assert known[0]
        expected = spot.reindex(idx).to_numpy() + FIXED_EUR
        np.testing.assert_allclose(x.import_eur_per_kwh[known], expected[known], atol=1e-9)
        np.testing.assert_allclose(x.export_eur_per_kwh, EXPORT_EUR)
        # unpublished slots are estimated from the same prices: inside their range
        est = x.import_eur_per_kwh[~known]
        assert (
            (est >= spot.min() + FIXED_EUR - 1e-9) & (est <= spot.max() + FIXED_EUR + 1e-9)
        ).all()

    # the twin ran on the same data: temperatures, 15-min mean of the 1-min load, balance
    steps = result.run.steps
    slot = pd.DatetimeIndex(steps.index).floor("15min")
    np.testing.assert_allclose(steps["t_out_c"], temp.reindex(slot), atol=1e-12)
    load15 = inputs.load_kw.reindex(slot).to_numpy()
    np.testing.assert_allclose(steps["load_kw"], load15, atol=1e-9)
    assert abs(load15.mean() - 0.25 - 0.05) > 0  # a real mean of the minutes, not a copy
    balance = steps["load_kw"] + steps["ev_kw"] + steps["hp_kw"] - steps["pv_kw"]
    np.testing.assert_allclose(steps["grid_kw"], balance - steps["battery_kw"], atol=1e-9)

    # money: the unreachable session is short for every run and priced at 0.55 EUR/kWh
    wallbox_kw = 3 * 230 * 16 / 1000
    for name, scores in result.scores.items():
        full = scores.full
        assert full.ev_total == 2, name
        assert full.ev_short_kwh >= 30 - wallbox_kw - 1e-6, name
        assert full.ev_short_eur == pytest.approx(full.ev_short_kwh * REPLACEMENT_EUR_PER_KWH)
        assert full.net_eur == pytest.approx(full.cost_eur + full.end_state_eur + full.ev_short_eur)
    net = {k: v.full.net_eur for k, v in result.scores.items()}
    assert net["perfect foresight"] <= net["rule-based"], net
    # played back exactly, the plan costs what it predicted to within a few cents
    assert abs(net["pf on twin"] - net["perfect foresight"]) < 0.1, net
    assert "fair net cost" in format_result(result)


def test_retail_prices_given_directly_reach_the_problem_unchanged() -> None:
    q = pd.date_range(START - pd.Timedelta(days=1), periods=3 * 96, freq="15min")
    imp = pd.Series(0.25 + 0.1 * np.sin(np.arange(len(q)) / 9), index=q)
    exp = pd.Series(0.05 + 0.01 * np.cos(np.arange(len(q)) / 7), index=q)
    now = START + pd.Timedelta(hours=14)  # 15:00 local: tomorrow is published
    feed = RetailPriceFeed.from_series(
        imp, exp, co2=imp * 1000, tariff=load_tariff(Home().tariff_path),
        rules=Home().export_rules(), clock=lambda: now,
    )  # fmt: skip
    feed.refresh(now.floor("15min"), now + pd.Timedelta(days=2))
    index = pd.date_range(now, periods=96, freq="15min")
    frame = feed.frame(index)
    np.testing.assert_allclose(frame["import_eur_per_kwh"], imp.reindex(index))
    np.testing.assert_allclose(frame["export_eur_per_kwh"], exp.reindex(index))
    assert not frame["price_is_estimate"].any()


def mutations(tmp_path: Path) -> list[tuple[str, Callable[[BacktestInputs], BacktestInputs]]]:
    def naive_weather(i: BacktestInputs) -> BacktestInputs:
        return replace(i, weather=i.weather.tz_localize(None))

    def no_ghi(i: BacktestInputs) -> BacktestInputs:
        return replace(i, weather=i.weather.drop(columns="ghi_wm2"))

    def short_load(i: BacktestInputs) -> BacktestInputs:
        return replace(i, load_kw=i.load_kw[i.load_kw.index < START + pd.Timedelta(hours=30)])

    def hole_in_co2(i: BacktestInputs) -> BacktestInputs:
        co2 = i.co2_g_per_kwh.copy()
        co2[START + pd.Timedelta(hours=5)] = np.nan
        return replace(i, co2_g_per_kwh=co2)

    def no_price_column(i: BacktestInputs) -> BacktestInputs:
        return replace(i, prices=i.prices.rename(columns={"spot_eur_per_kwh": "price"}))

    def naive_sessions(i: BacktestInputs) -> BacktestInputs:
        ev = i.ev_sessions.copy()
        ev["plugin_utc"] = ev["plugin_utc"].dt.tz_localize(None)
        return replace(i, ev_sessions=ev)

    def range_index_heat(i: BacktestInputs) -> BacktestInputs:
        assert i.heat_demand_kw is not None
        return replace(i, heat_demand_kw=i.heat_demand_kw.reset_index(drop=True))

    return [
        ("weather", naive_weather),
        ("weather", no_ghi),
        ("load_kw", short_load),
        ("co2_g_per_kwh", hole_in_co2),
        ("prices", no_price_column),
        ("ev_sessions", naive_sessions),
        ("heat_demand_kw", range_index_heat),
    ]


def test_a_mismatch_names_the_argument(tmp_path: Path) -> None:
    inputs = own_data(tmp_path)
    for argument, mutate in mutations(tmp_path):
        with pytest.raises(InputError) as info:
            mutate(inputs).for_period(START, END)
        assert info.value.argument == argument, (argument, str(info.value))
        assert str(info.value).startswith(f"{argument}: ")


def test_a_provider_that_over_forecasts_is_corrected_from_the_site_s_production(
    tmp_path: Path,
) -> None:
    """The controller sees a weather forecast 30 % too sunny while the twin gets the measured
    weather: after a day it has learned the bias, and its load forecast is the measured load
    (perfect information)."""
    inputs = own_data(tmp_path)
    sunny = inputs.weather.assign(
        ghi_wm2=inputs.weather["ghi_wm2"] * 1.3, dhi_wm2=inputs.weather["dhi_wm2"] * 1.3
    )
    inputs = replace(inputs, forecast_weather=sunny, perfect_load=True)
    seen: list[tuple[pd.Timestamp, Problem]] = []
    config = SiteConfig("bias", watchdog_timeout_s=180, pv_forecast="weather")
    backtest(START, 2, config, inputs=inputs, progress=False, store_dir=str(tmp_path),
             watch=recorder(seen))  # fmt: skip
    system = inputs.home.pv_system
    actual = pv_power(inputs.weather, system)
    raw = pv_power(sunny, system)
    load15 = inputs.load_kw.resample("15min").mean()
    first, second = [], []
    for now, problem in seen:
        x, idx = problem.inputs, problem.inputs.index
        np.testing.assert_allclose(x.load_kw, load15.reindex(idx), atol=1e-9)
        if actual[idx[0]] > 1.0:  # daylight: what the plan assumed for its first slot
            day = first if now < START + pd.Timedelta(days=1) else second
            day.append((x.pv_kw[0], raw[idx[0]], actual[idx[0]]))
    f1, f2 = np.array(first), np.array(second)
    assert f1[:, 0].sum() / f1[:, 2].sum() > 1.15  # day one: the provider's bias, nearly all
    assert f2[:, 0].sum() / f2[:, 2].sum() == pytest.approx(1.0, abs=0.06)  # learned
    assert f2[:, 1].sum() / f2[:, 2].sum() > 1.25  # what the uncorrected forecast said
