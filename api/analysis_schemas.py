"""Request and response models of the equipment, what-if and fleet-flexibility routes.

The equipment itself is :class:`scheduler.site_model.SiteEquipment` (the scheduler builds
the optimizer's site from the same model); inputs forbid unknown fields like every input here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.schemas import (
    In,
    ScheduleSlot,
    TradingParameters,
    TradingParametersPatch,
    UtcDatetime,
)
from scheduler.site_model import SiteEquipment

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_SLOTS = 192


def _plausible(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 2000-01-01 and 2100-01-01")
    return value


PlanStart = Annotated[UtcDatetime, AfterValidator(_plausible)]
Price = Annotated[float, Field(ge=-1.0, le=5.0, allow_inf_nan=False)]


class EquipmentPublic(BaseModel):
    site_id: str
    source: Literal["site", "default"] = Field(
        description="site: set by the owner; default: the typical home, used until then"
    )
    equipment: SiteEquipment
    updated_at: datetime | None
    updated_by: str | None


class PriceOverrides(In):
    """Prices to solve with instead of the bundled day-ahead prices through the tariff.

    The spot shift is applied first (the tariff recomputes import and export price from the
    shifted spot); per-slot lists then replace import or export prices outright.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    spot_shift_eur_per_kwh: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Added to every slot's spot price [EUR/kWh]"
    )
    import_eur_per_kwh: list[Price] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SLOTS,
        description="Retail import price per slot [EUR/kWh], one per slot of the horizon",
    )
    export_eur_per_kwh: list[Price] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SLOTS,
        description="Feed-in price per slot [EUR/kWh], one per slot of the horizon",
    )


class WhatIfRequest(In):
    """Solve a site with changed parameters or prices; nothing is stored or sent to the box."""

    parameters: TradingParametersPatch | None = Field(
        default=None, description="Parameters to change against the site's current ones"
    )
    prices: PriceOverrides | None = None
    start: PlanStart | None = Field(
        default=None, description="Horizon start (floored to the 15-min slot); default now"
    )
    horizon_hours: int = Field(default=24, ge=1, le=48, description="Horizon length [h]")


class PlanTotals(BaseModel):
    """A plan's totals over its horizon (money [EUR], energy [kWh])."""

    status: str
    cost_eur: float = Field(description="Import cost - export revenue")
    objective_eur: float
    battery_wear_eur: float
    terminal_value_eur: float = Field(description="Value of energy and heat left at the end")
    penalty_eur: float
    import_kwh: float
    export_kwh: float
    pv_kwh: float
    battery_throughput_kwh: float = Field(description="(charge + discharge) / 2")
    battery_cycles: float = Field(description="Throughput / usable capacity")
    co2_kg: float | None
    violations: dict[str, float] = Field(description="Soft target missed -> amount")


class WhatIfResult(BaseModel):
    site_id: str
    applied: Literal[False] = Field(
        default=False, description="Always false: a what-if changes no plan and no setpoint"
    )
    start: datetime
    step_minutes: int
    parameters: TradingParameters = Field(description="The parameters of the scenario solve")
    price_estimate_share: float = Field(
        description="Share of slots whose spot price is an estimate (not published or not "
        "fetched: the recent or seasonal profile) [0-1]"
    )
    price_estimate_slots: list[datetime] = Field(
        default_factory=list, description="Start of every slot whose spot price is an estimate"
    )
    weather_estimate_share: float = Field(
        default=0.0,
        description="Share of slots without a weather forecast (clear sky x measured scale) [0-1]",
    )
    inputs: str = Field(default="", description="What the plan runs on, in words")
    baseline: PlanTotals = Field(description="The site's current parameters and prices")
    scenario: PlanTotals
    difference: dict[str, float] = Field(description="scenario - baseline per numeric total")
    slots: list[ScheduleSlot] = Field(description="The scenario's plan per slot")
    slot_differences: list[ScheduleSlot] = Field(
        description="scenario - baseline per slot and quantity"
    )


class FlexibilitySlot(BaseModel):
    start: datetime
    energy_kwh: float = Field(description="Energy stored at the slot start, summed [kWh]")
    up_kw: float = Field(description="Extra discharge / less charge possible, summed [kW]")
    down_kw: float = Field(description="Extra charge / less discharge possible, summed [kW]")
    sites: int = Field(description="Sites with a plan value for this slot")


class FlexibilitySite(BaseModel):
    site_id: str
    source: Literal["plan", "solve"] = Field(
        description="plan: the latest stored plan; solve: a fresh solve (no plan stored)"
    )
    price_estimate_slots: int = Field(
        default=0, description="Slots of the horizon planned on estimated prices"
    )


class SkippedSite(BaseModel):
    site_id: str
    reason: str


class FlexibilityPublic(BaseModel):
    group: str
    start: datetime
    step_minutes: int
    hours: int
    sites: list[FlexibilitySite]
    skipped: list[SkippedSite] = Field(description="Sites left out of the sums, and why")
    slots: list[FlexibilitySlot]
