"""Price-series statistics for analysts: daily spread, negative hours, 15-min vs hourly.

Inputs are price series [EUR/kWh] on a tz-aware UTC index with a fixed step; days and
months are local calendar periods in ``tz``.
"""

from __future__ import annotations

import pandas as pd

from core.timeindex import check_index
from insights.highlights import Period, period_start


def _checked(prices: pd.Series, name: str) -> float:
    step = check_index(prices.index, name=name)  # type: ignore[arg-type]
    if prices.isna().any():
        raise ValueError(f"{name}: contains NaN")
    return float(step / pd.Timedelta(hours=1))


def daily_price_spread(prices: pd.Series, tz: str = "Europe/Berlin") -> pd.DataFrame:
    """Minimum, maximum, mean and spread (max - min) of each local day [EUR/kWh].

    Parameters
    ----------
    prices : pandas.Series
        Prices [EUR/kWh], UTC index, fixed step.
    tz : str
        Local time zone of the days.

    Returns
    -------
    pandas.DataFrame
        Index: local day start; columns ``min``, ``max``, ``mean``, ``spread``, ``slots``.
    """
    _checked(prices, "prices")
    days = period_start(prices.index, "day", tz)  # type: ignore[arg-type]
    out = prices.groupby(days).agg(["min", "max", "mean", "size"])
    out["spread"] = out["max"] - out["min"]
    return out.rename(columns={"size": "slots"})


def negative_price_hours(
    prices: pd.Series, tz: str = "Europe/Berlin", period: Period = "month"
) -> pd.Series:
    """Hours with a price below zero per local period [h] (slot count x slot length)."""
    dt_h = _checked(prices, "prices")
    starts = period_start(prices.index, period, tz)  # type: ignore[arg-type]
    return (prices < 0).groupby(starts).sum().astype(float) * dt_h


def quarter_hour_vs_hourly(
    quarter_hour: pd.Series, hourly: pd.Series, tz: str = "Europe/Berlin", block_h: float = 1.0
) -> pd.DataFrame:
    """What 15-minute products change, per local day.

    Compares a 15-min price series with the hourly series of the same days: daily spread,
    negative hours, and the mean price of the cheapest ``block_h`` hours a flexible load (a
    battery or an EV) could buy — as whole hours, or as the cheapest quarter-hours.

    Parameters
    ----------
    quarter_hour : pandas.Series
        15-min prices [EUR/kWh], UTC index.
    hourly : pandas.Series
        Hourly prices [EUR/kWh] on the same span, UTC index.
    tz : str
        Local time zone of the days.
    block_h : float
        Hours of flexible demand per day [h]; a whole number of hours.

    Returns
    -------
    pandas.DataFrame
        Index: local day start. Columns ``spread_15min``, ``spread_hourly`` [EUR/kWh],
        ``negative_h_15min``, ``negative_h_hourly`` [h], ``cheapest_15min``,
        ``cheapest_hourly`` [EUR/kWh], ``gain_15min`` = ``cheapest_hourly - cheapest_15min``
        [EUR/kWh], ``intra_hour_std`` (mean within-hour standard deviation) [EUR/kWh].
    """
    if _checked(quarter_hour, "quarter_hour") != 0.25:
        raise ValueError("quarter_hour: step must be 15 minutes")
    if _checked(hourly, "hourly") != 1.0:
        raise ValueError("hourly: step must be 60 minutes")
    n_qh, n_h = round(block_h * 4), round(block_h)
    qd = period_start(quarter_hour.index, "day", tz)  # type: ignore[arg-type]
    hd = period_start(hourly.index, "day", tz)  # type: ignore[arg-type]
    q_by, h_by = quarter_hour.groupby(qd), hourly.groupby(hd)
    out = pd.DataFrame(
        {
            "spread_15min": q_by.max() - q_by.min(),
            "spread_hourly": h_by.max() - h_by.min(),
            "negative_h_15min": (quarter_hour < 0).groupby(qd).sum() * 0.25,
            "negative_h_hourly": (hourly < 0).groupby(hd).sum().astype(float),
            "cheapest_15min": q_by.apply(lambda x: x.nsmallest(n_qh).mean()),
            "cheapest_hourly": h_by.apply(lambda x: x.nsmallest(n_h).mean()),
        }
    )
    out["gain_15min"] = out["cheapest_hourly"] - out["cheapest_15min"]
    hour_std = quarter_hour.groupby(pd.DatetimeIndex(quarter_hour.index).floor("1h")).std(ddof=0)
    out["intra_hour_std"] = hour_std.groupby(period_start(hour_std.index, "day", tz)).mean()  # type: ignore[arg-type]
    return out
