"""The physical equipment of a site: PV, battery, wallboxes, heat pumps, grid connection.

Site viewers read it; only the owner sets it. Supporters hold read access by the privacy terms
(a grant is read access), so an installer enters the equipment with the owner or the owner
enters it from the installer's protocol. A PUT is validated twice: by the pydantic model
(ranges per field) and by building the optimizer's site from it, whose rules (SOC window,
comfort band, unique device names) come back as a 422 naming the equipment field.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.accounts_store import EquipmentDoc
from api.analysis_schemas import EquipmentPublic
from api.deps import ServicesDep, SiteOwner, SiteViewer
from api.errors import ERROR_RESPONSES, field_error
from api.site_problem import stored_equipment
from scheduler.site_model import EquipmentError, SiteEquipment, optimizer_site

router = APIRouter(prefix="/v1/app/sites/{site_id}", tags=["app"], responses=ERROR_RESPONSES)


def equipment_public(
    site_id: str, equipment: SiteEquipment, doc: EquipmentDoc | None
) -> EquipmentPublic:
    return EquipmentPublic(
        site_id=site_id,
        source="default" if doc is None else "site",
        equipment=equipment,
        updated_at=None if doc is None else doc.updated_at,
        updated_by=None if doc is None else doc.updated_by,
    )


@router.get("/equipment", response_model=EquipmentPublic)
def get_equipment(ctx: SiteViewer, services: ServicesDep) -> EquipmentPublic:
    """The site's equipment (``source: default``: the typical home, until the owner sets it)."""
    equipment, doc = stored_equipment(services.accounts, ctx.site.id)
    return equipment_public(ctx.site.id, equipment, doc)


@router.put("/equipment", response_model=EquipmentPublic)
def set_equipment(body: SiteEquipment, ctx: SiteOwner, services: ServicesDep) -> EquipmentPublic:
    """Replace the site's equipment (units in the field names; SOC 0-1, azimuth 180 = south)."""
    try:
        optimizer_site(body)
    except EquipmentError as exc:
        raise field_error(f"body.{exc.field}", exc.reason) from None
    doc = EquipmentDoc(ctx.site.id, body.model_dump_json(), services.now(), ctx.user.id)
    services.accounts.set_equipment(doc)
    return equipment_public(ctx.site.id, body, doc)
