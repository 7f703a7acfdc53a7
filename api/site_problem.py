"""A site's optimization problem from what the API stores: equipment, the owner's device
preferences, the tariff, the trading parameters and the latest telemetry, on the live inputs
(stored prices and flagged estimates, the weather feed) or the bundled data.

The mapping itself is :mod:`scheduler.site_model`; this module only reads the stores and
turns failures into API errors. Solves here are blocking: call them from ``def`` routes (run in
the thread pool), never from ``async def``.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, time

import numpy as np
import pandas as pd

from adapters.store import Plan as StoredPlan
from adapters.store import StoreError, TelemetryStore
from api.accounts_store import AccountStore, EquipmentDoc, Site, TariffDoc
from api.analysis_schemas import PlanTotals, PriceOverrides
from api.errors import ApiError, FieldError
from api.schemas import (
    WEEKDAYS,
    DeviceReasonPublic,
    HeatPumpPreferences,
    ScheduleSlot,
    TradingParameters,
    WallboxPreferences,
)
from core.timeindex import check_index
from insights.reasons import ReasonContext, next_action_reasons
from optimizer import ChargingMode, Plan, optimize
from optimizer import forecast as fc
from pricing import PricingError, Tariff
from pricing.tariff import catalog_tariff, parse_tariff, retail_prices, tariff_catalog
from scheduler.inputs import LiveInputs
from scheduler.scenario import Home, scenario_frame
from scheduler.site_model import (
    ComfortBand,
    DepartureGoal,
    LiveState,
    SiteEquipment,
    SitePreferences,
    WallboxPreference,
    next_departure,
    plan_column,
    site_home,
    site_problem,
    store_column,
)
from scheduler.weather import FORECAST

STEP = pd.Timedelta(minutes=15)
DEFAULT_TARIFF_ID = "de_dynamic_example"
#: A what-if or flexibility solve gets at most this long, whatever the parameters say [s].
SOLVE_TIME_LIMIT_S = 20.0


@dataclass(frozen=True)
class SiteSetup:
    """Everything stored about a site that its problem needs."""

    site: Site
    equipment: SiteEquipment
    equipment_doc: EquipmentDoc | None
    preferences: SitePreferences
    live: LiveState
    parameters: TradingParameters
    tariff: SiteTariff = field(default_factory=lambda: SiteTariff(DEFAULT_TARIFF_ID, None))
    #: The controller's latest stored plan, if any.
    plan: StoredPlan | None = None

    @functools.cached_property
    def home(self) -> Home:
        return site_home(self.equipment, self.preferences, self.tariff.tariff)


@dataclass(frozen=True)
class SiteTariff:
    """The site's tariff choice: a shipped tariff id or ``uploaded``, and the parsed tariff."""

    tariff_id: str
    doc: TariffDoc | None

    @functools.cached_property
    def tariff(self) -> Tariff:
        if self.doc is not None and self.doc.tariff_toml is not None:
            return parse_tariff(self.doc.tariff_toml, where="uploaded tariff")
        return _catalog_tariff(self.tariff_id)

    @property
    def zone(self) -> str:
        return self.tariff.bidding_zone


def stored_tariff(accounts: AccountStore, site_id: str) -> SiteTariff:
    """The site's tariff (the shipped German dynamic example until the owner chooses one)."""
    doc = accounts.get_tariff(site_id)
    if doc is None:
        return SiteTariff(DEFAULT_TARIFF_ID, None)
    if doc.tariff_toml is None and doc.tariff_id not in tariff_catalog():
        # a shipped tariff was withdrawn since: plan on the default rather than fail
        return SiteTariff(DEFAULT_TARIFF_ID, None)
    return SiteTariff(doc.tariff_id, doc)


def stored_equipment(
    accounts: AccountStore, site_id: str
) -> tuple[SiteEquipment, EquipmentDoc | None]:
    """The site's equipment, or the typical home of :class:`SiteEquipment` if none is set."""
    doc = accounts.get_equipment(site_id)
    if doc is None:
        return SiteEquipment(), None
    return SiteEquipment.model_validate_json(doc.equipment_json), doc


def stored_preferences(accounts: AccountStore, site_id: str) -> SitePreferences:
    """The owner's wallbox modes/departures/targets and comfort bands, typed."""
    wallboxes: dict[str, WallboxPreference] = {}
    heat_pumps: dict[str, ComfortBand] = {}
    for prefs in accounts.device_preferences(site_id):
        if prefs.kind == "wallbox":
            w = WallboxPreferences.model_validate(json.loads(prefs.preferences_json))
            wallboxes[prefs.name] = wallbox_preference(w)
        else:
            h = HeatPumpPreferences.model_validate(json.loads(prefs.preferences_json))
            heat_pumps[prefs.name] = ComfortBand(h.comfort_min_c, h.comfort_max_c)
    site = accounts.get_site(site_id)
    tz = site.timezone if site is not None else SitePreferences.timezone
    return SitePreferences(wallboxes, heat_pumps, tz)


def wallbox_preference(w: WallboxPreferences) -> WallboxPreference:
    """The API's wallbox settings as the scheduler's (SOC in [0, 1], weekdays 0 = Monday)."""
    return WallboxPreference(
        mode=ChargingMode(w.mode),
        departure=w.departure,
        target_kwh=w.target_kwh,
        target_soc=_fraction(w.target_soc_pct),
        weekly={
            WEEKDAYS.index(day): DepartureGoal(
                time.fromisoformat(d.time), d.target_kwh, _fraction(d.target_soc_pct)
            )
            for day, d in w.weekly.items()
        },
    )


def _fraction(pct: float | None) -> float | None:
    return None if pct is None else pct / 100.0


def live_state(
    telemetry: TelemetryStore | None, site_id: str, equipment: SiteEquipment
) -> LiveState:
    """Battery SOC, heat-store temperature and car plugged-in state from the newest samples."""
    if telemetry is None:
        return LiveState()
    try:
        latest = telemetry.latest(site_id)
    except StoreError:
        return LiveState()
    battery, hp, wallbox = latest.get("battery"), latest.get("heatpump"), latest.get("wallbox")
    soc = None if battery is None else battery.fields.get("soc")
    temps: dict[str, float] = {}
    if hp is not None and equipment.heat_pumps and "tank_temp_degc" in hp.fields:
        temps[equipment.heat_pumps[0].name] = float(hp.fields["tank_temp_degc"])
    connected: dict[str, bool] = {}
    if wallbox is not None and equipment.wallboxes and "connected" in wallbox.fields:
        connected[equipment.wallboxes[0].name] = bool(wallbox.fields["connected"])
    return LiveState(None if soc is None else float(soc), temps, connected)


def learned_heat_loss(stored: StoredPlan | None, equipment: SiteEquipment) -> dict[str, float]:
    """The heat-store loss the controller learned, from its latest plan's summary [kW/K]
    (per heat pump; empty when it plans on the configured loss or has no plan yet)."""
    if stored is None or not equipment.heat_pumps:
        return {}
    summary = stored.summary.model_dump()
    loss = summary.get("heat_loss_kw_per_k")
    if summary.get("heat_loss_source") != "learned" or not isinstance(loss, int | float):
        return {}
    return {equipment.heat_pumps[0].name: float(loss)}


def horizon(start: datetime, hours: int) -> pd.DatetimeIndex:
    """15-minute slots from the slot holding ``start`` for ``hours`` hours (UTC)."""
    first = pd.Timestamp(start).tz_convert("UTC").floor("15min")
    return pd.date_range(first, periods=hours * 4, freq=STEP)


@functools.lru_cache(maxsize=8)
def _catalog_tariff(tariff_id: str) -> Tariff:
    return catalog_tariff(tariff_id)


def _price_error(field: str, exc: Exception) -> ApiError:
    reason = f"no prices for this horizon ({exc})"
    return ApiError(
        422,
        "prices_unavailable",
        f"{field}: {reason}",
        fields=[FieldError(field=field, reason=reason)],
    )


def site_weather(
    home: Home,
    index: pd.DatetimeIndex,
    live: LiveInputs | None,
    measured_pv_kw: pd.Series | None = None,
) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """Weather at the site from the live feed (forecast or flagged clear sky), and the PV on
    ``index`` where there is no forecast: clear sky x the measured scale of the last 2 days.

    Returns (None, None) without live inputs or for a horizon that ended more than a day
    before now (an analysis of the past: the bundled measured weather is used).
    """
    if live is None or index[-1] < live.clock() - pd.Timedelta(days=1):
        return None, None
    system = home.pv_system
    weather = live.weather.weather(index, system.latitude, system.longitude)
    if (weather["source"] == FORECAST).all():
        return weather, None
    scale = 1.0
    if measured_pv_kw is not None and measured_pv_kw.notna().any():
        scale = fc.clear_sky_scale(measured_pv_kw.iloc[-192:], system)
    return weather, fc.pv_clear_sky(index, system, scale)


def inputs_frame(
    home: Home,
    index: pd.DatetimeIndex,
    prices: PriceOverrides | None = None,
    *,
    live: LiveInputs | None = None,
    measured_pv_kw: pd.Series | None = None,
) -> pd.DataFrame:
    """Per-slot optimizer inputs, with ``prices`` applied.

    Prices: the site's zone from the live price store (with the bundled history behind it),
    flagged estimates where nothing is known (``price_is_estimate``), for any date. Weather:
    the live feed's forecast, flagged clear sky x measured scale where it has none
    (``weather_is_estimate``); the bundled weather without live inputs.

    Raises
    ------
    ApiError
        422 naming a price list whose length is not the number of slots.
    """
    tariff = home.retail_tariff()
    source = None if live is None else live.price_source(tariff.bidding_zone)
    weather, clear_pv = site_weather(home, index, live, measured_pv_kw)
    try:
        frame = scenario_frame(
            home, index, tariff, price_source=source, weather=weather, seasonal=True
        )
    except PricingError as exc:  # only an empty reference history could get here
        raise _price_error("body.start", exc) from None
    estimated = np.zeros(len(index), bool)
    if weather is not None:
        estimated = (weather["source"] != FORECAST).to_numpy(bool)
        if clear_pv is not None:
            frame["pv_kw"] = np.where(estimated, clear_pv.to_numpy(float), frame["pv_kw"])
    frame["weather_is_estimate"] = estimated
    if prices is None:
        return frame
    if prices.spot_shift_eur_per_kwh:
        shifted = frame[["spot_eur_per_kwh"]] + prices.spot_shift_eur_per_kwh
        retail = retail_prices(shifted, tariff, home.export_rules())
        for column in ("spot_eur_per_kwh", "import_eur_per_kwh", "export_eur_per_kwh"):
            frame[column] = retail[column].to_numpy()
    for column in ("import_eur_per_kwh", "export_eur_per_kwh"):
        values = getattr(prices, column)
        if values is None:
            continue
        if len(values) != len(index):
            reason = f"expected {len(index)} values (one per 15-min slot), got {len(values)}"
            raise ApiError(
                422,
                "validation_error",
                f"body.prices.{column}: {reason}",
                fields=[FieldError(field=f"body.prices.{column}", reason=reason)],
            )
        frame[column] = np.asarray(values, dtype=float)
    return frame


def solve(setup: SiteSetup, frame: pd.DataFrame, parameters: TradingParameters) -> Plan:
    """Solve the site on ``frame`` with ``parameters`` (blocking; time limit capped)."""
    tuning = parameters.to_tuning()
    tuning = replace(tuning, time_limit_s=min(tuning.time_limit_s, SOLVE_TIME_LIMIT_S))
    problem = site_problem(
        setup.home,
        equipment=setup.equipment,
        preferences=setup.preferences,
        live=setup.live,
        frame=frame,
        tuning=tuning,
    )
    return optimize(problem)


def plan_is_usable(plan: Plan, tol: float = 1e-6) -> bool:
    """A plan the solver actually found: finite, grid flows >= 0, battery SOC inside 0-1.

    A solve stopped by its time limit before HiGHS had a primal solution comes back with
    status ``time_limit`` and a point that breaks these (negative SOC and import).
    """
    if not math.isfinite(plan.summary.objective_eur):
        return False
    slots = plan.slots
    for column in ("grid_import_kw", "grid_export_kw"):
        if column in slots and (slots[column] < -tol).any():
            return False
    soc = slots.get("battery_soc")
    return soc is None or bool(soc.between(-tol, 1 + tol).all())


def plan_totals(plan: Plan) -> PlanTotals:
    """Money [EUR] and energy [kWh] totals of an optimizer plan."""
    s, slots = plan.summary, plan.slots
    dt = plan.problem.inputs.dt_h
    throughput, cycles = 0.0, 0.0
    battery = plan.problem.site.battery
    if battery is not None:
        throughput = float(
            (slots["battery_charge_kw"] + slots["battery_discharge_kw"]).sum() * dt / 2
        )
        cycles = throughput / battery.capacity_kwh
    return PlanTotals(
        status=s.status,
        cost_eur=s.cost_eur,
        objective_eur=s.objective_eur,
        battery_wear_eur=s.battery_wear_eur,
        terminal_value_eur=s.terminal_value_eur,
        penalty_eur=s.penalty_eur,
        import_kwh=s.import_kwh,
        export_kwh=s.export_kwh,
        pv_kwh=s.pv_kwh,
        battery_throughput_kwh=throughput,
        battery_cycles=cycles,
        co2_kg=s.co2_kg,
        violations={v.name: v.amount for v in s.violations},
    )


def totals_difference(scenario: PlanTotals, baseline: PlanTotals) -> dict[str, float]:
    """scenario - baseline for every numeric total both have."""
    a, b = scenario.model_dump(), baseline.model_dump()
    return {k: float(a[k] - b[k]) for k in a if isinstance(a[k], float) and isinstance(b[k], float)}


def slot_rows(frame: pd.DataFrame) -> list[ScheduleSlot]:
    """Plan rows as schedule slots with ``device-quantity`` names (finite numbers only)."""
    numeric = frame.apply(pd.to_numeric, errors="coerce").astype("float64")
    columns = [store_column(str(c)) for c in numeric.columns]
    return [
        ScheduleSlot(
            start=start.to_pydatetime(),
            values={c: float(v) for c, v in zip(columns, row, strict=True) if math.isfinite(v)},
        )
        for start, row in zip(pd.DatetimeIndex(frame.index), numeric.to_numpy(), strict=True)
    ]


def numeric_plan(stored: StoredPlan) -> pd.DataFrame:
    """A stored plan's rows with the optimizer's column names, as floats (NaN if not a number)."""
    frame = stored.slots.rename(columns=plan_column)
    return frame.apply(pd.to_numeric, errors="coerce").astype("float64")


def plan_reasons(
    stored: StoredPlan | None, now: datetime, tz: str, preferences: SitePreferences
) -> list[DeviceReasonPublic]:
    """Why each device does what the stored plan says in the current (or next) slot."""
    if stored is None:
        return []
    frame = numeric_plan(stored)
    index = pd.DatetimeIndex(frame.index)
    step = check_index(index, name="plan slots")
    first = int((index + step).searchsorted(pd.Timestamp(now), side="right"))
    context = ReasonContext(
        tz=tz,
        ev_modes={n: p.mode for n, p in preferences.wallboxes.items()},
        ev_departures={
            n: next_departure(p, pd.Timestamp(now), preferences.timezone, 1.0)[0]
            for n, p in preferences.wallboxes.items()
        },
    )
    return [
        DeviceReasonPublic(
            device=r.device,
            kind=r.kind,  # type: ignore[arg-type]
            action=r.action,  # type: ignore[arg-type]
            code=r.code,
            text=r.text,
            power_kw=r.power_kw,
            slot_start=r.slot_start.to_pydatetime(),
        )
        for r in next_action_reasons(frame, first, context)
    ]
