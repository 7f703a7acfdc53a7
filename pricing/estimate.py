"""Estimate for prices that are not published yet, flagged per slot.

The day-ahead auction clears around 12:45 CET for the next day, so a 24-48 h horizon regularly
reaches past the last known price. Known prices are always kept; each missing quarter-hour gets
the mean price of the same local (Europe/Berlin) time of day over the days of the same day type
(Monday-Friday, Saturday, Sunday) in the 21 days up to the last known value before the first
missing quarter-hour. If there is no day of that type in the window, all days of the window are
used. If the last known value is more than 35 days old, it raises instead of guessing. This
"recent same-day-type profile" keeps the daily shape (evening peak, solar dip), which is what an
optimizer needs to place flexible load; it does not forecast the level of a particular day.

A service that runs long after its last known price (no network, no token, the bundled data
ended) can pass a ``reference`` history: then a quarter-hour with nothing known in the 35 days
before it gets the *seasonal* profile instead, the mean of the same day type and local time of
day over the reference days within +-14 days of the same day of the year (any year), so a
December day is estimated from December prices. It is flagged like any other estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.timeindex import check_index
from pricing.errors import PricingError
from pricing.series import QUARTER_FREQ, to_step

LOCAL_TZ = "Europe/Berlin"


def _day_type(stamps: pd.DatetimeIndex) -> pd.Index:
    weekday = stamps.weekday
    return pd.Index(["sun" if d == 6 else "sat" if d == 5 else "wd" for d in weekday])


def _time_of_day(stamps: pd.DatetimeIndex) -> pd.Index:
    return pd.Index(stamps.hour * 60 + stamps.minute)


def same_day_type_profile(
    history: pd.Series,
    missing: pd.DatetimeIndex,
    history_days: int = 21,
    max_gap_days: int = 35,
) -> pd.Series:
    """Estimate values for ``missing`` quarter-hours from recent days of the same day type.

    Parameters
    ----------
    history : pandas.Series
        Known values (e.g. price [EUR/kWh]) on a UTC 15-minute grid.
    missing : pandas.DatetimeIndex
        UTC quarter-hours to estimate.
    history_days : int
        Length of the look-back window [days], ending at the last known value before the first
        missing quarter-hour.
    max_gap_days : int
        Refuse to estimate when the last known value is older than this [days].

    Returns
    -------
    pandas.Series
        Estimates on ``missing``, in the unit of ``history``.

    Raises
    ------
    PricingError
        No known value within ``max_gap_days`` before the first missing quarter-hour.
    """
    first = missing.min()
    before = history[history.index < first] if len(history) else history
    if before.empty or first - before.index[-1] > pd.Timedelta(days=max_gap_days):
        raise PricingError(
            f"{history.name or 'series'}: no known value in the {max_gap_days} days before "
            f"{first}; the source does not cover this period, cannot estimate"
        )
    last = before.index[-1]
    window = before[before.index > last - pd.Timedelta(days=history_days)]
    local = pd.DatetimeIndex(window.index).tz_convert(LOCAL_TZ)
    by_type = window.groupby([_day_type(local), _time_of_day(local)]).mean()
    by_time = window.groupby(_time_of_day(local)).mean()
    local_missing = missing.tz_convert(LOCAL_TZ)
    keys = list(zip(_day_type(local_missing), _time_of_day(local_missing), strict=True))
    typed = by_type.reindex(pd.MultiIndex.from_tuples(keys)).to_numpy()
    plain = by_time.reindex(_time_of_day(local_missing)).to_numpy()
    values = pd.Series(typed, index=missing).fillna(pd.Series(plain, index=missing))
    return values.fillna(window.mean())


def seasonal_profile(
    reference: pd.Series, missing: pd.DatetimeIndex, window_days: int = 14
) -> pd.Series:
    """Estimate ``missing`` quarter-hours from the same season of a reference history.

    Parameters
    ----------
    reference : pandas.Series
        Known values on a UTC 15-minute grid, of any years (e.g. the bundled prices).
    missing : pandas.DatetimeIndex
        UTC quarter-hours to estimate.
    window_days : int
        Reference days within this many days of the same day of the year are used [days].

    Returns
    -------
    pandas.Series
        Estimates on ``missing``: the mean over those days of the same day type and local time
        of day (all day types if none matches).

    Raises
    ------
    PricingError
        The reference is empty.
    """
    ref = reference.dropna()
    if ref.empty:
        raise PricingError(f"{reference.name or 'series'}: empty reference, cannot estimate")
    local = pd.DatetimeIndex(ref.index).tz_convert(LOCAL_TZ)
    ref_doy = local.dayofyear.to_numpy()
    keys = (_day_type(local), _time_of_day(local))
    local_missing = missing.tz_convert(LOCAL_TZ)
    out = pd.Series(float("nan"), index=missing)
    for doy in np.unique(local_missing.dayofyear.to_numpy()):
        distance = np.abs(ref_doy - doy)
        near = np.minimum(distance, 366 - distance) <= window_days
        window = pd.Series(ref.to_numpy()[near])
        by_type = window.groupby([keys[0][near], keys[1][near]]).mean()
        by_time = window.groupby(keys[1][near]).mean()
        mask = local_missing.dayofyear.to_numpy() == doy
        day = local_missing[mask]
        wanted = list(zip(_day_type(day), _time_of_day(day), strict=True))
        typed = by_type.reindex(pd.MultiIndex.from_tuples(wanted)).to_numpy()
        plain = by_time.reindex(_time_of_day(day)).to_numpy()
        out[mask] = np.where(np.isfinite(typed), typed, plain)
    return out.fillna(ref.mean())


def prices_on_index(
    quarter_prices: pd.Series,
    index: pd.DatetimeIndex,
    column: str = "spot_eur_per_kwh",
    reference: pd.Series | None = None,
) -> pd.DataFrame:
    """Known prices on ``index``, gaps filled by the estimate and flagged.

    Parameters
    ----------
    quarter_prices : pandas.Series
        Known spot prices [EUR/kWh] on a UTC 15-minute grid (gaps allowed).
    index : pandas.DatetimeIndex
        Target grid (5/15/30/60 min, UTC).
    column : str
        Name of the value column (the same method fills carbon intensity).
    reference : pandas.Series, optional
        Long history for the seasonal estimate where nothing is known in the 35 days before a
        gap (see the module notes); without it such a gap raises :class:`PricingError`.

    Returns
    -------
    pandas.DataFrame
        ``column`` (unit of the input) and ``is_estimate`` (bool): a slot is an estimate when any
        quarter-hour in it was estimated.
    """
    step = check_index(index)
    quarters = pd.date_range(
        index[0].floor(QUARTER_FREQ), index[-1] + step, freq=QUARTER_FREQ, inclusive="left"
    )
    known = quarter_prices.reindex(quarters)
    missing = pd.DatetimeIndex(known.index[known.isna()])
    if len(missing):
        try:
            estimate = same_day_type_profile(quarter_prices.dropna().rename(column), missing)
        except PricingError:
            if reference is None:
                raise
            estimate = seasonal_profile(reference, missing)
        known = known.fillna(estimate)
    flag = pd.Series(quarters.isin(missing).astype(float), index=quarters)
    values = to_step(known.rename(column), index)
    # mean of 0/1 flags > 0 <=> some quarter-hour in the slot was estimated
    estimated = to_step(flag, index) > 0
    return pd.DataFrame({column: values, "is_estimate": estimated.astype(bool)})
