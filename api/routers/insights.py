"""Energy highlights and CO2 impact of a site per local day/week/month/year (site viewers).

Telemetry comes from the store's 15-minute window, prices from the site's tariff on the stored
day-ahead prices (flagged estimates where none were fetched), grid intensity from the pricing
package, the numbers from
:func:`insights.energy_highlights`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Query, Response

from api.deps import Services, ServicesDep, SiteContext, SiteViewer
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, field_error
from api.schemas import HighlightsPublic
from api.site_problem import stored_equipment, stored_tariff
from insights import (
    EnergyFrameError,
    Highlights,
    InsightSettings,
    energy_frame_from_telemetry,
    share_card_png,
)
from insights import energy_highlights as compute_highlights
from pricing import PricingError, SiteExportRules, site_prices
from scheduler.site_model import site_home

router = APIRouter(
    prefix="/v1/app/sites/{site_id}",
    tags=["app"],
    responses={
        **ERROR_RESPONSES,
        503: {"model": ErrorBody, "description": "No telemetry store, or no prices for the range"},
    },
)
MAX_DAYS = 366
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 1, 1)


def _utc_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


Period = Annotated[Literal["day", "week", "month", "year"], Query()]
StartDay = Annotated[date | None, Query(description="First local day; default end - 7 days")]
EndDay = Annotated[date | None, Query(description="Local day after the last; default today")]


@router.get("/highlights", response_model=HighlightsPublic)
def highlights(
    ctx: SiteViewer,
    services: ServicesDep,
    period: Period = "day",
    start: StartDay = None,
    end: EndDay = None,
) -> HighlightsPublic:
    """Energy (PV, consumption, import, export, EV, heat pump, battery [kWh]), money [EUR],
    self-consumption, autarky and CO2 impact [kgCO2eq] per local calendar period.

    Money uses the site's tariff on the stored day-ahead prices; where none were fetched the
    flagged estimate is used and ``price_estimate_share`` says for how much of the range."""
    result, estimated = _highlights_and_estimates(ctx, services, period, start, end)
    table = result.table.reset_index(names="start")
    records = json.loads(table.to_json(orient="records", date_format="iso"))
    return HighlightsPublic(
        site_id=ctx.site.id,
        period=period,
        tz=result.tz,
        periods=records,
        price_estimate_share=estimated,
    )


@router.get(
    "/highlights/card.png",
    response_class=Response,
    responses={
        200: {
            "description": "A 1200 x 630 px PNG card of the newest period in the range",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def highlights_card(
    ctx: SiteViewer,
    services: ServicesDep,
    period: Period = "week",
    start: StartDay = None,
    end: EndDay = None,
) -> Response:
    """The shareable impact card (CO2 avoided, self-sufficiency, solar, savings) of the newest
    period of the range, as the app shows and shares it."""
    result, _ = _highlights_and_estimates(ctx, services, period, start, end)
    png = share_card_png(result.periods[-1], site_name=ctx.site.name)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def site_highlights(
    ctx: SiteContext,
    services: Services,
    period: Literal["day", "week", "month", "year"],
    start: date | None,
    end: date | None,
) -> Highlights:
    """The site's highlights per local ``period`` over local days ``[start, end)``, cut to the
    span that has telemetry (periods it covers only in part come out ``complete: false``)."""
    return _highlights_and_estimates(ctx, services, period, start, end)[0]


def _highlights_and_estimates(
    ctx: SiteContext,
    services: Services,
    period: Literal["day", "week", "month", "year"],
    start: date | None,
    end: date | None,
) -> tuple[Highlights, float]:
    """The highlights and the share of the range's slots priced on estimates [0-1]."""
    frame = site_energy_frame(ctx, services, start, end)
    estimated = float(frame.attrs.get("price_estimate_share", 0.0))
    return compute_highlights(frame, period, InsightSettings(tz=ctx.site.timezone)), estimated


def site_energy_frame(
    ctx: SiteContext, services: Services, start: date | None, end: date | None
) -> pd.DataFrame:
    """The site's energy frame over local days ``[start, end)`` (default: the last 7 days),
    cut to the span that has telemetry, with its tariff's prices and the grid intensity.

    Prices are the zone's stored day-ahead prices, flagged estimates where none were fetched;
    ``attrs["price_estimate_share"]`` is the share of estimated slots [0-1].
    """
    tz = ctx.site.timezone
    # pandas timestamps span 1677..2262 only; a date outside the service's years is the
    # caller's mistake, answered before it reaches pandas.
    for name, day in (("query.start", start), ("query.end", end)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise field_error(name, f"must lie between {EARLIEST} and {LATEST}")
    end = end or services.now().astimezone(ZoneInfo(tz)).date()
    start = start or end - timedelta(days=7)
    if start >= end:
        raise field_error("query.start", "must be before end")
    if (end - start).days > MAX_DAYS:
        raise field_error("query.start", f"range longer than {MAX_DAYS} days")
    window = services.store().window(ctx.site.id, _utc_midnight(start, tz), _utc_midnight(end, tz))
    if window.isna().all().all():
        raise ApiError(422, "no_telemetry", "no telemetry in this range")
    # Cut the range to the site's telemetry (a site that started last week, today's future
    # slots); a gap inside it is still an error: insights never invent energy.
    measured = window.index[window.notna().any(axis=1).to_numpy()]
    window = window.loc[measured[0] : measured[-1]]
    index = pd.DatetimeIndex(window.index)
    tariff = stored_tariff(services.accounts, ctx.site.id).tariff
    source = None if services.inputs is None else services.inputs.price_source(tariff.bidding_zone)
    try:
        prices = site_prices(
            index, tariff, _export_rules(services, ctx.site.id), price_source=source, seasonal=True
        )
    except PricingError as exc:  # only without any reference history
        raise ApiError(503, "prices_unavailable", str(exc)) from None
    try:
        frame = energy_frame_from_telemetry(
            window,
            import_eur_per_kwh=prices["import_eur_per_kwh"],
            export_eur_per_kwh=prices["export_eur_per_kwh"],
            co2_g_per_kwh=prices["co2_g_per_kwh"],
        )
    except EnergyFrameError as exc:
        raise ApiError(422, "incomplete_telemetry", str(exc)) from None
    frame.attrs["price_estimate_share"] = float(prices["price_is_estimate"].astype(float).mean())
    return frame


def _export_rules(services: Services, site_id: str) -> SiteExportRules:
    """The site's negative-price rule and feed-in cap from its equipment."""
    equipment, _ = stored_equipment(services.accounts, site_id)
    return site_home(equipment).export_rules()
