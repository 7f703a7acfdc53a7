import pandas as pd
import pytest

from core.timeindex import TimeIndexError, check_index, local_day, utc_range


def test_dst_days_have_92_and_100_quarter_hours() -> None:
    assert len(local_day("2024-03-31")) == 92
    assert len(local_day("2024-10-27")) == 100
    assert len(local_day("2024-06-15")) == 96
    assert check_index(local_day("2024-10-27")) == pd.Timedelta(minutes=15)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (pd.date_range("2024-01-01", periods=4, freq="15min"), "naive"),
        (pd.date_range("2024-01-01", periods=4, freq="15min", tz="Europe/Berlin"), "UTC"),
        (pd.date_range("2024-01-01", periods=4, freq="20min", tz="UTC"), "step"),
        (
            pd.DatetimeIndex(
                ["2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 00:45"], tz="UTC"
            ),
            "not fixed",
        ),
    ],
)
def test_bad_indexes_are_named(index: pd.DatetimeIndex, message: str) -> None:
    with pytest.raises(TimeIndexError, match=message):
        check_index(index)


def test_utc_range_reads_naive_start_as_utc() -> None:
    idx = utc_range("2024-06-15", 4, 30)
    assert str(idx.tz) == "UTC"
    assert idx[0] == pd.Timestamp("2024-06-15T00:00Z")
    assert check_index(idx) == pd.Timedelta(minutes=30)


def test_single_slot_takes_its_step_from_the_index_frequency() -> None:
    assert check_index(utc_range("2024-06-15", 1, 60)) == pd.Timedelta(hours=1)
    assert check_index(pd.DatetimeIndex(["2024-06-15"], tz="UTC")) == pd.Timedelta(minutes=15)
