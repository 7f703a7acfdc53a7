"""What the latest plan puts into each car by its next departure, and, when that falls short
of the owner's target, why, in plain words for the plan page.

The departure and target come from the owner's weekly plan or one-off override
(:func:`scheduler.site_model.next_departure`, the same rule the problem is built with); the
energy from the plan's ``<wallbox>-energy_kwh`` column (energy at each slot's end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import pandas as pd

from adapters.store import Plan as StoredPlan
from api.schemas import DepartureOutlookPublic
from optimizer import ChargingMode, Wallbox
from scheduler.site_model import (
    SiteEquipment,
    SitePreferences,
    WallboxPreference,
    optimizer_site,
    owner_goal,
    plan_column,
)

#: A plan within this of the target meets it [kWh] (solver tolerance, rounding of the page).
MET_TOL_KWH = 0.05


def departure_outlooks(
    stored: StoredPlan | None,
    now: datetime,
    equipment: SiteEquipment,
    preferences: SitePreferences,
) -> list[DepartureOutlookPublic]:
    """Per wallbox with owner settings: next departure, target and the plan's energy then."""
    start = pd.Timestamp(now)
    wallboxes = {w.name: w for w in optimizer_site(equipment, preferences).wallboxes}
    out = []
    for w in equipment.wallboxes:
        pref = preferences.wallboxes.get(w.name)
        if pref is None:
            continue
        departure, target = owner_goal(pref, start, preferences.timezone, w.car_capacity_kwh)
        energy = _energy_at(stored, w.name, departure)
        outlook = DepartureOutlookPublic(
            wallbox=w.name,
            departure=None if departure is None else departure.to_pydatetime(),
            source=_source(pref, departure, start),
            target_kwh=target,
            target_soc=None if target is None else target / w.car_capacity_kwh,
            expected_kwh=energy,
            expected_soc=None if energy is None else energy / w.car_capacity_kwh,
            reachable=None,
            shortfall_kwh=0.0,
            reason="",
        )
        out.append(_judge(outlook, stored, start, pref.mode, wallboxes[w.name], w.car_arrival_kwh))
    return out


def _source(
    pref: WallboxPreference, departure: pd.Timestamp | None, start: pd.Timestamp
) -> Literal["one_off", "weekly", "none"]:
    if departure is None:
        return "none"
    one_off = pref.departure is not None and pd.Timestamp(pref.departure) > start
    return "one_off" if one_off else "weekly"


def _energy_at(
    stored: StoredPlan | None, name: str, departure: pd.Timestamp | None
) -> float | None:
    """Energy in the car at the end of the last slot that ends by ``departure`` [kWh]."""
    if stored is None or departure is None:
        return None
    frame = stored.slots.rename(columns=plan_column)
    column = f"{name}_energy_kwh"
    if column not in frame or frame.empty:
        return None
    index = pd.DatetimeIndex(frame.index)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=15)
    ends = index + step
    if ends[-1] < departure:
        return None  # the plan does not reach the departure yet
    done = int(ends.searchsorted(departure, side="right"))
    if done == 0:
        return None
    return float(pd.to_numeric(frame[column]).iloc[done - 1])


def _judge(  # noqa: PLR0917 - one call site, the outlook's context
    o: DepartureOutlookPublic,
    stored: StoredPlan | None,
    start: pd.Timestamp,
    mode: ChargingMode,
    wallbox: Wallbox,
    arrival_kwh: float,
) -> DepartureOutlookPublic:
    """Fill ``reachable``, ``shortfall_kwh`` and ``reason``."""
    if o.departure is None:
        return o.model_copy(update={"reason": "No departure set: the car charges by its mode."})
    if stored is None:
        return o.model_copy(update={"reason": "No plan yet for this departure."})
    assert o.target_kwh is not None
    if o.expected_kwh is None:
        frame = stored.slots.rename(columns=plan_column)
        text = (
            "The plan does not reach this departure yet; the next plans will."
            if f"{o.wallbox}_energy_kwh" in frame
            else "No car is plugged in: the plan charges nothing."
        )
        return o.model_copy(update={"reason": text})
    short = max(0.0, o.target_kwh - o.expected_kwh)
    if short <= MET_TOL_KWH:
        return o.model_copy(
            update={"reachable": True, "reason": "The plan reaches the target by departure."}
        )
    reason = _why_short(o, start, mode, wallbox, arrival_kwh)
    violations = (stored.summary.model_extra or {}).get("violations", {})
    missed = violations.get(f"{o.wallbox}-target_energy")
    if missed:
        reason += f" The solver reports the target missed by {float(missed):.1f} kWh."
    return o.model_copy(update={"reachable": False, "shortfall_kwh": short, "reason": reason})


def _why_short(
    o: DepartureOutlookPublic,
    start: pd.Timestamp,
    mode: ChargingMode,
    wallbox: Wallbox,
    arrival_kwh: float,
) -> str:
    assert o.departure is not None and o.target_kwh is not None
    if mode == ChargingMode.OFF:
        return "Charging is off (mode 'off'): the car gets nothing before departure."
    if mode in (ChargingMode.SOLAR, ChargingMode.AFTER_BATTERY, ChargingMode.MIN_SOLAR):
        return (
            f"Mode '{mode.value}' charges from solar surplus, and the forecast surplus before "
            "departure is not enough; choose 'smart' to reach the target with grid power."
        )
    hours = max(0.0, (pd.Timestamp(o.departure) - start).total_seconds() / 3600)
    max_kw = wallbox.max_power_kw
    most = min(arrival_kwh + max_kw * wallbox.efficiency * hours, o.target_kwh)
    if most < o.target_kwh - MET_TOL_KWH:
        return (
            f"Not enough time: in the {hours:.1f} h left the charger adds at most "
            f"{max_kw * wallbox.efficiency * hours:.1f} kWh ({max_kw:.1f} kW)."
        )
    return "The plan leaves the car short of the target."
