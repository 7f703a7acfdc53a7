"""Trading: read and tune optimizer parameters per fleet group or per site, with an audit trail.

A site uses its own parameter document if it has one, else its fleet group's, else the
defaults of :class:`~api.schemas.TradingParameters`. A PATCH changes only the fields it
names, writes the scope's full document, and records one audit row per changed field
(who, when, old -> new) in the same transaction.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import ValidationError

from api.accounts_store import ParameterDoc, Site
from api.deps import Services, ServicesDep, Trader, TradingReader
from api.errors import ERROR_RESPONSES, not_found, validation_error
from api.schemas import (
    AuditEntryPublic,
    FleetGroup,
    FleetGroupAssign,
    FleetSitePublic,
    ParametersPublic,
    TradingParameters,
    TradingParametersPatch,
)

router = APIRouter(prefix="/v1/trading", tags=["trading"], responses=ERROR_RESPONSES)
GroupPath = Annotated[FleetGroup, Path(description="Fleet group name")]
SiteIdPath = Annotated[str, Path(min_length=1, max_length=64)]


def _site_or_404(services: Services, site_id: str) -> Site:
    site = services.accounts.get_site(site_id)
    if site is None:
        raise not_found("site")
    return site


async def TradingSite(site_id: SiteIdPath, services: ServicesDep) -> Site:  # noqa: N802
    """The site named in the path (traders work fleet-wide; unknown ids are 404)."""
    return _site_or_404(services, site_id)


SiteDep = Annotated[Site, Depends(TradingSite)]


def _params(doc: ParameterDoc | None) -> TradingParameters:
    return (
        TradingParameters()
        if doc is None
        else TradingParameters.model_validate_json(doc.parameters_json)
    )


def group_parameters(services: Services, group: str) -> ParametersPublic:
    doc = services.accounts.get_group_parameters(group)
    return ParametersPublic(
        scope="group",
        key=group,
        source="default" if doc is None else "group",
        parameters=_params(doc),
        updated_at=None if doc is None else doc.updated_at,
        updated_by=None if doc is None else doc.updated_by,
    )


def site_parameters(services: Services, site: Site) -> ParametersPublic:
    """The parameters the optimizer uses for ``site`` and where they come from."""
    doc = services.accounts.get_site_parameters(site.id)
    if doc is None:
        inherited = group_parameters(services, site.fleet_group)
        return inherited.model_copy(update={"scope": "site", "key": site.id})
    return ParametersPublic(
        scope="site",
        key=site.id,
        source="site",
        parameters=_params(doc),
        updated_at=doc.updated_at,
        updated_by=doc.updated_by,
    )


def _changes(
    old: TradingParameters, new: TradingParameters
) -> list[tuple[str, str | None, str | None]]:
    before, after = old.model_dump(), new.model_dump()
    return [
        (name, json.dumps(before[name]), json.dumps(after[name]))
        for name in TradingParameters.model_fields
        if before[name] != after[name]
    ]


def _write(
    services: Services,
    *,
    scope: Literal["site", "group"],
    key: str,
    old: TradingParameters,
    new: TradingParameters | None,
    actor_id: str,
    fallback: TradingParameters | None = None,
) -> None:
    target = new if new is not None else fallback
    assert target is not None
    services.accounts.set_parameters(
        scope=scope,
        key=key,
        parameters_json=None if new is None else new.model_dump_json(),
        changes=_changes(old, target),
        actor_id=actor_id,
        now=services.now(),
    )


def _patched(current: TradingParameters, patch: TradingParametersPatch) -> TradingParameters:
    # A field sent as null clears it where the full model allows null (terminal value) and is
    # a 422 naming the field everywhere else.
    merged = {**current.model_dump(), **patch.model_dump(exclude_unset=True)}
    try:
        return TradingParameters.model_validate(merged)
    except ValidationError as exc:
        raise validation_error(exc) from None


@router.get("/defaults", response_model=TradingParameters)
def defaults(user: TradingReader) -> TradingParameters:
    """The built-in parameters used where neither group nor site sets any."""
    return TradingParameters()


@router.get("/sites", response_model=list[FleetSitePublic])
def fleet_sites(
    user: TradingReader,
    services: ServicesDep,
    fleet_group: Annotated[FleetGroup | None, Query()] = None,
) -> list[FleetSitePublic]:
    """Sites of the fleet (IDs and groups only, no personal data)."""
    return [
        FleetSitePublic(
            id=s.id,
            fleet_group=s.fleet_group,
            has_site_parameters=services.accounts.get_site_parameters(s.id) is not None,
        )
        for s in services.accounts.all_sites()
        if fleet_group is None or s.fleet_group == fleet_group
    ]


@router.get("/groups", response_model=list[str])
def fleet_groups(user: TradingReader, services: ServicesDep) -> list[str]:
    return services.accounts.fleet_groups()


@router.get("/groups/{group}/parameters", response_model=ParametersPublic)
def get_group_parameters(
    group: GroupPath, user: TradingReader, services: ServicesDep
) -> ParametersPublic:
    return group_parameters(services, group)


@router.patch("/groups/{group}/parameters", response_model=ParametersPublic)
def patch_group_parameters(
    group: GroupPath, body: TradingParametersPatch, user: Trader, services: ServicesDep
) -> ParametersPublic:
    """Change a fleet group's parameters (sites with their own document are not affected)."""
    old = group_parameters(services, group).parameters
    _write(services, scope="group", key=group, old=old, new=_patched(old, body), actor_id=user.id)
    return group_parameters(services, group)


@router.get("/sites/{site_id}/parameters", response_model=ParametersPublic)
def get_site_parameters(
    user: TradingReader, site: SiteDep, services: ServicesDep
) -> ParametersPublic:
    return site_parameters(services, site)


@router.patch("/sites/{site_id}/parameters", response_model=ParametersPublic)
def patch_site_parameters(
    user: Trader, site: SiteDep, body: TradingParametersPatch, services: ServicesDep
) -> ParametersPublic:
    """Give the site its own parameters: the effective values with the named fields changed."""
    old = site_parameters(services, site).parameters
    _write(services, scope="site", key=site.id, old=old, new=_patched(old, body), actor_id=user.id)
    return site_parameters(services, site)


@router.delete("/sites/{site_id}/parameters", response_model=ParametersPublic)
def reset_site_parameters(user: Trader, site: SiteDep, services: ServicesDep) -> ParametersPublic:
    """Drop the site's own parameters; it follows its fleet group again."""
    old = site_parameters(services, site).parameters
    group = group_parameters(services, site.fleet_group).parameters
    if services.accounts.get_site_parameters(site.id) is not None:
        _write(
            services, scope="site", key=site.id, old=old, new=None, actor_id=user.id, fallback=group
        )
    return site_parameters(services, site)


@router.put("/sites/{site_id}/fleet-group", response_model=FleetSitePublic)
def assign_fleet_group(
    user: Trader, site: SiteDep, body: FleetGroupAssign, services: ServicesDep
) -> FleetSitePublic:
    """Move a site to another fleet group (recorded in the audit trail as field fleet_group)."""
    if body.fleet_group != site.fleet_group:
        services.accounts.assign_fleet_group(site.id, body.fleet_group, user.id, services.now())
    return FleetSitePublic(
        id=site.id,
        fleet_group=body.fleet_group,
        has_site_parameters=services.accounts.get_site_parameters(site.id) is not None,
    )


@router.get("/audit", response_model=list[AuditEntryPublic])
def audit(
    user: TradingReader,
    services: ServicesDep,
    scope: Annotated[Literal["site", "group"] | None, Query()] = None,
    key: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEntryPublic]:
    """Who changed which parameter when (old -> new), newest first."""
    return [
        AuditEntryPublic(
            at=e.at,
            actor_id=e.actor_id,
            scope=e.scope,
            key=e.scope_key,
            field=e.field,
            old_value=e.old_value,
            new_value=e.new_value,
        )
        for e in services.accounts.audit_trail(scope, key, limit)
    ]
