"""Time-grid conversion and input hygiene of price series."""

from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import TimeIndexError, local_day
from pricing.errors import PriceDataError
from pricing.series import clean_series, expand_to_quarter_hours, to_step


def _hourly(start: str, values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="h", tz="UTC"))


def test_hourly_price_is_held_on_quarter_hours_and_5_minutes() -> None:
    quarters = expand_to_quarter_hours(_hourly("2024-06-15", [0.10, -0.02]), pd.Timedelta("1h"))
    on15 = to_step(quarters, pd.date_range("2024-06-15", periods=8, freq="15min", tz="UTC"))
    assert on15.tolist() == [0.10] * 4 + [-0.02] * 4
    on5 = to_step(quarters, pd.date_range("2024-06-15", periods=24, freq="5min", tz="UTC"))
    assert on5.tolist() == [0.10] * 12 + [-0.02] * 12


def test_quarter_hours_are_averaged_on_an_hourly_grid() -> None:
    quarters = pd.Series(
        [0.08, 0.04, 0.00, -0.04, 0.1, 0.1, 0.1, 0.3],
        index=pd.date_range("2024-06-15", periods=8, freq="15min", tz="UTC"),
    )
    hourly = to_step(quarters, pd.date_range("2024-06-15", periods=2, freq="h", tz="UTC"))
    assert hourly.tolist() == pytest.approx([0.02, 0.15])
    half = to_step(quarters, pd.date_range("2024-06-15", periods=4, freq="30min", tz="UTC"))
    assert half.tolist() == pytest.approx([0.06, -0.02, 0.1, 0.2])


def test_hour_with_a_missing_quarter_is_a_gap_not_a_three_quarter_mean() -> None:
    quarters = pd.Series(
        [0.1, 0.1, 0.1], index=pd.date_range("2024-06-15", periods=3, freq="15min", tz="UTC")
    )
    hourly = to_step(quarters, pd.date_range("2024-06-15", periods=2, freq="h", tz="UTC"))
    assert hourly.isna().all()


@pytest.mark.parametrize(("day", "slots"), [("2024-03-31", 92), ("2024-10-27", 100)])
def test_dst_days(day: str, slots: int) -> None:
    hours = _hourly("2024-03-01", [0.05] * (24 * 300))
    quarters = expand_to_quarter_hours(hours, pd.Timedelta("1h"))
    assert to_step(quarters, local_day(day)).notna().sum() == slots
    assert to_step(quarters, local_day(day, step_min=60)).notna().sum() == slots // 4


def test_naive_timestamps_raise() -> None:
    naive = pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2, freq="h"))
    with pytest.raises(TimeIndexError, match="naive"):
        clean_series(naive, name="price")
    with pytest.raises(TimeIndexError, match="naive"):
        to_step(naive, naive.index)  # type: ignore[arg-type]


def test_duplicated_timestamps() -> None:
    stamps = pd.DatetimeIndex(["2024-01-01T00:00Z", "2024-01-01T00:00Z", "2024-01-01T01:00Z"])
    same = clean_series(pd.Series([5.0, 5.0, 6.0], index=stamps), name="price")
    assert same.tolist() == [5.0, 6.0]
    with pytest.raises(PriceDataError, match="duplicated timestamp 2024-01-01 00:00:00"):
        clean_series(pd.Series([5.0, 7.0, 6.0], index=stamps), name="price")


def test_non_numeric_values_become_gaps() -> None:
    stamps = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    cleaned = clean_series(pd.Series(["1.5", "n/a", None], index=stamps), name="price")
    assert cleaned.tolist() == [1.5]
