"""The owner's device settings in the app: charging mode and departure per wallbox, comfort
band per heat pump. Site viewers read them; only the owner changes them. The scheduler reads
them from the account store when it builds a site's problem.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Path

from api.accounts_store import DevicePreferences
from api.deps import ServicesDep, SiteOwner, SiteViewer
from api.errors import ERROR_RESPONSES, not_found
from api.schemas import (
    DeviceName,
    HeatPumpPreferences,
    HeatPumpPreferencesPublic,
    WallboxPreferences,
    WallboxPreferencesPublic,
)

router = APIRouter(prefix="/v1/app/sites/{site_id}", tags=["app"], responses=ERROR_RESPONSES)
NamePath = Annotated[DeviceName, Path()]


def _stored(
    services: ServicesDep, site_id: str, kind: Literal["wallbox", "heatpump"]
) -> list[DevicePreferences]:
    return services.accounts.device_preferences(site_id, kind)


def _wallbox(prefs: DevicePreferences) -> WallboxPreferencesPublic:
    stored = json.loads(prefs.preferences_json)
    return WallboxPreferencesPublic.model_validate(
        {**stored, "name": prefs.name, "updated_at": prefs.updated_at}
    )


def _heatpump(prefs: DevicePreferences) -> HeatPumpPreferencesPublic:
    stored = json.loads(prefs.preferences_json)
    return HeatPumpPreferencesPublic.model_validate(
        {**stored, "name": prefs.name, "updated_at": prefs.updated_at}
    )


def _save(
    services: ServicesDep,
    ctx: SiteOwner,
    kind: Literal["wallbox", "heatpump"],
    name: str,
    body: WallboxPreferences | HeatPumpPreferences,
) -> DevicePreferences:
    prefs = DevicePreferences(
        site_id=ctx.site.id,
        kind=kind,
        name=name,
        preferences_json=body.model_dump_json(),
        updated_at=services.now(),
        updated_by=ctx.user.id,
    )
    services.accounts.set_device_preferences(prefs)
    return prefs


@router.get("/wallboxes", response_model=list[WallboxPreferencesPublic])
def list_wallboxes(ctx: SiteViewer, services: ServicesDep) -> list[WallboxPreferencesPublic]:
    return [_wallbox(p) for p in _stored(services, ctx.site.id, "wallbox")]


@router.get("/wallboxes/{name}", response_model=WallboxPreferencesPublic)
def get_wallbox(name: NamePath, ctx: SiteViewer, services: ServicesDep) -> WallboxPreferencesPublic:
    for prefs in _stored(services, ctx.site.id, "wallbox"):
        if prefs.name == name:
            return _wallbox(prefs)
    raise not_found("wallbox")


@router.put("/wallboxes/{name}", response_model=WallboxPreferencesPublic)
def set_wallbox(
    name: NamePath, body: WallboxPreferences, ctx: SiteOwner, services: ServicesDep
) -> WallboxPreferencesPublic:
    """Set the charging mode, the next departure and the energy wanted by then."""
    return _wallbox(_save(services, ctx, "wallbox", name, body))


@router.get("/heatpumps", response_model=list[HeatPumpPreferencesPublic])
def list_heatpumps(ctx: SiteViewer, services: ServicesDep) -> list[HeatPumpPreferencesPublic]:
    return [_heatpump(p) for p in _stored(services, ctx.site.id, "heatpump")]


@router.put("/heatpumps/{name}", response_model=HeatPumpPreferencesPublic)
def set_heatpump(
    name: NamePath, body: HeatPumpPreferences, ctx: SiteOwner, services: ServicesDep
) -> HeatPumpPreferencesPublic:
    """Set the comfort band (soft bounds the optimizer keeps the store temperature in)."""
    return _heatpump(_save(services, ctx, "heatpump", name, body))
