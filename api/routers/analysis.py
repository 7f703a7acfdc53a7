"""Trading analysis: what-if solves and fleet flexibility. Nothing here changes a plan.

Both are read-only for the fleet, so analysts may run them as well as traders: a what-if
solves in the request's worker thread and returns the result without storing it, and the
flexibility view reads stored plans (or solves sites that have none, without storing).
Routes are ``def`` so FastAPI runs the blocking solves in its thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from pydantic import ValidationError

from adapters.store import Plan as StoredPlan
from adapters.store import StoreError
from api.accounts_store import Site
from api.analysis_schemas import (
    EARLIEST,
    LATEST,
    FlexibilityPublic,
    FlexibilitySite,
    FlexibilitySlot,
    PriceOverrides,
    SkippedSite,
    WhatIfRequest,
    WhatIfResult,
)
from api.deps import Services, ServicesDep, TradingReader
from api.errors import (
    ERROR_RESPONSES,
    ApiError,
    ErrorBody,
    field_error,
    not_found,
    validation_error,
)
from api.routers.trading import SiteDep, site_parameters
from api.schemas import FleetGroup, ScheduleSlot, TradingParameters, TradingParametersPatch
from api.site_problem import (
    SiteSetup,
    horizon,
    inputs_frame,
    learned_heat_loss,
    live_state,
    numeric_plan,
    plan_is_usable,
    plan_totals,
    slot_rows,
    solve,
    stored_equipment,
    stored_preferences,
    stored_tariff,
    totals_difference,
)
from core.timeindex import check_index
from insights.flexibility import FLEXIBILITY_COLUMNS, battery_flexibility
from optimizer import ConfigError, SolverError, SolverTimeLimitError
from scheduler.controller import inputs_summary
from scheduler.site_model import EquipmentError, optimizer_site, plan_column

router = APIRouter(
    prefix="/v1/trading",
    tags=["trading"],
    responses={
        **ERROR_RESPONSES,
        503: {"model": ErrorBody, "description": "The solver found no plan; try again"},
    },
)
GroupPath = Annotated[FleetGroup, Path(description="Fleet group name")]
#: Sites without a stored plan solved per flexibility request; more are listed as skipped.
MAX_FRESH_SOLVES = 10


def site_setup(services: Services, site: Site) -> SiteSetup:
    """The site's stored equipment, preferences, telemetry state and effective parameters."""
    equipment, doc = stored_equipment(services.accounts, site.id)
    live = live_state(services.telemetry, site.id, equipment)
    stored = latest_plan(services, site.id)
    return SiteSetup(
        site=site,
        equipment=equipment,
        equipment_doc=doc,
        preferences=stored_preferences(services.accounts, site.id),
        # plan like the controller: on the heat-store loss it learned
        live=replace(live, hp_loss_kw_per_k=learned_heat_loss(stored, equipment)),
        parameters=site_parameters(services, site).parameters,
        tariff=stored_tariff(services.accounts, site.id),
        plan=stored,
    )


def latest_plan(services: Services, site_id: str) -> StoredPlan | None:
    """The site's latest stored plan (None also while the plan database is unreachable)."""
    try:
        return services.plans.latest_plan(site_id)
    except sa.exc.OperationalError:
        return None


def site_inputs(
    services: Services, setup: SiteSetup, index: pd.DatetimeIndex, prices: PriceOverrides | None
) -> pd.DataFrame:
    """The site's per-slot inputs on the live prices and weather (estimates flagged)."""
    return inputs_frame(
        setup.home,
        index,
        prices,
        live=services.inputs,
        measured_pv_kw=measured_pv(services, setup.site.id, index),
    )


def measured_pv(services: Services, site_id: str, index: pd.DatetimeIndex) -> pd.Series | None:
    """The site's PV power of the two days before ``index`` [kW] (the clear-sky scale)."""
    if services.telemetry is None:
        return None
    start = (index[0] - pd.Timedelta(days=2)).to_pydatetime()
    try:
        window = services.telemetry.window(site_id, start, index[0].to_pydatetime())
    except StoreError:
        return None
    return window["pv-power_kw"].astype(float) if "pv-power_kw" in window else None


def _overridden(
    current: TradingParameters, patch: TradingParametersPatch | None
) -> TradingParameters:
    if patch is None:
        return current
    merged = {**current.model_dump(), **patch.model_dump(exclude_unset=True)}
    try:
        return TradingParameters.model_validate(merged)
    except ValidationError as exc:
        raise validation_error(exc, ("body", "parameters")) from None


def _slot_differences(scenario: pd.DataFrame, baseline: pd.DataFrame) -> list[ScheduleSlot]:
    common = [c for c in scenario.columns if c in baseline.columns]
    numeric = scenario[common].apply(pd.to_numeric, errors="coerce")
    delta = numeric - baseline[common].apply(pd.to_numeric, errors="coerce")
    return slot_rows(delta)


@router.post("/sites/{site_id}/what-if", response_model=WhatIfResult)
def what_if(
    body: WhatIfRequest, user: TradingReader, site: SiteDep, services: ServicesDep
) -> WhatIfResult:
    """Solve the site with changed parameters and/or prices and compare with its current
    parameters on the bundled prices; nothing is stored and nothing reaches the box."""
    setup = site_setup(services, site)
    index = horizon(body.start or services.now(), body.horizon_hours)
    parameters = _overridden(setup.parameters, body.parameters)
    baseline_frame = site_inputs(services, setup, index, None)
    scenario_frame = site_inputs(services, setup, index, body.prices)
    try:
        baseline = solve(setup, baseline_frame, setup.parameters)
        scenario = solve(setup, scenario_frame, parameters)
    except (EquipmentError, ConfigError) as exc:
        raise ApiError(422, "invalid_equipment", str(exc)) from None
    except SolverTimeLimitError:
        raise _no_plan_in_time() from None
    except SolverError as exc:
        raise ApiError(503, "solver_failed", f"no plan: {exc}") from None
    if not (plan_is_usable(baseline) and plan_is_usable(scenario)):
        raise _no_plan_in_time()
    base_totals, scen_totals = plan_totals(baseline), plan_totals(scenario)

    flags = estimate_flags(scenario_frame)
    return WhatIfResult(
        site_id=site.id,
        start=index[0].to_pydatetime(),
        step_minutes=15,
        parameters=parameters,
        price_estimate_share=float(flags["price-is_estimate"].mean()),
        price_estimate_slots=[
            t.to_pydatetime() for t in index[flags["price-is_estimate"].to_numpy(bool)]
        ],
        weather_estimate_share=float(flags["weather-is_estimate"].mean()),
        inputs="; ".join([str(inputs_summary(flags)["inputs"]), *learned_words(setup)]),
        baseline=base_totals,
        scenario=scen_totals,
        difference=totals_difference(scen_totals, base_totals),
        slots=slot_rows(scenario.slots.join(flags.rename(columns=plan_column).astype(float))),
        slot_differences=_slot_differences(scenario.slots, baseline.slots),
    )


def learned_words(setup: SiteSetup) -> list[str]:
    """What the site's solve took from the controller's learning, in words."""
    return [
        f"heat-store loss of {name} {loss:.3f} kW/K as learned by the controller"
        for name, loss in setup.live.hp_loss_kw_per_k.items()
    ]


def _no_plan_in_time() -> ApiError:
    return field_error(
        "body.parameters.time_limit_s",
        "no plan within the time limit (this request's or the site's); raise time_limit_s",
    )


def estimate_flags(frame: pd.DataFrame) -> pd.DataFrame:
    """``price-is_estimate`` and ``weather-is_estimate`` per slot of an inputs frame."""
    index = frame.index
    price = frame.get("price_is_estimate", pd.Series(False, index=index))
    weather = frame.get("weather_is_estimate", pd.Series(False, index=index))
    return pd.DataFrame(
        {
            "price-is_estimate": price.to_numpy(bool),
            "weather-is_estimate": weather.to_numpy(bool),
        },
        index=index,
    )


def _stored_rows(stored: StoredPlan | None, index: pd.DatetimeIndex) -> pd.DataFrame | None:
    """The stored plan's rows inside ``index`` (plan column names), or None."""
    if stored is None:
        return None
    frame = numeric_plan(stored)
    step = check_index(pd.DatetimeIndex(frame.index), name="plan slots")
    ends = pd.DatetimeIndex(frame.index) + step
    inside = frame[(ends > index[0]) & (pd.DatetimeIndex(frame.index) <= index[-1])]
    return None if inside.empty else inside


@dataclass
class _SolveBudget:
    """Fresh solves (tried, successful or not) one flexibility request may still spend."""

    left: int = MAX_FRESH_SOLVES


def _site_flexibility(
    services: Services, site: Site, index: pd.DatetimeIndex, budget: _SolveBudget
) -> tuple[pd.DataFrame, str]:
    """Per slot of ``index``: energy, up and down of one site, and where the plan came from.

    Raises ValueError with the reason when the site cannot be included.
    """
    setup = site_setup(services, site)
    try:
        battery = optimizer_site(setup.equipment).battery
    except EquipmentError as exc:
        raise ValueError(f"invalid equipment: {exc}") from None
    if battery is None:
        raise ValueError("no battery")
    rows, source = _stored_rows(setup.plan, index), "plan"
    if rows is None:
        if budget.left <= 0:
            raise ValueError(
                f"no plan stored (fresh solves limited to {MAX_FRESH_SOLVES} per request)"
            )
        try:
            frame = site_inputs(services, setup, index, None)
            fresh = solve(setup, frame, setup.parameters)
        except ApiError as exc:
            raise ValueError(f"no plan stored and no solve possible: {exc.message}") from None
        if not plan_is_usable(fresh):
            raise ValueError("no plan stored and none found within the site's time limit")
        rows, source = fresh.slots, "solve"
        rows = rows.join(estimate_flags(frame).rename(columns=plan_column).astype(float))
    flex = battery_flexibility(rows, battery)
    flex = flex.reindex(
        index, method="ffill", tolerance=check_index(pd.DatetimeIndex(flex.index)) - pd.Timedelta(1)
    )
    estimated = rows.get("price_is_estimate")
    if estimated is not None:
        flags = estimated.reindex(index, method="ffill", tolerance=pd.Timedelta(minutes=14))
        flex["price_is_estimate"] = flags.fillna(0.0) > 0
    return flex, source


@router.get("/groups/{group}/flexibility", response_model=FlexibilityPublic)
def flexibility(
    group: GroupPath,
    user: TradingReader,
    services: ServicesDep,
    hours: Annotated[int, Query(ge=1, le=48, description="Horizon from the current slot [h]")] = 24,
    start: Annotated[datetime | None, Query(description="Horizon start; default now")] = None,
) -> FlexibilityPublic:
    """Battery energy [kWh] and power available up and down [kW] per 15-min slot, summed over
    the group's sites, from each site's latest plan (or a fresh solve if it has none).

    ``up``: more discharge or less charge than planned; ``down``: more charge or less
    discharge; each bounded by the power limits and by the energy above SOC min / room below
    SOC max over the slot (see docs/api.md)."""
    if group not in services.accounts.fleet_groups():
        raise not_found("fleet group")
    if start is not None and start.tzinfo is None:
        raise field_error("query.start", "timestamp needs an offset, e.g. 2024-06-12T22:00Z")
    if start is not None and not EARLIEST <= start < LATEST:
        raise field_error("query.start", "must be between 2000-01-01 and 2100-01-01")
    index = horizon(start or services.now(), hours)
    total = pd.DataFrame(0.0, index=index, columns=list(FLEXIBILITY_COLUMNS))
    count = pd.Series(0, index=index)
    included, skipped, budget = [], [], _SolveBudget()
    for site in services.accounts.all_sites():
        if site.fleet_group != group:
            continue
        try:
            flex, source = _site_flexibility(services, site, index, budget)
        except (ValueError, SolverError) as exc:
            skipped.append(SkippedSite(site_id=site.id, reason=str(exc)))
            continue
        estimated = int(flex.pop("price_is_estimate").sum()) if "price_is_estimate" in flex else 0
        total += flex.fillna(0.0)
        count += flex["energy_kwh"].notna().astype(int)
        included.append(
            FlexibilitySite(
                site_id=site.id,
                source=source,  # type: ignore[arg-type]
                price_estimate_slots=estimated,
            )
        )
    values = total[list(FLEXIBILITY_COLUMNS)].to_numpy(float)
    slots = [
        FlexibilitySlot(
            start=ts.to_pydatetime(), energy_kwh=e, up_kw=up, down_kw=down, sites=int(n)
        )
        for ts, (e, up, down), n in zip(index, values.tolist(), count.tolist(), strict=True)
    ]
    return FlexibilityPublic(
        group=group,
        start=index[0].to_pydatetime(),
        step_minutes=15,
        hours=hours,
        sites=included,
        skipped=skipped,
        slots=slots,
    )
