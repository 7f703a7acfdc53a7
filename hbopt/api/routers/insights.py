"""Energy highlights and CO2 impact of a site per local day/week/month/year (site viewers).

Telemetry comes from the store's 15-minute window, prices and grid intensity from the pricing
package (the bundled example tariff until sites carry their own), the numbers from
:func:`hbopt.insights.energy_highlights`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Query

from hbopt.api.deps import ServicesDep, SiteViewer
from hbopt.api.errors import ERROR_RESPONSES, ApiError, ErrorBody, field_error
from hbopt.api.schemas import HighlightsPublic
from hbopt.insights import EnergyFrameError, InsightSettings, energy_frame_from_telemetry
from hbopt.insights import energy_highlights as compute_highlights
from hbopt.pricing import PricingError, SiteExportRules, Tariff, load_tariff, site_prices

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
_TARIFF: list[Tariff] = []


def _tariff() -> Tariff:
    if not _TARIFF:
        path = resources.files("hbopt.pricing.tariffs") / "de_dynamic_example.toml"
        _TARIFF.append(load_tariff(Path(str(path))))
    return _TARIFF[0]


def _utc_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


@router.get("/highlights", response_model=HighlightsPublic)
def highlights(
    ctx: SiteViewer,
    services: ServicesDep,
    period: Annotated[Literal["day", "week", "month", "year"], Query()] = "day",
    start: Annotated[
        date | None, Query(description="First local day; default end - 7 days")
    ] = None,
    end: Annotated[
        date | None, Query(description="Local day after the last; default today")
    ] = None,
) -> HighlightsPublic:
    """Energy (PV, consumption, import, export, EV, heat pump, battery [kWh]), money [EUR],
    self-consumption, autarky and CO2 impact [kgCO2eq] per local calendar period."""
    tz = ctx.site.timezone
    end = end or services.now().astimezone(ZoneInfo(tz)).date()
    start = start or end - timedelta(days=7)
    if start >= end:
        raise field_error("query.start", "must be before end")
    if (end - start).days > MAX_DAYS:
        raise field_error("query.start", f"range longer than {MAX_DAYS} days")
    window = services.store().window(ctx.site.id, _utc_midnight(start, tz), _utc_midnight(end, tz))
    if window.isna().all().all():
        raise ApiError(422, "no_telemetry", "no telemetry in this range")
    index = pd.DatetimeIndex(window.index)
    try:
        prices = site_prices(index, _tariff(), SiteExportRules())
    except PricingError as exc:
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
    result = compute_highlights(frame, period, InsightSettings(tz=tz))
    table = result.table.reset_index(names="start")
    records = json.loads(table.to_json(orient="records", date_format="iso"))
    return HighlightsPublic(site_id=ctx.site.id, period=period, tz=tz, periods=records)
