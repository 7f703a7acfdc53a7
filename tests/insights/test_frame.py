from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import TimeIndexError
from insights import (
    BalanceTolerance,
    EnergyFrameError,
    assemble_energy_frame,
    validate_energy_frame,
)
from tests.insights.frames import FrameFactory


def test_missing_columns_are_all_named(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    frame = make_frame(day, house=1.0).drop(columns=["ev_kw", "co2_g_per_kwh"])
    with pytest.raises(EnergyFrameError, match=r"missing columns ev_kw, co2_g_per_kwh"):
        validate_energy_frame(frame)


def test_naive_index_raises(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    frame = make_frame(day, house=1.0)
    frame.index = frame.index.tz_localize(None)
    with pytest.raises(TimeIndexError, match="naive"):
        validate_energy_frame(frame)


def test_small_mismatch_is_reported_gross_mismatch_raises(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    frame = make_frame(day, house=1.0)
    frame.iloc[:4, frame.columns.get_loc("grid_kw")] += 0.2
    report = validate_energy_frame(frame, tolerance=BalanceTolerance(report_kw=0.05))
    assert report.slots_over_tolerance == 4
    assert report.max_residual_kw == pytest.approx(0.2)
    assert report.residual_kwh == pytest.approx(0.2)
    frame.iloc[10, frame.columns.get_loc("grid_kw")] += 3.0
    with pytest.raises(EnergyFrameError, match=r"grid_kw: energy balance off by 3\.000 kW"):
        validate_energy_frame(frame)


def test_negative_pv_and_bad_soc_are_named(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    frame = make_frame(day, house=1.0)
    frame["soc"] = 1.2
    with pytest.raises(EnergyFrameError, match="soc"):
        validate_energy_frame(frame)
    frame = make_frame(day, pv=-0.1, house=1.0)
    with pytest.raises(EnergyFrameError, match="pv_kw"):
        validate_energy_frame(frame)


def test_assemble_joins_separate_price_series(
    make_frame: FrameFactory, day: pd.DatetimeIndex
) -> None:
    power = make_frame(day, house=1.0).drop(columns=["import_eur_per_kwh", "co2_g_per_kwh"])
    price = pd.Series(0.25, index=day)
    co2 = pd.Series(300.0, index=day)
    frame = assemble_energy_frame(power, import_eur_per_kwh=price, co2_g_per_kwh=co2)
    assert frame["import_eur_per_kwh"].eq(0.25).all()
    with pytest.raises(EnergyFrameError, match="co2_g_per_kwh: index does not match"):
        assemble_energy_frame(power, import_eur_per_kwh=price, co2_g_per_kwh=co2.iloc[1:])
