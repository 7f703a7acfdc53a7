"""The monthly energy report of a site as a PDF (site viewers)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Path, Response

from api.deps import ServicesDep, SiteViewer
from api.errors import ERROR_RESPONSES, ApiError
from api.routers.insights import site_energy_frame
from insights import InsightSettings
from insights.report import SessionTarget, monthly_report, monthly_report_pdf

router = APIRouter(prefix="/v1/app/sites/{site_id}", tags=["app"], responses=ERROR_RESPONSES)

Month = Annotated[
    str,
    Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="Local calendar month, YYYY-MM"),
]


@router.get(
    "/reports/{month}.pdf",
    response_class=Response,
    responses={
        200: {
            "description": "The month's energy report (A4 PDF with a text layer)",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def monthly_report_route(month: Month, ctx: SiteViewer, services: ServicesDep) -> Response:
    """Energy in and out, self-sufficiency, bill and savings, CO2, car sessions and the month's
    notable moments; every figure equals the highlights of the same month."""
    year, mon = (int(x) for x in month.split("-"))
    if not 2000 <= year <= 2100:
        raise ApiError(422, "validation_error", "month: year must be in 2000..2100")
    first = date(year, mon, 1)
    after = date(year + (mon == 12), mon % 12 + 1, 1)
    frame = site_energy_frame(ctx, services, first, after)
    targets: list[SessionTarget] = []
    if services.notifications is not None:
        start, end = pd.Timestamp(frame.index[0]), pd.Timestamp(frame.index[-1])
        targets = [
            SessionTarget(
                pd.Timestamp(s.plugged_in), pd.Timestamp(s.plugged_out), s.target_kwh, s.met
            )
            for s in services.notifications.sessions(ctx.site.id, start, end + pd.Timedelta(days=2))
        ]
    report = monthly_report(frame, ctx.site.name, InsightSettings(tz=ctx.site.timezone), targets)
    filename = f"energy-report-{month}.pdf"
    return Response(
        monthly_report_pdf(report),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
