"""What the app shows of a site: the live view and the current plan (site viewers)."""

from __future__ import annotations

from fastapi import APIRouter

from hbopt.api.deps import ServicesDep, SiteViewer
from hbopt.api.errors import ERROR_RESPONSES, ErrorBody
from hbopt.api.schedule import CachedPlan
from hbopt.api.schemas import DeviceReading, LivePublic, PlanPublic, SchedulePublic
from hbopt.api.site_problem import plan_reasons, stored_preferences

router = APIRouter(
    prefix="/v1/app/sites/{site_id}",
    tags=["app"],
    responses={
        **ERROR_RESPONSES,
        503: {"model": ErrorBody, "description": "No telemetry store configured"},
    },
)


@router.get("/live", response_model=LivePublic)
def live(ctx: SiteViewer, services: ServicesDep) -> LivePublic:
    """The newest reading of every device and its age (grid + = import, battery + = discharge)."""
    now = services.now()
    latest = services.store().latest(ctx.site.id)
    devices = [
        DeviceReading(
            device=name,
            ts=sample.ts,
            age_s=(now - sample.ts).total_seconds(),
            fields=dict(sample.fields),
        )
        for name, sample in sorted(latest.items())
    ]
    return LivePublic(site_id=ctx.site.id, as_of=now, devices=devices)


@router.get("/plan", response_model=PlanPublic)
def plan(ctx: SiteViewer, services: ServicesDep) -> PlanPublic:
    """The latest plan from the current slot on, with its summary (cost, violations, solver)
    and, per device, the reason for its action in the current (or next) slot."""
    now = services.now()
    stored = services.store().latest_plan(ctx.site.id)
    body = SchedulePublic.model_validate(CachedPlan.of(ctx.site.id, stored).body(now))
    return PlanPublic(
        site_id=ctx.site.id,
        created_at=body.plan_created_at,
        step_minutes=body.step_minutes,
        summary={} if stored is None else stored.summary.model_dump(mode="json"),
        slots=body.slots,
        reasons=plan_reasons(
            stored, now, ctx.site.timezone, stored_preferences(services.accounts, ctx.site.id)
        ),
    )
