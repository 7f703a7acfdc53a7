"""A site's physical equipment and the owner's preferences as the optimizer's home and problem.

This is the one place where stored configuration becomes :class:`~scheduler.scenario.Home`
and :class:`~optimizer.Problem`: the API (what-if, fleet flexibility) and the scheduler
both call it. It lives below the API so the scheduler can use it without importing the web
layer; the API validates requests with the same models.

:class:`SiteEquipment` is pydantic (ranges per field); cross-field rules (SOC window, comfort
band, current window, unique device names) are the optimizer's own: :func:`optimizer_site`
builds the optimizer's config objects and turns a :class:`~optimizer.ConfigError` into an
:class:`EquipmentError` naming the equipment field (``battery.soc_min``, ``wallboxes.1.name``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Annotated, Literal, TypeGuard, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from adapters.datasets import PvSystem
from optimizer import (
    PV,
    Battery,
    ChargingMode,
    ConfigError,
    EVSession,
    FeedInRule,
    Grid,
    HeatPump,
    Inputs,
    Problem,
    Site,
    State,
    Tuning,
    Wallbox,
)
from pricing import Tariff
from scheduler.scenario import Home

T = TypeVar("T")
DeviceName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$", description="Device name")]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PvEquipment(_Config):
    """The PV array (its forecast comes from the weather through pvlib)."""

    peak_kw: float = Field(default=8.0, gt=0.0, le=1000.0, description="Peak power [kWp]")
    tilt_deg: float = Field(default=35.0, ge=0.0, le=90.0, description="Tilt from horizontal [deg]")
    azimuth_deg: float = Field(
        default=180.0,
        ge=0.0,
        lt=360.0,
        description="Orientation [deg], 90 east, 180 south, 270 west",
    )


class BatteryEquipment(_Config):
    """The stationary battery (AC power limits, one-way efficiencies, SOC window 0-1)."""

    capacity_kwh: float = Field(
        default=10.0, gt=0.0, le=1000.0, description="Usable capacity [kWh]"
    )
    charge_kw: float = Field(default=5.0, ge=0.0, le=500.0, description="Charge power limit [kW]")
    discharge_kw: float = Field(
        default=5.0, ge=0.0, le=500.0, description="Discharge power limit [kW]"
    )
    charge_efficiency: float = Field(
        default=0.95, gt=0.0, le=1.0, description="One-way, AC to cell [-]"
    )
    discharge_efficiency: float = Field(
        default=0.95, gt=0.0, le=1.0, description="One-way, cell to AC [-]"
    )
    soc_min: float = Field(
        default=0.05, ge=0.0, le=1.0, description="Lowest SOC the plan may use [0-1]"
    )
    soc_max: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Highest SOC the plan may use [0-1]"
    )
    reserve_soc: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Backup reserve kept unless it costs too much [0-1]",
    )


class WallboxEquipment(_Config):
    """One wallbox and the car that usually charges there."""

    name: DeviceName = "ev"
    max_current_a: float = Field(
        default=16.0, ge=6.0, le=80.0, description="Max current per phase [A]"
    )
    phases: Literal[1, 3] = Field(default=3, description="Phases used (1 or 3)")
    switch_phases: bool = Field(default=False, description="May switch between 1 and 3 phases")
    car_capacity_kwh: float = Field(default=60.0, gt=0.0, le=200.0, description="Car battery [kWh]")
    car_arrival_kwh: float = Field(
        default=20.0,
        ge=0.0,
        le=200.0,
        description="Energy assumed in the car when it plugs in [kWh]",
    )


class HeatPumpEquipment(_Config):
    """A heat pump with its thermal store (building or tank) as one node."""

    name: DeviceName = "hp"
    max_kw: float = Field(default=3.0, gt=0.0, le=50.0, description="Max electric power [kW]")
    capacity_kwh_per_k: float = Field(
        default=10.0, gt=0.0, le=1000.0, description="Thermal capacity of the store [kWh/K]"
    )
    loss_kw_per_k: float = Field(default=0.15, ge=0.0, le=10.0, description="Heat loss [kW/K]")
    cop_at_7c: float = Field(default=3.5, ge=1.0, le=10.0, description="COP at 7 degC outdoor [-]")
    comfort_min_c: float = Field(
        default=20.0, ge=5.0, le=70.0, description="Default lower comfort bound [degC]"
    )
    comfort_max_c: float = Field(
        default=23.0, ge=5.0, le=70.0, description="Default upper comfort bound [degC]"
    )


class GridEquipment(_Config):
    """The grid connection and the PV's feed-in rules."""

    import_limit_kw: float = Field(default=30.0, ge=0.0, le=1000.0, description="Import limit [kW]")
    export_limit_kw: float = Field(default=30.0, ge=0.0, le=1000.0, description="Export limit [kW]")
    feed_in_cap_kw: float | None = Field(
        default=None,
        ge=0.0,
        le=1000.0,
        description="Feed-in cap, e.g. 60 % of PV peak [kW]; null: none",
    )
    negative_price_rule: FeedInRule = Field(
        default=FeedInRule.NO_PAYMENT_AT_NEGATIVE_SPOT,
        description="always_paid, or no_payment_at_negative_spot (EEG §51, plants since 2025)",
    )


class SiteEquipment(_Config):
    """The physical configuration of a site. The defaults are the typical home of the studies:
    8 kWp south, 10 kWh battery, an 11 kW wallbox, a 3 kW heat pump, 3,500 kWh/a."""

    latitude: float = Field(default=51.296, ge=-90.0, le=90.0, description="[deg north]")
    longitude: float = Field(default=6.7686, ge=-180.0, le=180.0, description="[deg east]")
    pv: PvEquipment | None = Field(default_factory=PvEquipment, description="null: no PV")
    battery: BatteryEquipment | None = Field(
        default_factory=BatteryEquipment, description="null: no battery"
    )
    wallboxes: tuple[WallboxEquipment, ...] = Field(
        default=(WallboxEquipment(),), max_length=4, description="Up to 4 wallboxes"
    )
    heat_pumps: tuple[HeatPumpEquipment, ...] = Field(
        default=(HeatPumpEquipment(),), max_length=2, description="Up to 2 heat pumps"
    )
    grid: GridEquipment = Field(default=GridEquipment())
    annual_consumption_kwh: float = Field(
        default=3500.0,
        ge=0.0,
        le=100_000.0,
        description="Household consumption without EV and HP [kWh/a]",
    )


class EquipmentError(ValueError):
    """Equipment the optimizer rejects; ``field`` is the dotted path in :class:`SiteEquipment`."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class DepartureGoal:
    """A repeating departure: local wall time and what the car should hold then.

    ``target_kwh`` [kWh] or ``target_soc`` [0-1] of the car's capacity; neither: full.
    """

    time_local: time
    target_kwh: float | None = None
    target_soc: float | None = None


@dataclass(frozen=True)
class WallboxPreference:
    """The owner's charging mode and departures.

    ``weekly`` maps a weekday (0 Monday .. 6 Sunday) to its departure in the site's local time;
    ``departure`` (tz-aware) with ``target_kwh`` or ``target_soc`` is a one-off override: while
    it lies ahead it is the next trip, and weekly departures before it are skipped.
    """

    mode: ChargingMode = ChargingMode.SMART
    departure: datetime | None = None
    target_kwh: float | None = None
    target_soc: float | None = None
    weekly: Mapping[int, DepartureGoal] = field(default_factory=dict)


@dataclass(frozen=True)
class ComfortBand:
    """The owner's comfort band of a heat pump's store [degC]."""

    comfort_min_c: float
    comfort_max_c: float


@dataclass(frozen=True)
class SitePreferences:
    """The owner's device settings by device name."""

    wallboxes: Mapping[str, WallboxPreference] = field(default_factory=dict)
    heat_pumps: Mapping[str, ComfortBand] = field(default_factory=dict)
    timezone: str = "Europe/Berlin"


@dataclass(frozen=True)
class LiveState:
    """What telemetry says now; ``None`` = not measured (defaults are used).

    Parameters
    ----------
    battery_soc : float or None
        Battery state of charge [0-1].
    hp_temp_c : mapping
        Store temperature per heat pump [degC].
    car_connected : mapping
        Per wallbox, whether a car is plugged in (absent = assume it is).
    hp_loss_kw_per_k : mapping
        Per heat pump, its store's loss as the controller learned it from the site's own
        history [kW/K] (absent = the configured loss).
    """

    battery_soc: float | None = None
    hp_temp_c: Mapping[str, float] = field(default_factory=dict)
    car_connected: Mapping[str, bool] = field(default_factory=dict)
    hp_loss_kw_per_k: Mapping[str, float] = field(default_factory=dict)


def _built(path: str, factory: Callable[[], T]) -> T:
    try:
        return factory()
    except ConfigError as exc:
        attribute = exc.field.rsplit(".", 1)[-1]
        raise EquipmentError(f"{path}.{attribute}", exc.reason) from None


def _unique_names(equipment: SiteEquipment) -> None:
    seen = {"pv", "battery", "grid"}
    named = [("wallboxes", i, w.name) for i, w in enumerate(equipment.wallboxes)]
    named += [("heat_pumps", i, h.name) for i, h in enumerate(equipment.heat_pumps)]
    for group, i, name in named:
        if name in seen:
            raise EquipmentError(f"{group}.{i}.name", f"name {name!r} is taken")
        seen.add(name)


def optimizer_site(equipment: SiteEquipment, preferences: SitePreferences | None = None) -> Site:
    """The optimizer's :class:`~optimizer.Site` of ``equipment``.

    Comfort bands from ``preferences`` replace the equipment's defaults.

    Raises
    ------
    EquipmentError
        Naming the equipment field the optimizer rejects (e.g. ``battery.soc_min`` above
        ``soc_max``).
    """
    prefs = preferences or SitePreferences()
    _unique_names(equipment)
    g = equipment.grid
    grid = _built(
        "grid",
        lambda: Grid(g.import_limit_kw, g.export_limit_kw, g.feed_in_cap_kw, g.negative_price_rule),
    )
    pv = equipment.pv
    b = equipment.battery
    battery = None
    if b is not None:
        battery = _built("battery", lambda: Battery(**b.model_dump()))
    wallboxes = tuple(
        _built(
            f"wallboxes.{i}",
            lambda w=w: Wallbox(  # type: ignore[misc]
                name=w.name,
                max_current_a=w.max_current_a,
                phases=w.phases,
                switch_phases=w.switch_phases,
            ),
        )
        for i, w in enumerate(equipment.wallboxes)
    )
    for i, w in enumerate(equipment.wallboxes):
        if w.car_arrival_kwh > w.car_capacity_kwh:
            raise EquipmentError(f"wallboxes.{i}.car_arrival_kwh", "must be <= car_capacity_kwh")
    heat_pumps = tuple(
        _built(f"heat_pumps.{i}", lambda h=h: _heat_pump(h, prefs))  # type: ignore[misc]
        for i, h in enumerate(equipment.heat_pumps)
    )
    return _built(
        "site",
        lambda: Site(
            grid=grid,
            pv=None if pv is None else PV(peak_kw=pv.peak_kw),
            battery=battery,
            wallboxes=wallboxes,
            heat_pumps=heat_pumps,
        ),
    )


def _heat_pump(h: HeatPumpEquipment, prefs: SitePreferences) -> HeatPump:
    band = prefs.heat_pumps.get(h.name) or ComfortBand(h.comfort_min_c, h.comfort_max_c)
    return HeatPump(
        name=h.name,
        max_kw=h.max_kw,
        capacity_kwh_per_k=h.capacity_kwh_per_k,
        loss_kw_per_k=h.loss_kw_per_k,
        cop_at_7c=h.cop_at_7c,
        comfort_min_c=band.comfort_min_c,
        comfort_max_c=band.comfort_max_c,
    )


def site_home(
    equipment: SiteEquipment,
    preferences: SitePreferences | None = None,
    tariff: Tariff | None = None,
) -> Home:
    """The scenario :class:`Home` of a site: optimizer site, PV orientation, annual load, tariff.

    ``tariff`` is the site's selected or uploaded tariff (None: the shipped German dynamic
    example). A site without PV gets a zero-kWp array, so the forecast frame still has a (zero)
    PV column.
    """
    site = optimizer_site(equipment, preferences)
    pv = equipment.pv
    pv_system = PvSystem(
        peak_kw=0.0 if pv is None else pv.peak_kw,
        tilt_deg=35.0 if pv is None else pv.tilt_deg,
        azimuth_deg=180.0 if pv is None else pv.azimuth_deg,
        latitude=equipment.latitude,
        longitude=equipment.longitude,
    )
    return Home(
        site=site,
        pv_system=pv_system,
        annual_load_kwh=equipment.annual_consumption_kwh,
        tariff=tariff,
    )


def ev_sessions(
    equipment: SiteEquipment,
    preferences: SitePreferences,
    live: LiveState,
    start: pd.Timestamp,
) -> tuple[EVSession, ...]:
    """A car at every wallbox the owner set a mode for (and, if measured, with a car plugged in).

    The car holds the wallbox's ``car_arrival_kwh`` (the box does not report the car's SOC);
    departure and target come from :func:`next_departure` in the site's time zone, and the
    target of a departure is also the session's hard minimum (``EVSession.min_kwh``).
    """
    sessions = []
    for w in equipment.wallboxes:
        pref = preferences.wallboxes.get(w.name)
        if pref is None or not live.car_connected.get(w.name, True):
            continue
        departure, target = next_departure(pref, start, preferences.timezone, w.car_capacity_kwh)
        sessions.append(
            EVSession(
                wallbox=w.name,
                mode=pref.mode,
                capacity_kwh=w.car_capacity_kwh,
                energy_kwh=min(w.car_arrival_kwh, w.car_capacity_kwh),
                target_kwh=target,
                departure=departure,
                # the owner's target by a departure is their minimum: hard where reachable
                min_kwh=None
                if departure is None
                else (w.car_capacity_kwh if target is None else target),
            )
        )
    return tuple(sessions)


def site_state(
    home: Home,
    equipment: SiteEquipment,
    preferences: SitePreferences,
    live: LiveState,
    start: pd.Timestamp,
) -> State:
    """Live state at ``start``: measured SOC (else 0.5, clipped to the SOC window), store
    temperatures (else the comfort band's midpoint), cars from :func:`ev_sessions`."""
    battery = home.site.battery
    soc = 0.5 if live.battery_soc is None else live.battery_soc
    if battery is not None:
        soc = min(max(soc, battery.soc_min), battery.soc_max)
    temps = {
        hp.name: live.hp_temp_c.get(hp.name, (hp.comfort_min_c + hp.comfort_max_c) / 2)
        for hp in home.site.heat_pumps
    }
    return State(soc, temps, ev_sessions(equipment, preferences, live, start))


def site_problem(
    home: Home,
    *,
    equipment: SiteEquipment,
    preferences: SitePreferences,
    live: LiveState,
    frame: pd.DataFrame,
    tuning: Tuning,
) -> Problem:
    """The optimization problem of a site on the per-slot inputs ``frame``.

    Parameters
    ----------
    home : Home
        From :func:`site_home` (same ``equipment`` and ``preferences``).
    frame : pandas.DataFrame
        Optimizer input columns on a UTC index (e.g. from
        :func:`scheduler.scenario.scenario_frame`).
    tuning : Tuning
        The site's trading parameters (``TradingParameters.to_tuning()`` in the API).
    """
    start = pd.Timestamp(frame.index[0])
    state = site_state(home, equipment, preferences, live, start)
    return Problem(learned_site(home.site, live), Inputs.from_frame(frame), state, tuning)


def learned_site(site: Site, live: LiveState) -> Site:
    """``site`` with each heat pump's store loss as learned (:attr:`LiveState.hp_loss_kw_per_k`)."""
    if not live.hp_loss_kw_per_k:
        return site
    pumps = tuple(
        replace(hp, loss_kw_per_k=live.hp_loss_kw_per_k.get(hp.name, hp.loss_kw_per_k))
        for hp in site.heat_pumps
    )
    return replace(site, heat_pumps=pumps)


def next_departure(
    pref: WallboxPreference, start: pd.Timestamp, tz: str, capacity_kwh: float
) -> tuple[pd.Timestamp | None, float | None]:
    """The next departure after ``start`` (UTC) and the energy wanted then [kWh].

    A one-off departure still ahead wins; else the first weekly departure after ``start`` in
    ``tz``. A departure on ``start`` itself is past (the controller's rule: a deadline inside
    the current slot is still today's, so only instants up to ``start`` are gone). Wall times
    are read in ``tz`` on their own date: a time in the spring-forward gap moves to the first
    instant after it, one that occurs twice in autumn is the first of the two. The target is
    capped at ``capacity_kwh``; ``None``: full (or no departure at all and no target set).
    """
    start = pd.Timestamp(start)
    if pref.departure is not None and pd.Timestamp(pref.departure) > start:
        goal = _target(pref.target_kwh, pref.target_soc, capacity_kwh)
        return pd.Timestamp(pref.departure).tz_convert("UTC"), goal
    local_day = start.tz_convert(tz).normalize().tz_localize(None)
    for k in range(8):
        day = local_day + pd.Timedelta(days=k)
        weekly = pref.weekly.get(day.weekday())
        if weekly is None:
            continue
        wall = day + pd.Timedelta(hours=weekly.time_local.hour, minutes=weekly.time_local.minute)
        dep = wall.tz_localize(tz, nonexistent="shift_forward", ambiguous=True)
        if dep > start:
            goal = _target(weekly.target_kwh, weekly.target_soc, capacity_kwh)
            return dep.tz_convert("UTC"), goal
    return None, _target(pref.target_kwh, pref.target_soc, capacity_kwh)


def owner_goal(
    pref: WallboxPreference, start: pd.Timestamp, tz: str, capacity_kwh: float
) -> tuple[pd.Timestamp | None, float | None]:
    """:func:`next_departure`, with a departure that has no target wanting a full car."""
    when, kwh = next_departure(pref, start, tz, capacity_kwh)
    return when, capacity_kwh if when is not None and kwh is None else kwh


def has_owner_plan(pref: WallboxPreference | None) -> TypeGuard[WallboxPreference]:
    """Has the owner set weekly departures or a one-off trip (not just a mode or target)?"""
    return pref is not None and (bool(pref.weekly) or pref.departure is not None)


#: The configured daily target when the owner set none: this share of the car [0-1].
DEFAULT_TARGET_SHARE = 0.75


def configured_target_kwh(wallbox: WallboxEquipment, pref: WallboxPreference | None) -> float:
    """The target of the configured daily departure [kWh in the car]: the owner's
    ``target_kwh`` (capped at the car), else :data:`DEFAULT_TARGET_SHARE` of the car."""
    if pref is not None and pref.target_kwh is not None:
        return min(pref.target_kwh, wallbox.car_capacity_kwh)
    return wallbox.car_capacity_kwh * DEFAULT_TARGET_SHARE


def _target(kwh: float | None, soc: float | None, capacity_kwh: float) -> float | None:
    if soc is not None:
        return min(soc, 1.0) * capacity_kwh
    return None if kwh is None else min(kwh, capacity_kwh)


def store_column(name: str) -> str:
    """Plan column -> the store's ``device-quantity`` (``battery_kw`` -> ``battery-power_kw``)."""
    device, _, quantity = name.partition("_")
    return f"{device}-{'power_kw' if quantity == 'kw' else quantity}"


def plan_column(name: str) -> str:
    """The store's ``device-quantity`` -> plan column; inverse of :func:`store_column`."""
    device, sep, quantity = name.partition("-")
    if not sep:
        return name
    return f"{device}_{'kw' if quantity == 'power_kw' else quantity}"


__all__ = [
    "BatteryEquipment",
    "ComfortBand",
    "DepartureGoal",
    "EquipmentError",
    "GridEquipment",
    "HeatPumpEquipment",
    "LiveState",
    "PvEquipment",
    "SiteEquipment",
    "SitePreferences",
    "WallboxEquipment",
    "WallboxPreference",
    "ev_sessions",
    "next_departure",
    "optimizer_site",
    "plan_column",
    "site_home",
    "site_problem",
    "site_state",
    "store_column",
]
