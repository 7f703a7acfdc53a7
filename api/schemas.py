"""Request and response models of every route (separate models for what comes in and goes out).

Inputs forbid unknown fields so a typo is a 422 naming it rather than a silently ignored value.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from adapters.store.telemetry import INT32_KW
from optimizer import ChargingMode, Tuning

SiteRole = Literal["owner", "supporter", "factory_service"]
AccountRole = Literal["customer", "factory_service", "trader", "analyst"]
ExportStrategy = Literal["spot", "feed_in_tariff", "self_consumption"]


class In(BaseModel):
    """Base of request bodies: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Password = Annotated[str, Field(min_length=10, max_length=128, description="10 to 128 characters")]
Token = Annotated[str, Field(min_length=16, max_length=256)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]
FleetGroup = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
ObjectName = Annotated[str, Field(min_length=1, max_length=100)]
#: A timestamp with an offset, converted to UTC on the way in (naive timestamps are a 422).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]


# -- auth -----------------------------------------------------------------------------------------
class RegisterRequest(In):
    email: Email
    password: Password


class UserPublic(BaseModel):
    id: str = Field(description="The user ID; an owner grants a supporter access by this ID")
    email: str
    role: AccountRole
    email_confirmed: bool
    created_at: datetime


class ConfirmRequest(In):
    token: Token


class SignInRequest(In):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=128)]


class TokenPair(BaseModel):
    access_token: str = Field(description="Bearer JWT for the Authorization header")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Single-use; swap it at /v1/auth/refresh")


class RefreshRequest(In):
    refresh_token: Token


class PasswordResetRequest(In):
    email: Email


class PasswordResetConfirm(In):
    token: Token
    new_password: Password


class Accepted(BaseModel):
    detail: str


# -- sites, grants, boxes -------------------------------------------------------------------------
class SiteCreate(In):
    name: ObjectName
    timezone: TimeZone = "Europe/Berlin"


class SiteUpdate(In):
    name: ObjectName | None = None
    timezone: TimeZone | None = None


class SitePublic(BaseModel):
    id: str
    name: str
    timezone: str
    fleet_group: str
    factory_service: bool = Field(description="Vendor's factory service may access the site")
    created_at: datetime
    your_role: SiteRole = Field(description="How the caller relates to this site")


class FactoryServiceSwitch(In):
    enabled: bool


class GrantPublic(BaseModel):
    site_id: str
    supporter_id: str
    created_at: datetime


class BoxPairRequest(In):
    serial: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{4,40}$")]
    starter_code: Annotated[str, Field(min_length=6, max_length=64)]


class BoxPublic(BaseModel):
    id: str
    serial: str
    created_at: datetime
    revoked_at: datetime | None
    active: bool


class BoxPaired(BaseModel):
    box: BoxPublic
    token: str = Field(description="The box's bearer token; shown once, stored only hashed")


class AckPublic(BaseModel):
    id: int
    box_id: str
    etag: str
    applied_at: datetime
    received_at: datetime
    setpoints: dict[str, float]


# -- device preferences --------------------------------------------------------------------------
DeviceName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$", description="Device name, e.g. ev")]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LocalTime = Annotated[
    str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, site's local time")
]


def _one_target(value: float | None, info: ValidationInfo) -> float | None:
    if value is not None and info.data.get("target_kwh") is not None:
        raise ValueError("give the target as target_kwh or target_soc_pct, not both")
    return value


class WeeklyDeparture(In):
    """A repeating departure on one weekday (as evcc's repeating plans)."""

    time: LocalTime
    target_kwh: float | None = Field(
        default=None, ge=0.0, le=200.0, description="Energy wanted in the car then [kWh]"
    )
    target_soc_pct: float | None = Field(
        default=None, ge=0.0, le=100.0, description="Or: state of charge wanted then [%]"
    )

    _one_target = field_validator("target_soc_pct")(_one_target)


class WallboxPreferences(In):
    """What the owner sets for one wallbox in the app: the charging mode, a weekly departure
    plan, and a one-off override for the next trip (``departure`` with its target)."""

    mode: ChargingMode = Field(description="off, now, solar, min_solar, smart, after_battery")
    departure: UtcDatetime | None = Field(
        default=None,
        description="One-off: when the car leaves next; while ahead it overrides the weekly "
        "plan; null: the weekly plan (or no deadline)",
    )
    target_kwh: float | None = Field(
        default=None, ge=0.0, le=200.0, description="Energy wanted in the car at departure [kWh]"
    )
    target_soc_pct: float | None = Field(
        default=None, ge=0.0, le=100.0, description="Or: state of charge wanted at departure [%]"
    )
    weekly: dict[Weekday, WeeklyDeparture] = Field(
        default_factory=dict,
        description="Repeating departures by weekday (mon..sun) in the site's time zone",
    )

    _one_target = field_validator("target_soc_pct")(_one_target)


class WallboxPreferencesPublic(WallboxPreferences):
    model_config = ConfigDict(extra="ignore")

    name: str
    updated_at: datetime


class HeatPumpPreferences(In):
    """The comfort band of one heat pump's store temperature (soft bounds for the optimizer)."""

    comfort_min_c: float = Field(ge=5.0, le=70.0, description="Lower comfort bound [degC]")
    comfort_max_c: float = Field(ge=5.0, le=70.0, description="Upper comfort bound [degC]")

    @field_validator("comfort_max_c")
    @classmethod
    def _band_not_inverted(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("comfort_min_c")
        if low is not None and value < low:
            raise ValueError(f"must be >= comfort_min_c ({low})")
        return value


class HeatPumpPreferencesPublic(HeatPumpPreferences):
    model_config = ConfigDict(extra="ignore")

    name: str
    updated_at: datetime


# -- trading --------------------------------------------------------------------------------------
_TUNING = Tuning()


class TradingParameters(In):
    """Optimizer parameters a trader tunes; units in the names.

    Field names and defaults are those of :class:`optimizer.Tuning` (see
    :meth:`to_tuning`), plus ``export_strategy``, which the optimizer does not take yet.
    """

    battery_wear_eur_per_kwh: float = Field(
        default=_TUNING.battery_wear_eur_per_kwh,
        ge=0.0,
        le=1.0,
        description="Battery degradation cost per kWh throughput [EUR/kWh]",
    )
    terminal_value_eur_per_kwh: float | None = Field(
        default=_TUNING.terminal_value_eur_per_kwh,
        ge=0.0,
        le=2.0,
        description="Value of energy left in the battery at the horizon end [EUR/kWh]; "
        "null: the horizon's median import price x discharge efficiency",
    )
    final_soc: float | None = Field(
        default=_TUNING.final_soc,
        ge=0.0,
        le=1.0,
        description="Battery SOC wanted at the horizon end [0-1], soft; null: no target",
    )
    final_soc_penalty_eur_per_kwh: float = Field(
        default=_TUNING.final_soc_penalty_eur_per_kwh,
        ge=0.0,
        le=100.0,
        description="Cost of each kWh the battery ends below final_soc [EUR/kWh]",
    )
    export_strategy: ExportStrategy = Field(
        default="spot",
        description="How export is valued: spot price, fixed feed-in tariff, or not at all "
        "(self_consumption); not yet taken by the optimizer",
    )
    co2_price_eur_per_t: float = Field(
        default=_TUNING.co2_price_eur_per_t,
        ge=0.0,
        le=1000.0,
        description="Internal carbon price on grid imports [EUR/tCO2eq]; 0 = off",
    )
    ev_target_penalty_eur_per_kwh: float = Field(
        default=_TUNING.ev_target_penalty_eur_per_kwh,
        ge=0.0,
        le=100.0,
        description="Cost of each kWh an EV misses of its target at departure [EUR/kWh]",
    )
    ev_solar_value_eur_per_kwh: float = Field(
        default=_TUNING.ev_solar_value_eur_per_kwh,
        ge=0.0,
        le=2.0,
        description="Value of a kWh put into a car in the solar modes [EUR/kWh]",
    )
    comfort_penalty_eur_per_kh: float = Field(
        default=_TUNING.comfort_penalty_eur_per_kh,
        ge=0.0,
        le=100.0,
        description="Cost per kelvin-hour outside the heat pump's comfort band [EUR/(K h)]",
    )
    reserve_penalty_eur_per_kwh: float = Field(
        default=_TUNING.reserve_penalty_eur_per_kwh,
        ge=0.0,
        le=100.0,
        description="Cost per kWh-hour below the battery reserve [EUR/(kWh h)]",
    )
    unserved_penalty_eur_per_kwh: float = Field(
        default=_TUNING.unserved_penalty_eur_per_kwh,
        ge=0.0,
        le=1000.0,
        description="Value of lost load [EUR/kWh]",
    )
    mip_gap: float = Field(
        default=_TUNING.mip_gap, ge=0.0, le=0.5, description="Relative MIP gap [-]"
    )
    mip_abs_gap_eur: float = Field(
        default=_TUNING.mip_abs_gap_eur, ge=0.0, le=100.0, description="Absolute MIP gap [EUR]"
    )
    time_limit_s: float = Field(
        default=_TUNING.time_limit_s, gt=0.0, le=600.0, description="Solver time limit [s]"
    )

    def to_tuning(self) -> Tuning:
        """The optimizer's :class:`~optimizer.Tuning` with these values."""
        names = {f.name for f in dataclasses.fields(Tuning)}
        return Tuning(**{k: v for k, v in self.model_dump().items() if k in names})


class TradingParametersPatch(In):
    """Change some parameters; omitted fields keep their value (ranges as in the full model)."""

    battery_wear_eur_per_kwh: float | None = Field(default=None, ge=0.0, le=1.0)
    terminal_value_eur_per_kwh: float | None = Field(
        default=None, ge=0.0, le=2.0, description="null sets it back to the price-based value"
    )
    final_soc: float | None = Field(
        default=None, ge=0.0, le=1.0, description="null removes the end-of-horizon target"
    )
    final_soc_penalty_eur_per_kwh: float | None = Field(default=None, ge=0.0, le=100.0)
    export_strategy: ExportStrategy | None = None
    co2_price_eur_per_t: float | None = Field(default=None, ge=0.0, le=1000.0)
    ev_target_penalty_eur_per_kwh: float | None = Field(default=None, ge=0.0, le=100.0)
    ev_solar_value_eur_per_kwh: float | None = Field(default=None, ge=0.0, le=2.0)
    comfort_penalty_eur_per_kh: float | None = Field(default=None, ge=0.0, le=100.0)
    reserve_penalty_eur_per_kwh: float | None = Field(default=None, ge=0.0, le=100.0)
    unserved_penalty_eur_per_kwh: float | None = Field(default=None, ge=0.0, le=1000.0)
    mip_gap: float | None = Field(default=None, ge=0.0, le=0.5)
    mip_abs_gap_eur: float | None = Field(default=None, ge=0.0, le=100.0)
    time_limit_s: float | None = Field(default=None, gt=0.0, le=600.0)


class ParametersPublic(BaseModel):
    scope: Literal["site", "group"]
    key: str = Field(description="The site ID or the fleet group name")
    source: Literal["site", "group", "default"] = Field(
        description="Where the effective values come from"
    )
    parameters: TradingParameters
    updated_at: datetime | None
    updated_by: str | None


class AuditEntryPublic(BaseModel):
    at: datetime
    actor_id: str
    scope: Literal["site", "group"]
    key: str
    field: str
    old_value: str | None = Field(description="JSON text of the value before, null if unset")
    new_value: str | None = Field(description="JSON text of the value after, null if removed")


class FleetSitePublic(BaseModel):
    """What a trader sees of a site: no owner, name or personal data."""

    id: str
    fleet_group: str
    has_site_parameters: bool


class FleetGroupAssign(In):
    fleet_group: FleetGroup


# -- gateway --------------------------------------------------------------------------------------
class SampleIn(In):
    ts: UtcDatetime = Field(description="Measurement time with offset (UTC preferred)")
    device: Annotated[str, Field(min_length=1, max_length=32)]
    fields: dict[Annotated[str, Field(max_length=64)], float] = Field(
        description="Field -> value in project units, e.g. {'power_kw': 1.2, 'soc': 0.55}",
        max_length=16,
    )


class TelemetryBatch(In):
    samples: list[SampleIn] = Field(min_length=1, max_length=20_000)


class SampleRejection(BaseModel):
    index: int = Field(description="Position of the sample in the posted batch")
    reason: str


class TelemetryResult(BaseModel):
    accepted: int = Field(description="Samples stored (re-sent ones count again, stored once)")
    rejected: list[SampleRejection]


class ScheduleSlot(BaseModel):
    start: datetime
    values: dict[str, float] = Field(description="device-quantity -> value, e.g. battery-power_kw")


class SchedulePublic(BaseModel):
    site_id: str
    plan_created_at: datetime | None = Field(description="When the plan was solved; null: none")
    step_minutes: int | None
    setpoints: dict[str, float] = Field(description="Live setpoints: the current slot's values")
    slots: list[ScheduleSlot]


SetpointName = Annotated[
    str, Field(pattern=r"^[a-z0-9_]{1,32}-[a-z0-9_]{1,32}$", description="device-quantity")
]


#: An applied setpoint: finite and within what the box's int32 W / uint16 registers can carry.
SetpointValue = Annotated[float, Field(allow_inf_nan=False, ge=-INT32_KW, le=INT32_KW)]


class AckIn(In):
    etag: Annotated[str, Field(min_length=1, max_length=128)]
    applied_at: UtcDatetime
    setpoints: dict[SetpointName, SetpointValue] = Field(
        max_length=64, description="device-quantity -> applied value, e.g. battery-power_kw"
    )


class DeviceReading(BaseModel):
    device: str
    ts: datetime = Field(description="Measurement time (UTC)")
    age_s: float = Field(description="Seconds between the measurement and the answer")
    fields: dict[str, float] = Field(description="Field -> value in project units")


class LivePublic(BaseModel):
    """The newest reading of each device (power flows in kW, SOC 0-1) and how old it is."""

    site_id: str
    as_of: datetime
    devices: list[DeviceReading]


class DeviceReasonPublic(BaseModel):
    """Why a device does what the plan says in the current (or next) slot."""

    device: str = Field(description="Device name, e.g. battery, ev, hp")
    kind: Literal["battery", "wallbox", "heat_pump"]
    action: Literal["charge", "discharge", "hold", "wait", "heat", "off"]
    code: str = Field(description="Stable key, e.g. grid_cheap, hold_for_later, wait_cheaper")
    text: str = Field(description="The sentence to show, e.g. 'charging from PV surplus'")
    power_kw: float = Field(description="Planned power; battery + = discharge [kW]")
    slot_start: datetime


class DepartureOutlookPublic(BaseModel):
    """What the plan puts into a car by its next departure, and whether that meets the target."""

    wallbox: str
    departure: datetime | None = Field(description="Next departure (UTC); null: none set")
    source: Literal["one_off", "weekly", "none"] = Field(
        description="Where the departure comes from: the one-off override or the weekly plan"
    )
    target_kwh: float | None = Field(description="Energy wanted then [kWh] (capped at the car)")
    target_soc: float | None = Field(description="The same as state of charge [0-1]")
    expected_kwh: float | None = Field(
        description="Energy in the car at departure by the plan [kWh]; null: not planned yet"
    )
    expected_soc: float | None = Field(description="The same as state of charge [0-1]")
    reachable: bool | None = Field(description="Plan meets the target; null: cannot say yet")
    shortfall_kwh: float = Field(description="Target minus planned energy, if short [kWh]")
    reason: str = Field(description="Plain words: met, or why not")


class PlanSummaryPublic(BaseModel):
    """What the controller stored about a plan: the solve and what it ran on. Empty while
    there is no plan; a plan from an older version may lack the newer fields (and a newer
    controller may add more, kept as they are)."""

    model_config = ConfigDict(extra="allow")

    status: str | None = Field(default=None, description="The solver's status, e.g. optimal")
    objective_eur: float | None = Field(default=None, description="The solve's objective [EUR]")
    cost_eur: float | None = Field(default=None, description="Import cost - export revenue [EUR]")
    solve_ms: float | None = Field(default=None, description="Solve time [ms]")
    violations: dict[str, float] | None = Field(
        default=None, description="Soft target missed -> amount"
    )
    inputs: str | None = Field(default=None, description="What the plan ran on, in words")
    price_estimate_slots: int | None = Field(
        default=None, description="Slots planned on an estimated price"
    )
    weather_estimate_slots: int | None = Field(
        default=None, description="Slots planned without a weather forecast (clear sky)"
    )
    heat_loss_kw_per_k: float | None = Field(
        default=None, description="The heat store's loss the plan used [kW/K]"
    )
    heat_loss_source: Literal["learned", "configured"] | None = Field(
        default=None, description="Learned from the site's own history, or as configured"
    )
    heat_draw_kw: float | None = Field(
        default=None, description="Constant heat drawn from the store besides its loss [kW]"
    )
    heat_loss: str | None = Field(default=None, description="The heat store's loss, in words")


class PlanPublic(BaseModel):
    """The site's latest plan from now on, with the solver's summary."""

    site_id: str
    created_at: datetime | None
    step_minutes: int | None
    summary: PlanSummaryPublic = Field(description="Status, cost [EUR], inputs, heat-store loss")
    slots: list[ScheduleSlot]
    reasons: list[DeviceReasonPublic] = Field(
        default_factory=list,
        description="Per device, why it does what the plan says in the current or next slot",
    )
    departures: list[DepartureOutlookPublic] = Field(
        default_factory=list,
        description="Per wallbox: next departure, target and the plan's energy then",
    )


class HighlightsPublic(BaseModel):
    site_id: str
    period: Literal["day", "week", "month", "year"]
    tz: str = Field(description="The site's time zone; periods are local calendar periods")
    periods: list[dict[str, Any]] = Field(
        description="Per period: start, end, complete, energies [kWh], cost and savings [EUR], "
        "self_consumption_rate, autarky (0-1), co2_* [kgCO2eq] (see docs/insights.md)"
    )
    price_estimate_share: float = Field(
        default=0.0,
        description="Share of the range's slots whose spot price is an estimate (no day-ahead "
        "price fetched for it) [0-1]; money is approximate where it is above 0",
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    telemetry_store: bool | None = Field(description="null: no telemetry store configured")
    version: str
