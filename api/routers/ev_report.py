"""Per EV session of a site: target, delivered, average price paid, met (site viewers).

Computed on request from the telemetry store (plug state and charging power, as the controller
learns them: :mod:`scheduler.ev_sessions`), the setpoints sent (was the car offered current
when it stopped drawing: full) and the site's tariff on the stored day-ahead prices. Nothing is
stored: the report is what the measurements say.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Services, ServicesDep, SiteContext, SiteViewer
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, field_error
from api.site_problem import stored_equipment, stored_preferences, stored_tariff
from pricing import PricingError, site_prices
from scheduler.ev_sessions import (
    LEARN_DAYS,
    CarState,
    SessionModel,
    SlotSeries,
    charge_goal,
    session_report,
    sessions_from_telemetry,
)
from scheduler.site_model import (
    SiteEquipment,
    configured_target_kwh,
    has_owner_plan,
    owner_goal,
    site_home,
)

router = APIRouter(
    prefix="/v1/app/sites/{site_id}",
    tags=["app"],
    responses={
        **ERROR_RESPONSES,
        503: {"model": ErrorBody, "description": "No telemetry store, or no prices for the range"},
    },
)
#: Longest range [days]: the plug state is kept with the raw samples (35 days).
MAX_DAYS = 31


class EvSessionPublic(BaseModel):
    plugin: datetime = Field(description="Plug-in (UTC)")
    plugout: datetime = Field(description="Plug-out (UTC)")
    target_kwh: float = Field(description="AC energy the controller aimed to deliver [kWh]")
    target_source: str = Field(description="learned, owner, owner+learned or configured")
    delivered_kwh: float = Field(description="AC energy delivered [kWh]")
    cost_eur: float = Field(description="What the delivered energy cost [EUR]")
    avg_price_eur_per_kwh: float | None = Field(
        description="cost / delivered: grid energy at the import price, PV surplus at the "
        "feed-in price it forwent [EUR/kWh]; null without energy"
    )
    full: bool = Field(description="The car stopped drawing while offered current")
    met: bool = Field(description="Full, or delivered within 0.05 kWh of the target")


class EvSessionsPublic(BaseModel):
    site_id: str
    tz: str
    wallbox: str | None = Field(description="The wallbox reported on (the first); null: none")
    sessions: list[EvSessionPublic] = Field(description="Sessions that ended in the range")
    met: int = Field(description="Sessions met")
    total: int = Field(description="Sessions that ended in the range")
    price_estimate_share: float = Field(
        default=0.0, description="Share of the slots priced on an estimated spot price [0-1]"
    )


StartDay = Annotated[date | None, Query(description="First local day; default end - 7 days")]
EndDay = Annotated[date | None, Query(description="Local day after the last; default tomorrow")]


@router.get("/ev-sessions", response_model=EvSessionsPublic)
def ev_sessions(
    ctx: SiteViewer, services: ServicesDep, start: StartDay = None, end: EndDay = None
) -> EvSessionsPublic:
    """The site's EV sessions that ended in local days ``[start, end)``: target, delivered
    [kWh], cost [EUR] and average price [EUR/kWh], and whether each was met."""
    tz = ctx.site.timezone
    today = services.now().astimezone(ZoneInfo(tz)).date()
    end = end or today + timedelta(days=1)
    start = start or end - timedelta(days=7)
    if start >= end:
        raise field_error("query.start", "must be before end")
    if (end - start).days > MAX_DAYS:
        raise field_error("query.start", f"range longer than {MAX_DAYS} days")
    if end > today + timedelta(days=2) or start < today - timedelta(days=400):
        raise field_error("query.end", "must lie within the last 400 days and tomorrow")
    first, last = _utc_midnight(start, tz), _utc_midnight(end, tz)
    equipment, _ = stored_equipment(services.accounts, ctx.site.id)
    if not equipment.wallboxes:
        return EvSessionsPublic(site_id=ctx.site.id, tz=tz, wallbox=None, sessions=[], met=0,
                                total=0)  # fmt: skip
    learn_from = first - timedelta(days=LEARN_DAYS)
    report, estimated = _report(ctx, services, equipment, learn_from, (first, last))
    rows = [EvSessionPublic.model_validate(r) for r in report]
    return EvSessionsPublic(
        site_id=ctx.site.id,
        tz=tz,
        wallbox=equipment.wallboxes[0].name,
        sessions=rows,
        met=sum(r.met for r in rows),
        total=len(rows),
        price_estimate_share=estimated,
    )


def _utc_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


def _report(
    ctx: SiteContext,
    services: Services,
    equipment: SiteEquipment,
    learn_from: datetime,
    span: tuple[datetime, datetime],
) -> tuple[list[dict[str, object]], float]:
    store = services.store()
    sid, (first, last) = ctx.site.id, span
    connected = store.field_window(sid, "wallbox", "connected", start=learn_from, end=last)
    window = store.window(sid, learn_from, last)
    sessions = sessions_from_telemetry(connected, window["wallbox-power_kw"])
    ended = (sessions["plugout_utc"] > first) & (sessions["plugout_utc"] <= last)
    if not ended.any():
        return [], 0.0
    mine = sessions[ended].reset_index(drop=True)
    targets, sources = _targets(ctx, services, equipment, sessions, mine)
    index = pd.DatetimeIndex(window.index)
    index = index[index >= mine["plugin_utc"].min().floor("15min")]
    prices, estimated = _prices(ctx, services, equipment, index)
    sent = services.plans.setpoints(sid, index[0].to_pydatetime(), last)
    offered = sent[(sent["device"] == "wallbox") & (sent["quantity"] == "current_a")]
    series = SlotSeries(
        window["wallbox-power_kw"].reindex(index),
        window["grid-power_kw"].reindex(index),
        prices["import_eur_per_kwh"],
        prices["export_eur_per_kwh"],
        offered.set_index("ts")["sent"].astype(float).resample("15min").max().reindex(index)
        if len(offered)
        else pd.Series(np.nan, index=index),
    )
    table = session_report(mine, np.asarray(targets), series)
    out = []
    records: list[dict[Any, Any]] = table.to_dict("records")
    for row, source in zip(records, sources, strict=True):
        average = float(row["avg_price_eur_per_kwh"])
        out.append(
            {
                "plugin": pd.Timestamp(row["plugin_utc"]).to_pydatetime(),
                "plugout": pd.Timestamp(row["plugout_utc"]).to_pydatetime(),
                "target_kwh": round(float(row["target_kwh"]), 3),
                "target_source": source,
                "delivered_kwh": round(float(row["delivered_kwh"]), 3),
                "cost_eur": round(float(row["cost_eur"]), 4),
                "avg_price_eur_per_kwh": None if np.isnan(average) else round(average, 4),
                "full": bool(row["full"]),
                "met": bool(row["met"]),
            }
        )
    return out, estimated


def _targets(
    ctx: SiteContext,
    services: Services,
    equipment: SiteEquipment,
    history: pd.DataFrame,
    mine: pd.DataFrame,
) -> tuple[list[float], list[str]]:
    """AC energy each session was to get, as the controller set it at plug-in [kWh]: the owner's
    plan as set now (past plans are not kept), the sessions learned before, else the default."""
    w = equipment.wallboxes[0]
    wb = site_home(equipment).site.wallboxes[0]
    eff, power = wb.efficiency, wb.max_power_kw
    pref = stored_preferences(services.accounts, ctx.site.id).wallboxes.get(w.name)
    tz = ctx.site.timezone
    default = configured_target_kwh(w, pref)
    arrival = min(w.car_arrival_kwh, w.car_capacity_kwh)
    targets, sources = [], []
    for plugin in mine["plugin_utc"]:
        car = CarState(plugin, 0.0, arrival, w.car_capacity_kwh, eff)
        owner = None
        if has_owner_plan(pref):
            owner = owner_goal(pref, plugin, tz, w.car_capacity_kwh)
        before = history[history["plugout_utc"] <= plugin].reset_index(drop=True)
        expected = SessionModel(before, tz, power).expect(plugin, plugin, 0.0)
        goal = charge_goal(car, plugin, (plugin, default), owner, expected)
        targets.append(max(goal.target_kwh - arrival, 0.0) / eff)
        sources.append(goal.source)
    return targets, sources


def _prices(
    ctx: SiteContext, services: Services, equipment: SiteEquipment, index: pd.DatetimeIndex
) -> tuple[pd.DataFrame, float]:
    tariff = stored_tariff(services.accounts, ctx.site.id).tariff
    source = None if services.inputs is None else services.inputs.price_source(tariff.bidding_zone)
    rules = site_home(equipment).export_rules()
    try:
        prices = site_prices(index, tariff, rules, price_source=source, seasonal=True)
    except PricingError as exc:  # only without any reference history
        raise ApiError(503, "prices_unavailable", str(exc)) from None
    return prices, float(prices["price_is_estimate"].astype(float).mean())
