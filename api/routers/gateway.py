"""Gateway routes for Heartbeat boxes that pull: telemetry in, schedule out, acknowledgements.

A box authenticates with the token it got at pairing (``Authorization: Bearer hbb_...``); its
site is the one it was paired to, so no route takes a site id.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from adapters.store import Setpoint, StoreError
from adapters.store.telemetry import Sample
from api.connections import TELEMETRY_BODY_BYTES
from api.deps import CurrentBox, ServicesDep
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.routers.app import ack_public
from api.schedule import CachedPlan
from api.schemas import (
    AckIn,
    AckPublic,
    SampleRejection,
    SchedulePublic,
    TelemetryBatch,
    TelemetryResult,
)

router = APIRouter(
    prefix="/v1/gateway",
    tags=["gateway"],
    responses={
        **ERROR_RESPONSES,
        503: {"model": ErrorBody, "description": "Store unavailable; nothing was stored, retry"},
    },
)


#: The service accepts samples this much older than the box's buffer holds, so the oldest
#: minute of a full 5-day backlog is still taken after a slow upload or a clock offset.
BACKLOG_MARGIN = timedelta(days=1)


def _store_failed() -> ApiError:
    return ApiError(
        503,
        "store_unavailable",
        "telemetry store failed; nothing of the batch was stored, send it again",
        headers={"Retry-After": "30"},
    )


@router.post("/telemetry", response_model=TelemetryResult, max_body_size=TELEMETRY_BODY_BYTES)
def post_telemetry(body: TelemetryBatch, box: CurrentBox, services: ServicesDep) -> TelemetryResult:
    """Store a batch of samples; re-sending a batch (after an outage) stores nothing twice.

    Samples older than the box's 5-day backlog, or failing the store's checks (unknown device
    or field, value out of range, timestamp in the future), are rejected one by one with their
    index and reason; the rest is stored. A 503 means nothing was stored.
    """
    store = services.store()
    now = services.now()
    days = services.settings.telemetry_backlog_days
    oldest = now - timedelta(days=days) - BACKLOG_MARGIN
    rejected: list[SampleRejection] = []
    positions: list[int] = []
    samples: list[Sample] = []
    for index, sample in enumerate(body.samples):
        if sample.ts < oldest:
            reason = f"ts: older than the {days}-day backlog (+{BACKLOG_MARGIN} margin)"
            rejected.append(SampleRejection(index=index, reason=reason))
            continue
        positions.append(index)
        samples.append(Sample(box.site_id, sample.device, sample.ts, sample.fields))
    accepted = 0
    if samples:
        try:
            result = store.write(samples)
        except StoreError:
            raise _store_failed() from None
        accepted = result.accepted
        rejected += [
            SampleRejection(index=positions[r.index], reason=r.reason) for r in result.rejected
        ]
    return TelemetryResult(accepted=accepted, rejected=sorted(rejected, key=lambda r: r.index))


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


@router.get(
    "/schedule",
    response_model=SchedulePublic,
    responses={304: {"description": "Unchanged since the ETag sent in If-None-Match"}},
)
async def get_schedule(request: Request, box: CurrentBox, services: ServicesDep) -> Response:
    """The site's schedule from the current slot on and the live setpoints (current slot).

    Send the last ``ETag`` in ``If-None-Match``: while neither a new plan arrived nor the
    current slot ended, the answer is 304 without a body.
    """
    # async: the common case (cached plan, 304) is a few microseconds of work, cheaper on the
    # event loop than a hop to the thread pool; only a store read goes to a worker thread.
    cached = services.plan_cache.fresh(box.site_id)
    if cached is None:
        cached = await run_in_threadpool(services.plan_cache.load, services.plans, box.site_id)
    if not services.accounts.optimization_enabled(box.site_id):
        cached = CachedPlan.of(box.site_id, None)  # switched off: the box runs its own logic
    now = services.now()
    etag = cached.etag(now)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return JSONResponse(cached.body(now), headers=headers)


@router.post("/acks", status_code=201, response_model=AckPublic)
def acknowledge(body: AckIn, box: CurrentBox, services: ServicesDep) -> AckPublic:
    """Report the setpoints the box applied, with the ETag of the schedule they came from."""
    applied = []
    for name, value in body.setpoints.items():
        device, quantity = name.split("-", 1)
        applied.append(Setpoint(device, quantity, body.applied_at, value))
    services.plans.save_applied(box.site_id, applied)  # a busy database: 503 by the handler
    ack = services.accounts.add_ack(
        site_id=box.site_id,
        box_id=box.id,
        etag=body.etag,
        applied_at=body.applied_at,
        setpoints=body.setpoints,
        now=services.now(),
    )
    return ack_public(ack)
