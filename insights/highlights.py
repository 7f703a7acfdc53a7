"""Energy highlights per local day, week, month or year.

:func:`energy_highlights` sums the additive per-slot quantities of
:func:`insights.flows.slot_quantities` over local calendar periods and forms the ratios
from those sums. Definitions: docs/insights.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from core.timeindex import check_index
from insights.co2 import Co2Impact
from insights.flows import InsightSettings, slot_quantities
from insights.frame import BalanceReport, validate_energy_frame

Period = Literal["day", "week", "month", "year"]
PERIODS: tuple[str, ...] = ("day", "week", "month", "year")


@dataclass(frozen=True)
class PeriodHighlights:
    """Highlights of one local period. Energies [kWh], money [EUR], ratios 0-1 or None.

    A ratio is ``None`` when its denominator is zero (no PV, no consumption, no EV energy,
    no metered heat). Consumption by origin: ``pv_to_load_kwh`` straight from the PV,
    ``battery_to_load_kwh`` from the battery, the rest from the grid.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    complete: bool
    pv_kwh: float
    consumption_kwh: float
    import_kwh: float
    export_kwh: float
    ev_kwh: float
    hp_kwh: float
    battery_charge_kwh: float
    battery_discharge_kwh: float
    battery_grid_charge_kwh: float
    pv_to_load_kwh: float
    battery_to_load_kwh: float
    self_consumption_rate: float | None
    autarky: float | None
    ev_solar_share: float | None
    hp_heat_kwh: float | None
    hp_cop: float | None
    cost_eur: float
    effective_price_eur_per_kwh: float | None
    cost_no_pv_eur: float
    cost_self_consumption_eur: float
    savings_vs_no_pv_eur: float
    savings_vs_self_consumption_eur: float
    negative_price_import_h: float
    co2: Co2Impact


@dataclass(frozen=True, eq=False)
class Highlights:
    """All periods of one request.

    Attributes
    ----------
    period : str
        ``day``, ``week``, ``month`` or ``year``.
    tz : str
        Local time zone the periods follow.
    periods : tuple of PeriodHighlights
        Chronological.
    balance : BalanceReport
        Energy-balance check of the input frame (data quality for the app).
    table : pandas.DataFrame
        One row per period (index = local period start), the same fields flattened
        (CO2 fields prefixed ``co2_``).
    """

    period: str
    tz: str
    periods: tuple[PeriodHighlights, ...]
    table: pd.DataFrame
    balance: BalanceReport


def period_start(index: pd.DatetimeIndex, period: Period, tz: str) -> pd.DatetimeIndex:
    """Local start of the calendar period each UTC timestamp falls in (tz-aware, ``tz``).

    Computed on wall-clock dates, so DST changes never shift a period boundary.
    """
    if period not in PERIODS:
        raise ValueError(f"period: must be one of {PERIODS}, got {period!r}")
    day = index.tz_convert(tz).tz_localize(None).normalize()
    if period == "week":
        day = day - pd.to_timedelta(day.weekday, unit="D")
    elif period == "month":
        day = day.to_period("M").to_timestamp()
    elif period == "year":
        day = day.to_period("Y").to_timestamp()
    return pd.DatetimeIndex(day).tz_localize(tz)


def _next_start(start: pd.Timestamp, period: Period, tz: str) -> pd.Timestamp:
    naive = start.tz_localize(None)
    offsets = {
        "day": pd.DateOffset(days=1),
        "week": pd.DateOffset(weeks=1),
        "month": pd.DateOffset(months=1),
        "year": pd.DateOffset(years=1),
    }
    return pd.Timestamp(naive + offsets[period]).tz_localize(tz)


def energy_highlights(
    frame: pd.DataFrame, period: Period = "day", settings: InsightSettings | None = None
) -> Highlights:
    """Energy, money and CO2 highlights per local calendar period.

    Parameters
    ----------
    frame : pandas.DataFrame
        An energy frame (:mod:`insights.frame`): kW columns, prices [EUR/kWh],
        intensity [gCO2eq/kWh], tz-aware UTC index with a fixed step.
    period : {"day", "week", "month", "year"}
        Calendar periods in ``settings.tz``.
    settings : InsightSettings, optional
        Time zone, baseline battery, pool and balance tolerance.

    Returns
    -------
    Highlights
        Typed results per period and the same as a DataFrame.
    """
    s = settings or InsightSettings()
    balance = validate_energy_frame(frame, tolerance=s.tolerance)
    q = slot_quantities(frame, s)
    starts = period_start(q.index, period, s.tz)  # type: ignore[arg-type]
    sums = q.groupby(starts).sum()
    counts = q.groupby(starts).size()
    step = check_index(q.index)  # type: ignore[arg-type]
    rows = []
    records = sums.to_dict("records")
    for start, n, rec in zip(sums.index, counts.to_numpy(), records, strict=True):
        ts = pd.Timestamp(start)
        end = _next_start(ts, period, s.tz)
        totals = {str(k): float(v) for k, v in rec.items()}
        rows.append(_period(ts, end, int(n) == int((end - ts) / step), totals))
    return Highlights(period, s.tz, tuple(rows), highlights_table(rows), balance)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 1e-9 else None


def _period(
    start: pd.Timestamp, end: pd.Timestamp, complete: bool, t: Mapping[str, float]
) -> PeriodHighlights:
    metered = t.get("hp_metered_kwh", 0.0)
    # no metered slot in the period: heat is unknown, not zero
    heat = t.get("hp_heat_kwh") if metered > 0 else None
    return PeriodHighlights(
        start=start,
        end=end,
        complete=complete,
        pv_kwh=t["pv_kwh"],
        consumption_kwh=t["consumption_kwh"],
        import_kwh=t["import_kwh"],
        export_kwh=t["export_kwh"],
        ev_kwh=t["ev_kwh"],
        hp_kwh=t["hp_kwh"],
        battery_charge_kwh=t["battery_charge_kwh"],
        battery_discharge_kwh=t["battery_discharge_kwh"],
        battery_grid_charge_kwh=t["grid_to_battery_kwh"],
        pv_to_load_kwh=t["pv_to_load_kwh"],
        battery_to_load_kwh=t["battery_to_load_kwh"],
        self_consumption_rate=_ratio(t["pv_kwh"] - t["export_kwh"], t["pv_kwh"]),
        autarky=_ratio(t["own_supply_kwh"], t["consumption_kwh"]),
        ev_solar_share=_ratio(t["ev_own_kwh"], t["ev_kwh"]),
        hp_heat_kwh=heat,
        hp_cop=_ratio(heat, metered) if heat is not None else None,
        cost_eur=t["cost_eur"],
        effective_price_eur_per_kwh=_ratio(t["cost_eur"], t["consumption_kwh"]),
        cost_no_pv_eur=t["cost_no_pv_eur"],
        cost_self_consumption_eur=t["cost_self_consumption_eur"],
        savings_vs_no_pv_eur=t["cost_no_pv_eur"] - t["cost_eur"],
        savings_vs_self_consumption_eur=t["cost_self_consumption_eur"] - t["cost_eur"],
        negative_price_import_h=t["negative_price_import_h"],
        co2=Co2Impact.from_sums(t),
    )


def _nan(value: object) -> object:
    return np.nan if value is None else value


def highlights_table(periods: list[PeriodHighlights]) -> pd.DataFrame:
    """Flatten period highlights into a DataFrame indexed by local period start."""
    records = []
    for p in periods:
        rec = {k: _nan(v) for k, v in p.__dict__.items() if k not in ("co2", "start")}
        rec.update({f"co2_{k}": v for k, v in p.co2.__dict__.items()})
        records.append(rec)
    table = pd.DataFrame.from_records(records, index=[p.start for p in periods])
    table.index.name = "start"
    return table
