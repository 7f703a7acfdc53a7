"""What the app shows of a site: the live view (also as a stream) and the current plan.

The live stream sends the live view as server-sent events. Access is checked like on every
route when the stream opens, and again before every event: when the token expires, the account
is deleted or the owner revokes the grant, the stream ends at once with an ``end`` event, so
a page never goes on showing what the API would now refuse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from adapters.store import PlanSummary
from api.departures import departure_outlooks
from api.deps import Services, ServicesDep, SiteContext, SiteViewer, site_role
from api.errors import ERROR_RESPONSES, ErrorBody
from api.schedule import CachedPlan
from api.schemas import (
    DeviceReading,
    LivePublic,
    PlanPublic,
    PlanSummaryPublic,
    SchedulePublic,
)
from api.security import decode_access_token
from api.site_problem import plan_reasons, stored_equipment, stored_preferences

log = logging.getLogger(__name__)

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
    return live_view(ctx, services)


@router.get(
    "/live/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events: `live` (data: the live view as JSON) every "
            "few seconds, then one `end` (data: {reason}) when the stream closes",
            "content": {
                "text/event-stream": {
                    "schema": {
                        "description": "One server-sent event; data is JSON text",
                        "type": "object",
                        "properties": {
                            "event": {"type": "string", "enum": ["live", "end"]},
                            "data": {"type": "string"},
                        },
                        "required": ["event", "data"],
                    }
                }
            },
        }
    },
)
async def live_stream(
    ctx: SiteViewer, services: ServicesDep, request: Request
) -> StreamingResponse:
    """The live view as a stream of server-sent events (what ``GET .../live`` returns).

    The stream ends with an ``end`` event whose reason is ``token_expired``, ``access_lost``
    (grant revoked, account or site deleted) or ``stream_limit`` (reconnect to go on).
    """
    services.store()  # 503 now rather than a broken stream
    token = request.headers.get("authorization", "").partition(" ")[2]
    events = services.throttles.streams.guard(
        ctx.user.id, _live_events(ctx, services, token, request)
    )
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def _still_admitted(services: Services, ctx: SiteContext, token: str) -> str | None:
    """Why the caller may no longer see the site (None: they still may)."""
    secret = services.settings.jwt_secret.get_secret_value()
    claims = decode_access_token(token, services.now(), secret)
    if claims is None:
        return "token_expired"
    user = services.accounts.get_user(ctx.user.id)
    if user is not None and user.token_epoch != claims.epoch:
        return "token_expired"
    site = services.accounts.get_site(ctx.site.id)
    if user is None or site is None or site_role(services.accounts, user, site) is None:
        return "access_lost"
    return None


async def _live_events(
    ctx: SiteContext, services: Services, token: str, request: Request
) -> AsyncIterator[str]:
    settings = services.settings
    ends_at = time.monotonic() + settings.live_stream_max_s
    while True:
        reason = _still_admitted(services, ctx, token)
        if reason is not None:
            yield _sse("end", f'{{"reason": "{reason}"}}')
            return
        view = await run_in_threadpool(live_view, ctx, services)
        yield _sse("live", view.model_dump_json())
        if time.monotonic() >= ends_at:
            yield _sse("end", '{"reason": "stream_limit"}')
            return
        await asyncio.sleep(settings.live_stream_interval_s)
        if await request.is_disconnected():
            return


def public_summary(summary: PlanSummary | None) -> PlanSummaryPublic:
    """A stored plan's summary as the API types it; a field of an unexpected type (a plan
    stored by some other version) is left out rather than failing the whole view."""
    doc = {} if summary is None else summary.model_dump(mode="json")
    try:
        return PlanSummaryPublic.model_validate(doc)
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        log.warning("plan summary fields of unexpected type left out: %s", sorted(bad))
        return PlanSummaryPublic.model_validate({k: v for k, v in doc.items() if k not in bad})


def live_view(ctx: SiteContext, services: Services) -> LivePublic:
    """The live view of the caller's site now."""
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
    stored = services.plans.latest_plan(ctx.site.id)
    body = SchedulePublic.model_validate(CachedPlan.of(ctx.site.id, stored).body(now))
    preferences = stored_preferences(services.accounts, ctx.site.id)
    equipment, _ = stored_equipment(services.accounts, ctx.site.id)
    return PlanPublic(
        site_id=ctx.site.id,
        created_at=body.plan_created_at,
        step_minutes=body.step_minutes,
        summary=public_summary(None if stored is None else stored.summary),
        slots=body.slots,
        reasons=plan_reasons(stored, now, ctx.site.timezone, preferences),
        departures=departure_outlooks(stored, now, equipment, preferences),
    )
