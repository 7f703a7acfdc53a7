"""Notable moments: short facts the app shows next to the highlights.

* ``cheapest_charging_hour`` per local week: the clock hour with the lowest mean import price
  [EUR/kWh] in which the battery or the EV charged at least ``min_charge_kwh``.
* ``most_solar_day`` per local month: the local day with the most PV energy [kWh].
* ``negative_price_hours`` per local month: hours in which energy was imported at a negative
  import price [h] (only months where it happened).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from insights.flows import InsightSettings, slot_quantities
from insights.highlights import period_start

MomentKind = Literal["cheapest_charging_hour", "most_solar_day", "negative_price_hours"]


@dataclass(frozen=True)
class NotableMoment:
    """One notable moment.

    Attributes
    ----------
    kind : str
        ``cheapest_charging_hour``, ``most_solar_day`` or ``negative_price_hours``.
    period_start : pandas.Timestamp
        Local start of the week or month it belongs to.
    at : pandas.Timestamp or None
        Local start of the hour or day it names (None for counts).
    value : float
        In ``unit``.
    unit : str
        ``EUR/kWh``, ``kWh`` or ``h``.
    text : str
        A one-line English sentence for the app.
    """

    kind: MomentKind
    period_start: pd.Timestamp
    at: pd.Timestamp | None
    value: float
    unit: str
    text: str


def notable_moments(
    frame: pd.DataFrame, settings: InsightSettings | None = None, *, min_charge_kwh: float = 0.1
) -> tuple[NotableMoment, ...]:
    """Notable moments of an energy frame, chronological per kind.

    Parameters
    ----------
    frame : pandas.DataFrame
        An energy frame.
    settings : InsightSettings, optional
        ``tz`` sets the local weeks, months and clock hours.
    min_charge_kwh : float
        Smallest battery + EV charging energy for an hour to count as a charging hour [kWh].
    """
    s = settings or InsightSettings()
    q = slot_quantities(frame, s)
    q["charge_kwh"] = q["battery_charge_kwh"] + q["ev_kwh"]
    q["price"] = frame["import_eur_per_kwh"].astype(float)
    return (
        *_cheapest_charging_hours(q, s.tz, min_charge_kwh),
        *_most_solar_days(q, s.tz),
        *_negative_price_hours(q, s.tz),
    )


def _cheapest_charging_hours(q: pd.DataFrame, tz: str, min_kwh: float) -> list[NotableMoment]:
    hourly = q[["charge_kwh", "price"]].resample("1h").agg({"charge_kwh": "sum", "price": "mean"})
    hourly = hourly[hourly["charge_kwh"] >= min_kwh]
    out = []
    weeks = period_start(hourly.index, "week", tz)  # type: ignore[arg-type]
    for week, grp in hourly.groupby(weeks):
        at = pd.Timestamp(grp["price"].idxmin()).tz_convert(tz)
        price = float(grp["price"].min())
        text = f"Cheapest charging hour this week: {at:%a %d %b %H:00}, {price * 100:.1f} ct/kWh"
        out.append(
            NotableMoment("cheapest_charging_hour", pd.Timestamp(week), at, price, "EUR/kWh", text)
        )
    return out


def _most_solar_days(q: pd.DataFrame, tz: str) -> list[NotableMoment]:
    days = q["pv_kwh"].groupby(period_start(q.index, "day", tz)).sum()  # type: ignore[arg-type]
    if days.max() <= 0:
        return []
    out = []
    for month, grp in days.groupby(period_start(days.index, "month", tz)):  # type: ignore[arg-type]
        kwh = float(grp.max())
        if kwh <= 0:
            continue
        at = pd.Timestamp(grp.idxmax())
        text = f"Most solar day this month: {at:%a %d %b}, {kwh:.1f} kWh"
        out.append(NotableMoment("most_solar_day", pd.Timestamp(month), at, kwh, "kWh", text))
    return out


def _negative_price_hours(q: pd.DataFrame, tz: str) -> list[NotableMoment]:
    months = period_start(q.index, "month", tz)  # type: ignore[arg-type]
    sums = q[["negative_price_import_h", "negative_price_import_kwh"]].groupby(months).sum()
    out = []
    for month, row in sums.iterrows():
        hours = float(row["negative_price_import_h"])
        if hours <= 0:
            continue
        kwh = float(row["negative_price_import_kwh"])
        text = f"Hours at negative prices used this month: {hours:g} h, {kwh:.1f} kWh imported"
        out.append(
            NotableMoment(
                "negative_price_hours",
                pd.Timestamp(month),  # type: ignore[arg-type]
                None,
                hours,
                "h",
                text,
            )
        )
    return out
