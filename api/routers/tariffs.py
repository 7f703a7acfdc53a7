"""The site's retail tariff: a shipped tariff by id, or the owner's own TOML file.

Site viewers read it; only the owner changes it. Every tariff is validated by the pricing
package's typed model (unknown keys, missing or invalid fields, overlapping grid-fee windows
are rejected with a 422 naming the field); what is stored is named in the site's settings and
used by every plan, what-if and highlight of the site from then on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from api.accounts_store import TariffDoc
from api.deps import CurrentUser, ServicesDep, SiteOwner, SiteViewer
from api.errors import ERROR_RESPONSES, field_error
from api.site_problem import DEFAULT_TARIFF_ID, SiteTariff, stored_tariff
from pricing import Tariff, TariffConfigError
from pricing.tariff import catalog_tariff, parse_tariff, tariff_catalog

router = APIRouter(prefix="/v1/app", tags=["app"], responses=ERROR_RESPONSES)
UPLOADED = "uploaded"
MAX_TOML_BYTES = 64 * 1024


class TariffSummary(BaseModel):
    id: str = Field(description="Tariff id, used in PUT /v1/app/sites/{site_id}/tariff")
    name: str
    kind: Literal["dynamic", "fixed"] = Field(
        description="dynamic: spot + margin; fixed: a constant energy price"
    )
    bidding_zone: str = Field(description="Day-ahead market the tariff follows")


class TariffChoice(BaseModel):
    tariff_id: str = Field(min_length=1, max_length=64, description="A shipped tariff's id")


class SiteTariffPublic(BaseModel):
    site_id: str
    tariff_id: str = Field(description=f"A shipped tariff's id, or {UPLOADED!r}")
    source: Literal["default", "catalog", "uploaded"] = Field(
        description="default: the shipped German dynamic example, used until the owner chooses"
    )
    name: str
    bidding_zone: str
    tariff: dict[str, Any] = Field(description="All parameters, net of VAT [EUR/kWh]")
    updated_at: datetime | None
    updated_by: str | None


def _summary(tariff_id: str, tariff: Tariff) -> TariffSummary:
    kind: Literal["dynamic", "fixed"] = (
        "dynamic" if tariff.fixed_energy_eur_per_kwh is None else "fixed"
    )
    zone = tariff.bidding_zone
    return TariffSummary(id=tariff_id, name=tariff.name, kind=kind, bidding_zone=zone)


def _public(site_id: str, choice: SiteTariff) -> SiteTariffPublic:
    doc = choice.doc
    source: Literal["default", "catalog", "uploaded"] = "default"
    if doc is not None:
        source = "uploaded" if doc.tariff_toml is not None else "catalog"
    tariff = choice.tariff
    return SiteTariffPublic(
        site_id=site_id,
        tariff_id=choice.tariff_id,
        source=source,
        name=tariff.name,
        bidding_zone=tariff.bidding_zone,
        tariff=tariff.model_dump(mode="json"),
        updated_at=None if doc is None else doc.updated_at,
        updated_by=None if doc is None else doc.updated_by,
    )


@router.get("/tariffs", response_model=list[TariffSummary])
def list_tariffs(user: CurrentUser) -> list[TariffSummary]:
    """The shipped tariffs a site can choose by id (illustrative 2025 German levels)."""
    return [_summary(tid, catalog_tariff(tid)) for tid in tariff_catalog()]


@router.get("/sites/{site_id}/tariff", response_model=SiteTariffPublic)
def get_site_tariff(ctx: SiteViewer, services: ServicesDep) -> SiteTariffPublic:
    """The site's tariff with all its parameters (``source: default`` until the owner sets one)."""
    return _public(ctx.site.id, stored_tariff(services.accounts, ctx.site.id))


@router.put("/sites/{site_id}/tariff", response_model=SiteTariffPublic)
def choose_site_tariff(
    body: TariffChoice, ctx: SiteOwner, services: ServicesDep
) -> SiteTariffPublic:
    """Choose a shipped tariff by id (see ``GET /v1/app/tariffs``)."""
    if body.tariff_id not in tariff_catalog():
        known = ", ".join(tariff_catalog())
        raise field_error("body.tariff_id", f"unknown tariff; known: {known}")
    doc = TariffDoc(ctx.site.id, body.tariff_id, None, services.now(), ctx.user.id)
    services.accounts.set_tariff(doc)
    return _public(ctx.site.id, SiteTariff(body.tariff_id, doc))


TomlBody = Annotated[
    str,
    Body(
        # declared as text/plain (what generic clients and OpenAPI tools can send);
        # application/toml is accepted the same way
        media_type="text/plain",
        description="A tariff TOML file (the format of pricing/tariffs/de_dynamic_example.toml)",
    ),
]


@router.put("/sites/{site_id}/tariff/toml", response_model=SiteTariffPublic)
def upload_site_tariff(body: TomlBody, ctx: SiteOwner, services: ServicesDep) -> SiteTariffPublic:
    """Upload the site's own tariff as TOML; a 422 names the first missing or invalid field
    (``body.grid_fee.low_eur_per_kwh``), ``body`` itself when the text is not TOML."""
    if len(body.encode("utf-8")) > MAX_TOML_BYTES:
        raise field_error("body", f"larger than {MAX_TOML_BYTES} bytes")
    try:
        parse_tariff(body, where="body")
    except TariffConfigError as exc:
        where = "body" if exc.field in ("", "(toml)", "(top level)") else f"body.{exc.field}"
        raise field_error(where, exc.reason) from None
    doc = TariffDoc(ctx.site.id, UPLOADED, body, services.now(), ctx.user.id)
    services.accounts.set_tariff(doc)
    return _public(ctx.site.id, SiteTariff(UPLOADED, doc))


__all__ = ["DEFAULT_TARIFF_ID", "router"]
