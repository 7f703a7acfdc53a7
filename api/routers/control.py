"""Control routes: a site's control status, the owner's optimization switch, box addresses.

The control loop (in the service process or its own) publishes each site's status into the
account database; these routes read it, so they answer the same whichever process controls.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.accounts_store import Site
from api.control_schemas import (
    BoxLinkIn,
    BoxLinkPublic,
    OptimizationPublic,
    OptimizationSwitch,
    SiteStatusPublic,
)
from api.deps import FactoryService, Services, ServicesDep, SiteOwner, SiteViewer
from api.errors import ERROR_RESPONSES, not_found
from api.site_problem import plan_reasons, stored_preferences

router = APIRouter(tags=["control"], responses=ERROR_RESPONSES)
#: A status older than this (wall clock) means the control loop is not running.
STALE_AFTER = timedelta(minutes=2)


@router.get("/v1/app/sites/{site_id}/status", response_model=SiteStatusPublic)
async def site_status(ctx: SiteViewer, services: ServicesDep) -> SiteStatusPublic:
    """The site's control state (remote / schedule only / fallback / unreachable / not
    configured / off), last contact with the box, the last plan and its reasons, the last error."""
    return await run_in_threadpool(status_public, services, ctx.site)


def status_public(services: Services, site: Site) -> SiteStatusPublic:
    accounts = services.accounts
    enabled = accounts.optimization_enabled(site.id)
    stored = accounts.site_status(site.id)
    doc = {} if stored is None else json.loads(stored[0])
    error = doc.get("last_error")
    if stored is None:
        doc = _without_control_loop(services, site, enabled)
    elif datetime.now(UTC) - stored[1] > STALE_AFTER:
        error = f"the control loop has not reported since {stored[1]:%Y-%m-%d %H:%M} UTC"
    reasons = []
    if doc.get("state") not in ("off", "not_configured"):
        try:
            plan = services.plans.latest_plan(site.id)
        except sa.exc.OperationalError:
            plan = None
        prefs = stored_preferences(accounts, site.id)
        reasons = plan_reasons(plan, services.now(), site.timezone, prefs)
    return SiteStatusPublic(
        site_id=site.id,
        state=doc["state"],
        state_text=doc["state_text"],
        link=doc.get("link"),
        last_contact=doc.get("last_contact"),
        last_plan_at=doc.get("last_plan_at"),
        last_error=error,
        reasons=reasons,
        optimization=enabled,
        last_cycle_triggers=list(doc.get("triggers", [])),
        updated_at=doc.get("updated_at"),
    )


def _without_control_loop(services: Services, site: Site, enabled: bool) -> dict[str, str]:
    """What the database alone says before the control loop has reported."""
    accounts = services.accounts
    if not enabled:
        return {"state": "off", "state_text": "optimization switched off"}
    if not any(b.revoked_at is None for b in accounts.boxes_of_site(site.id)):
        return {"state": "not_configured", "state_text": "not configured: no box is paired"}
    if accounts.get_equipment(site.id) is None:
        text = "not configured: the equipment is not entered yet"
        return {"state": "not_configured", "state_text": text}
    return {"state": "unreachable", "state_text": "waiting for the control loop"}


@router.get("/v1/app/sites/{site_id}/optimization", response_model=OptimizationPublic)
def get_optimization(ctx: SiteViewer, services: ServicesDep) -> OptimizationPublic:
    return OptimizationPublic(
        site_id=ctx.site.id, enabled=services.accounts.optimization_enabled(ctx.site.id)
    )


@router.put("/v1/app/sites/{site_id}/optimization", response_model=OptimizationPublic)
def set_optimization(
    body: OptimizationSwitch, ctx: SiteOwner, services: ServicesDep
) -> OptimizationPublic:
    """Switch optimization on or off; off hands the box back to its own logic within seconds."""
    services.accounts.set_optimization(ctx.site.id, body.enabled, ctx.user.id, services.now())
    return OptimizationPublic(site_id=ctx.site.id, enabled=body.enabled)


@router.put("/v1/ops/box-links", response_model=BoxLinkPublic)
def set_box_link(body: BoxLinkIn, user: FactoryService, services: ServicesDep) -> BoxLinkPublic:
    """Record the Modbus TCP address the service reaches a registered box at (operator)."""
    accounts = services.accounts
    if not accounts.starter_code_registered(body.serial):
        raise not_found("box serial")
    accounts.set_box_link(body.serial, body.host, body.port, body.unit, services.now())
    link = accounts.box_link(body.serial)
    assert link is not None
    return BoxLinkPublic(
        serial=link.serial,
        host=link.host,
        port=link.port,
        unit=link.unit,
        updated_at=link.updated_at,
    )
