"""The app's routes: the caller's account, sites, grants, boxes, export and deletion.

Owners, supporters and the factory service use the same site routes; the guard on each route
decides who may (see :mod:`api.deps`). Ids of other tenants' objects are answered 404.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from api.accounts_store import Box, SetpointAck, Site
from api.deps import (
    CurrentUser,
    Customer,
    ServicesDep,
    SiteLister,
    SiteOwner,
    SiteRoleName,
    SiteViewer,
    site_role,
)
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, not_found
from api.routers.auth import user_public
from api.schemas import (
    AckPublic,
    BoxPaired,
    BoxPairRequest,
    BoxPublic,
    FactoryServiceSwitch,
    GrantPublic,
    SiteCreate,
    SitePublic,
    SiteUpdate,
    UserPublic,
)
from api.security import new_token, token_digest
from api.site_data import delete_sites_everywhere, site_export

router = APIRouter(
    prefix="/v1/app",
    tags=["app"],
    responses={**ERROR_RESPONSES, 409: {"model": ErrorBody, "description": "Conflict"}},
)
UserIdPath = Annotated[str, Path(min_length=1, max_length=64, description="Supporter's user ID")]
BoxIdPath = Annotated[str, Path(min_length=1, max_length=64)]


def site_public(site: Site, role: SiteRoleName) -> SitePublic:
    return SitePublic(
        id=site.id,
        name=site.name,
        timezone=site.timezone,
        fleet_group=site.fleet_group,
        factory_service=site.factory_service,
        created_at=site.created_at,
        your_role=role,
    )


def box_public(box: Box) -> BoxPublic:
    return BoxPublic(
        id=box.id,
        serial=box.serial,
        created_at=box.created_at,
        revoked_at=box.revoked_at,
        active=box.revoked_at is None,
    )


def ack_public(ack: SetpointAck) -> AckPublic:
    return AckPublic(
        id=ack.id,
        box_id=ack.box_id,
        etag=ack.etag,
        applied_at=ack.applied_at,
        received_at=ack.received_at,
        setpoints=json.loads(ack.setpoints_json),
    )


# -- account --------------------------------------------------------------------------------------
@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    """The signed-in account; its ``id`` is what an owner enters to grant support access."""
    return user_public(user)


@router.delete("/me", status_code=204, response_class=Response)
def delete_me(request: Request, user: CurrentUser, services: ServicesDep) -> Response:
    """Delete the account and all its data: sites, telemetry, plans, grants, boxes, logs."""
    services.request_log.flush()  # buffered rows of this user are deleted with the rest
    site_ids = [s.id for s in services.accounts.sites_owned(user.id)]
    delete_sites_everywhere(services, site_ids)
    if services.notifications is not None:
        services.notifications.delete_sites(site_ids)
        services.notifications.delete_user(user.id)
    services.accounts.delete_user(user.id)
    # The log line of this very request must not bring the user id back.
    request.state.principal = None
    return Response(status_code=204)


@router.get(
    "/me/export",
    response_class=Response,
    responses={
        200: {
            "description": "Everything held about the account as one JSON document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def export_me(user: CurrentUser, services: ServicesDep) -> Response:
    """Everything the service holds about the signed-in person (GDPR Art. 15/20): the account,
    sessions, mailed links, supporter grants, parameter changes, the request log with IP
    addresses, and each owned site's full export (telemetry included). Hashes are left out."""
    services.request_log.flush()  # the log rows of the last second belong in it too
    document = {
        "format": "hbopt-account-export/1",
        "exported_at": services.now().isoformat(),
        **services.accounts.personal_data(user.id),
        "sites_owned": [site_export(services, s) for s in services.accounts.sites_owned(user.id)],
        "notifications": None
        if services.notifications is None
        else services.notifications.export_user(user.id),
    }
    return Response(
        json.dumps(document, indent=1, default=str),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{user.id}-export.json"'},
    )


# -- sites ----------------------------------------------------------------------------------------
@router.get("/sites", response_model=list[SitePublic])
def list_sites(user: SiteLister, services: ServicesDep) -> list[SitePublic]:
    """Sites the caller owns, was granted, or (factory service) that have the switch on."""
    accounts = services.accounts
    if user.role == "factory_service":
        candidates = accounts.sites_in_factory_service()
    else:
        candidates = accounts.sites_owned(user.id) + accounts.sites_granted(user.id)
    out = []
    for site in candidates:
        role = site_role(accounts, user, site)
        if role is not None:
            out.append(site_public(site, role))
    return out


@router.post("/sites", status_code=201, response_model=SitePublic)
def create_site(body: SiteCreate, user: Customer, services: ServicesDep) -> SitePublic:
    """Create a site owned by the caller (in fleet group ``default``)."""
    site = services.accounts.create_site(
        user.id, body.name, body.timezone, "default", services.now()
    )
    return site_public(site, "owner")


@router.get("/sites/{site_id}", response_model=SitePublic)
def get_site(ctx: SiteViewer) -> SitePublic:
    return site_public(ctx.site, ctx.role)


@router.patch("/sites/{site_id}", response_model=SitePublic)
def update_site(body: SiteUpdate, ctx: SiteOwner, services: ServicesDep) -> SitePublic:
    services.accounts.update_site(ctx.site.id, **body.model_dump(exclude_none=True))
    site = services.accounts.get_site(ctx.site.id)
    assert site is not None
    return site_public(site, ctx.role)


@router.delete("/sites/{site_id}", status_code=204, response_class=Response)
def delete_site(ctx: SiteOwner, services: ServicesDep) -> Response:
    """Delete a site with its telemetry, plans, boxes and grants."""
    services.request_log.flush()
    delete_sites_everywhere(services, [ctx.site.id])
    services.accounts.delete_site(ctx.site.id)
    return Response(status_code=204)


@router.put("/sites/{site_id}/factory-service", response_model=SitePublic)
def set_factory_service(
    body: FactoryServiceSwitch, ctx: SiteOwner, services: ServicesDep
) -> SitePublic:
    """Let the vendor's factory service access the site while ``enabled`` is true."""
    services.accounts.update_site(ctx.site.id, factory_service=body.enabled)
    site = services.accounts.get_site(ctx.site.id)
    assert site is not None
    return site_public(site, ctx.role)


@router.get(
    "/sites/{site_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The site's data as one machine-readable JSON document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def export_site(ctx: SiteOwner, services: ServicesDep) -> Response:
    """All data of the site as one JSON document (site, grants, boxes, parameters, telemetry)."""
    document = site_export(services, ctx.site)
    filename = f"{ctx.site.id}-export.json"
    return Response(
        json.dumps(document, indent=1, default=str),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- grants ---------------------------------------------------------------------------------------
@router.get("/sites/{site_id}/grants", response_model=list[GrantPublic])
def list_grants(ctx: SiteOwner, services: ServicesDep) -> list[GrantPublic]:
    return [
        GrantPublic(site_id=g.site_id, supporter_id=g.supporter_id, created_at=g.created_at)
        for g in services.accounts.grants_of_site(ctx.site.id)
    ]


@router.put("/sites/{site_id}/grants/{supporter_id}", response_model=GrantPublic)
def grant_support(supporter_id: UserIdPath, ctx: SiteOwner, services: ServicesDep) -> GrantPublic:
    """Give the customer account ``supporter_id`` read access to this site (idempotent)."""
    supporter = services.accounts.get_user(supporter_id)
    if supporter is None or supporter.role != "customer" or supporter.confirmed_at is None:
        raise not_found("user")
    if supporter.id == ctx.user.id:
        raise ApiError(409, "conflict", "the owner already has access")
    grant = services.accounts.add_grant(ctx.site.id, supporter.id, services.now())
    return GrantPublic(
        site_id=grant.site_id, supporter_id=grant.supporter_id, created_at=grant.created_at
    )


@router.delete("/sites/{site_id}/grants/{supporter_id}", status_code=204, response_class=Response)
def revoke_support(supporter_id: UserIdPath, ctx: SiteOwner, services: ServicesDep) -> Response:
    if not services.accounts.remove_grant(ctx.site.id, supporter_id):
        raise not_found("grant")
    return Response(status_code=204)


# -- boxes ----------------------------------------------------------------------------------------
@router.get("/sites/{site_id}/boxes", response_model=list[BoxPublic])
def list_boxes(ctx: SiteViewer, services: ServicesDep) -> list[BoxPublic]:
    return [box_public(b) for b in services.accounts.boxes_of_site(ctx.site.id)]


@router.post("/sites/{site_id}/boxes", status_code=201, response_model=BoxPaired)
async def pair_box(body: BoxPairRequest, ctx: SiteOwner, services: ServicesDep) -> BoxPaired:
    """Pair a box with the starter code printed on it (single use); returns the box token once.

    The app hands the token to the box over its local set-up link; the service keeps only its
    hash. A wrong serial or code is answered like a used one, so codes cannot be probed.
    """
    code_hash = services.accounts.unused_starter_code_hash(body.serial)
    # An unknown or used serial is checked against a dummy hash, so its answer takes as long
    # as a wrong code for a valid one and does not tell which serials are unused.
    stored = code_hash if code_hash is not None else services.throttles.dummy_hash
    valid = await services.throttles.hash_work(services.hasher.verify, body.starter_code, stored)
    if code_hash is None or not valid:
        raise ApiError(409, "pairing_failed", "unknown serial, wrong or used starter code")
    token = new_token("hbb_")
    box = services.accounts.pair_box(body.serial, ctx.site.id, token_digest(token), services.now())
    if box is None:
        raise ApiError(409, "pairing_failed", "unknown serial, wrong or used starter code")
    return BoxPaired(box=box_public(box), token=token)


@router.delete("/sites/{site_id}/boxes/{box_id}", status_code=204, response_class=Response)
def revoke_box(box_id: BoxIdPath, ctx: SiteOwner, services: ServicesDep) -> Response:
    """Revoke the box's token at once; the box must be paired again with a new starter code."""
    box = services.accounts.get_box(box_id)
    if box is None or box.site_id != ctx.site.id:
        raise not_found("box")
    services.accounts.revoke_box(box.id, services.now())
    return Response(status_code=204)


@router.get("/sites/{site_id}/acks", response_model=list[AckPublic])
def list_acks(
    ctx: SiteViewer,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AckPublic]:
    """Setpoints the site's box reported as applied, newest first."""
    return [ack_public(a) for a in services.accounts.acks_of_site(ctx.site.id, limit)]
