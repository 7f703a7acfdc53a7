"""The canonical in-memory price series and its conversion to a requested time grid.

Every reader returns a price series on a UTC 15-minute grid (EUR/kWh): quarter-hour products as
they are, an hourly product repeated on its four quarter-hours. 15 minutes divides every step the
project allows (5, 15, 30, 60 min), so one rule converts to any grid: finer steps hold the
quarter-hour value, coarser steps take the mean of the quarter-hours inside the slot (the
energy-weighted price of a flat load over the slot).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.timeindex import TimeIndexError, check_index
from pricing.errors import PriceDataError

QUARTER = pd.Timedelta(minutes=15)
QUARTER_FREQ = "15min"


def clean_series(series: pd.Series, *, name: str) -> pd.Series:
    """Validate timestamps and values of a raw series from a reader.

    Naive timestamps raise; duplicated timestamps with the same value are merged, with different
    values raise (the source is contradicting itself); NaN values are dropped so they show up as
    gaps downstream.

    Parameters
    ----------
    series : pandas.Series
        Values on a DatetimeIndex.
    name : str
        Used in error messages (the source and field).

    Returns
    -------
    pandas.Series
        Sorted, unique, UTC index, float values.
    """
    index = series.index
    if not isinstance(index, pd.DatetimeIndex):
        raise PriceDataError(f"{name}: index is not a DatetimeIndex")
    if index.tz is None:
        raise TimeIndexError(f"{name}: naive timestamps; localize to UTC first")
    out = pd.Series(
        pd.to_numeric(series.to_numpy(), errors="coerce"), index=index.tz_convert("UTC")
    )
    out = out.sort_index()
    duplicated = out.index.duplicated(keep=False)
    if duplicated.any():
        conflicting = out[duplicated].groupby(level=0).nunique(dropna=False) > 1
        if conflicting.any():
            first = conflicting[conflicting].index[0]
            raise PriceDataError(f"{name}: duplicated timestamp {first} with different values")
        out = out[~out.index.duplicated(keep="first")]
    out.name = series.name
    return out.dropna()


def expand_to_quarter_hours(series: pd.Series, resolution: pd.Timedelta) -> pd.Series:
    """Repeat each value of a series of ``resolution`` on the quarter-hours it covers.

    Parameters
    ----------
    series : pandas.Series
        Values labelled at interval start, UTC.
    resolution : pandas.Timedelta
        Length of each interval; a multiple of 15 minutes.

    Returns
    -------
    pandas.Series
        The same values on a 15-minute grid.
    """
    repeats = int(resolution / QUARTER)
    if repeats < 1 or resolution % QUARTER != pd.Timedelta(0):
        raise PriceDataError(f"resolution {resolution} is not a multiple of 15 minutes")
    if repeats == 1:
        return series
    starts = pd.DatetimeIndex(series.index).repeat(repeats)
    offsets = pd.to_timedelta(np.tile(np.arange(repeats) * 15, len(series)), unit="min")
    return pd.Series(series.to_numpy().repeat(repeats), index=starts + offsets, name=series.name)


def to_step(quarter_series: pd.Series, index: pd.DatetimeIndex) -> pd.Series:
    """Put a 15-minute series onto ``index``.

    Parameters
    ----------
    quarter_series : pandas.Series
        Values on a UTC 15-minute grid (gaps allowed).
    index : pandas.DatetimeIndex
        Target grid, checked with :func:`core.timeindex.check_index` (5/15/30/60 min).

    Returns
    -------
    pandas.Series
        One value per slot of ``index``; NaN where the source does not cover the whole slot
        (a slot of 30 or 60 minutes needs all its quarter-hours).
    """
    step = check_index(index)
    if step <= QUARTER:
        values = quarter_series.reindex(index.floor(QUARTER_FREQ)).to_numpy()
        return pd.Series(values, index=index, name=quarter_series.name)
    per_slot = int(step / QUARTER)
    inside = quarter_series[
        (quarter_series.index >= index[0]) & (quarter_series.index < index[-1] + step)
    ]
    # slot start of every quarter-hour, so slots need not be aligned to the full hour
    slot = index[index.searchsorted(inside.index, side="right") - 1]
    grouped = inside.groupby(slot)
    means = grouped.mean().where(grouped.count() == per_slot)
    result = means.reindex(index)
    result.name = quarter_series.name
    return result
