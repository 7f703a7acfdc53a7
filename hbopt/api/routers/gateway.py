"""Gateway routes for Heartbeat boxes that pull: telemetry in, schedule out, acknowledgements.

A box authenticates with the token it got at pairing (``Authorization: Bearer hbb_...``); its
site is the one it was paired to, so no route takes a site id.
"""

from __future__ import annotations

from fastapi import APIRouter

from hbopt.api.deps import CurrentBox, ServicesDep
from hbopt.api.errors import ERROR_RESPONSES
from hbopt.api.routers.app import ack_public
from hbopt.api.schemas import AckIn, AckPublic

router = APIRouter(prefix="/v1/gateway", tags=["gateway"], responses=ERROR_RESPONSES)


@router.post("/acks", status_code=201, response_model=AckPublic)
def acknowledge(body: AckIn, box: CurrentBox, services: ServicesDep) -> AckPublic:
    """Report the setpoints the box applied, with the ETag of the schedule they came from."""
    ack = services.accounts.add_ack(
        site_id=box.site_id,
        box_id=box.id,
        etag=body.etag,
        applied_at=body.applied_at,
        setpoints=body.setpoints,
        now=services.now(),
    )
    return ack_public(ack)
