"""Typed, frozen configuration of a home and of the optimizer's tunable parameters.

Every number carries its unit in the field name or the docstring: kW, kWh, EUR/kWh, degC,
state of charge as a 0-1 fraction. Invalid values raise :class:`ConfigError` naming the field,
at construction, so a bad configuration never reaches the solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import NamedTuple

#: Minimum charging current of IEC 61851 wallboxes [A].
IEC_MIN_CURRENT_A = 6.0
#: Power that §14a EnWG guarantees to each controllable device while dimmed [kW].
DIMMING_MIN_KW_PER_DEVICE = 4.2


class ConfigError(ValueError):
    """A configuration value is invalid. ``field`` names it as ``Class.attribute``."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def _check_finite(obj: object) -> None:
    """Reject NaN/inf in every float field of a dataclass (``None`` means "not set")."""
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{type(obj).__name__}.{f.name}", "must be a finite number")


def _require(obj: object, name: str, ok: bool, reason: str) -> None:
    if not ok:
        raise ConfigError(f"{type(obj).__name__}.{name}", reason)


class ChargingMode(StrEnum):
    """Charging mode of one wallbox, as the owner sets it in the app."""

    OFF = "off"
    NOW = "now"
    SOLAR = "solar"
    MIN_SOLAR = "min_solar"
    SMART = "smart"
    AFTER_BATTERY = "after_battery"


class FeedInRule(StrEnum):
    """Whether export is paid while the spot price is negative (German §51 EEG)."""

    ALWAYS_PAID = "always_paid"
    NO_PAYMENT_AT_NEGATIVE_SPOT = "no_payment_at_negative_spot"


@dataclass(frozen=True)
class Grid:
    """Grid connection.

    Parameters
    ----------
    import_limit_kw : float
        Connection import limit [kW].
    export_limit_kw : float
        Connection export limit [kW].
    feed_in_cap_kw : float or None
        Feed-in cap from the PV's grid rule, e.g. 60 % of the PV peak [kW]; ``None`` = no cap.
    feed_in_rule : FeedInRule
        Whether export earns money while the spot price is negative.
    """

    import_limit_kw: float = 30.0
    export_limit_kw: float = 30.0
    feed_in_cap_kw: float | None = None
    feed_in_rule: FeedInRule = FeedInRule.ALWAYS_PAID

    def __post_init__(self) -> None:
        _check_finite(self)
        _require(self, "import_limit_kw", self.import_limit_kw >= 0, "must be >= 0")
        _require(self, "export_limit_kw", self.export_limit_kw >= 0, "must be >= 0")
        if self.feed_in_cap_kw is not None:
            _require(self, "feed_in_cap_kw", self.feed_in_cap_kw >= 0, "must be >= 0")


@dataclass(frozen=True)
class PV:
    """A PV system; its production comes from the forecast in :class:`Inputs` [kW]."""

    peak_kw: float = 8.0
    name: str = "pv"

    def __post_init__(self) -> None:
        _check_finite(self)
        _require(self, "peak_kw", self.peak_kw >= 0, "must be >= 0")


@dataclass(frozen=True)
class Battery:
    """A stationary battery.

    Parameters
    ----------
    capacity_kwh : float
        Usable energy at SOC 1 [kWh].
    charge_kw, discharge_kw : float
        AC power limits [kW].
    charge_efficiency, discharge_efficiency : float
        One-way efficiencies (0, 1]; round trip is their product.
    soc_min, soc_max : float
        Hard SOC window [0-1].
    reserve_soc : float
        Backup reserve the plan keeps unless that costs more than the reserve penalty [0-1].
    """

    capacity_kwh: float = 10.0
    charge_kw: float = 5.0
    discharge_kw: float = 5.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    soc_min: float = 0.05
    soc_max: float = 1.0
    reserve_soc: float = 0.0
    name: str = "battery"

    def __post_init__(self) -> None:
        _check_finite(self)
        _require(self, "capacity_kwh", self.capacity_kwh > 0, "must be > 0")
        _require(self, "charge_kw", self.charge_kw >= 0, "must be >= 0")
        _require(self, "discharge_kw", self.discharge_kw >= 0, "must be >= 0")
        for name in ("charge_efficiency", "discharge_efficiency"):
            value = getattr(self, name)
            _require(self, name, 0 < value <= 1, "must be in (0, 1]")
        for name in ("soc_min", "soc_max", "reserve_soc"):
            _require(self, name, 0 <= getattr(self, name) <= 1, "must be in [0, 1]")
        _require(self, "soc_min", self.soc_min <= self.soc_max, "must be <= soc_max")
        _require(self, "reserve_soc", self.reserve_soc <= self.soc_max, "must be <= soc_max")


@dataclass(frozen=True)
class Wallbox:
    """An EV wallbox.

    Parameters
    ----------
    max_current_a, min_current_a : float
        Charging current window per phase [A]; IEC 61851 requires at least 6 A.
    phases : int
        Phases the wallbox uses (1 or 3); with ``switch_phases`` it may use either per slot.
    voltage_v : float
        Phase voltage [V].
    efficiency : float
        Grid-to-car-battery efficiency (0, 1].
    """

    name: str = "ev"
    max_current_a: float = 16.0
    min_current_a: float = IEC_MIN_CURRENT_A
    phases: int = 3
    switch_phases: bool = False
    voltage_v: float = 230.0
    efficiency: float = 0.92

    def __post_init__(self) -> None:
        _check_finite(self)
        _require(self, "phases", self.phases in (1, 3), "must be 1 or 3")
        _require(
            self,
            "min_current_a",
            IEC_MIN_CURRENT_A <= self.min_current_a <= self.max_current_a,
            f"must be between {IEC_MIN_CURRENT_A} A and max_current_a",
        )
        _require(self, "voltage_v", self.voltage_v > 0, "must be > 0")
        _require(self, "efficiency", 0 < self.efficiency <= 1, "must be in (0, 1]")

    def power_range_kw(self, phases: int) -> tuple[float, float]:
        """(minimum, maximum) charging power when charging on ``phases`` phases [kW]."""
        k = phases * self.voltage_v / 1000.0
        return self.min_current_a * k, self.max_current_a * k

    @property
    def phase_options(self) -> tuple[int, ...]:
        return (1, 3) if self.switch_phases else (self.phases,)

    @property
    def max_power_kw(self) -> float:
        """The fastest charging power, on the most phases it can use [kW]."""
        return self.power_range_kw(max(self.phase_options))[1]


class Milestone(NamedTuple):
    """Energy wanted in a car by a time before its departure.

    Parameters
    ----------
    when : timestamp
        tz-aware.
    energy_kwh : float
        Energy in the car by then [kWh].
    penalty_eur_per_kwh : float or None
        Cost of each kWh short [EUR/kWh]; ``None``: the target penalty.
    """

    when: object
    energy_kwh: float
    penalty_eur_per_kwh: float | None = None


@dataclass(frozen=True)
class EVSession:
    """A car at (or arriving at) a wallbox within the horizon.

    Parameters
    ----------
    wallbox : str
        Name of the :class:`Wallbox`.
    mode : ChargingMode
        The owner's charging mode.
    capacity_kwh : float
        Car battery capacity [kWh].
    energy_kwh : float
        Energy in the car battery now (or at arrival) [kWh].
    target_kwh : float or None
        Energy wanted at departure [kWh]; ``None`` = full.
    departure : pandas-compatible timestamp or None
        When the car leaves (tz-aware); ``None`` = stays beyond the horizon.
    arrival : timestamp or None
        When it plugs in (tz-aware); ``None`` = plugged in now.
    min_kwh : float or None
        The owner's minimum at departure [kWh]: a hard promise for the part of it the
        wallbox can physically deliver by then (``smart`` and ``now``); the rest of it, and
        the target above it, stay soft.
    milestones : tuple of Milestone (or of (timestamp, float))
        Energy wanted in the car by earlier times [kWh] (tz-aware times, before the
        departure), soft at their penalty, by default the target's (``smart`` and ``now``): a
        car that may leave early gets what it would then need by then, the rest later.
    """

    wallbox: str = "ev"
    mode: ChargingMode = ChargingMode.SMART
    capacity_kwh: float = 60.0
    energy_kwh: float = 30.0
    target_kwh: float | None = None
    departure: object | None = None
    arrival: object | None = None
    min_kwh: float | None = None
    milestones: tuple[Milestone | tuple[object, float], ...] = ()

    def __post_init__(self) -> None:
        _check_finite(self)
        object.__setattr__(self, "mode", ChargingMode(self.mode))
        steps = tuple(Milestone(*m) for m in self.milestones)
        object.__setattr__(self, "milestones", steps)
        for m in steps:
            _require(
                self,
                "milestones",
                0 <= m.energy_kwh <= self.capacity_kwh,
                "energies must be in [0, capacity_kwh]",
            )
            penalty = m.penalty_eur_per_kwh
            ok = penalty is None or (math.isfinite(penalty) and penalty >= 0)
            _require(self, "milestones", ok, "penalties must be finite and >= 0")
        if self.min_kwh is not None:
            _require(
                self,
                "min_kwh",
                0 <= self.min_kwh <= self.capacity_kwh,
                "must be in [0, capacity_kwh]",
            )
        _require(self, "capacity_kwh", self.capacity_kwh > 0, "must be > 0")
        _require(
            self,
            "energy_kwh",
            0 <= self.energy_kwh <= self.capacity_kwh,
            "must be in [0, capacity]",
        )
        if self.target_kwh is not None:
            _require(
                self,
                "target_kwh",
                0 <= self.target_kwh <= self.capacity_kwh,
                "must be in [0, capacity_kwh]",
            )

    @property
    def target(self) -> float:
        """Target energy [kWh] (full when no target is set)."""
        return self.capacity_kwh if self.target_kwh is None else self.target_kwh


@dataclass(frozen=True)
class HeatPump:
    """A heat pump charging a thermal store (a building or a hot-water tank).

    The store is one node: ``C dT/dt = COP(T_out) P_el - H (T - T_out) - Q_demand``.

    Parameters
    ----------
    max_kw : float
        Maximum electric power [kW].
    min_kw : float
        Minimum electric power while running [kW] (0 = fully modulating).
    min_run_slots : int
        Minimum run time once started [slots]; 0 = none (no integer variables).
    capacity_kwh_per_k : float
        Thermal capacity of the store [kWh/K].
    loss_kw_per_k : float
        Heat loss to the outdoor air [kW/K].
    comfort_min_c, comfort_max_c : float
        Comfort band of the store temperature [degC] (soft).
    cop_at_7c : float
        COP at 7 degC outdoor temperature [-].
    cop_slope_per_k : float
        COP change per K of outdoor temperature [1/K]; COP is clipped to >= 1.
    """

    name: str = "hp"
    max_kw: float = 3.0
    min_kw: float = 0.0
    min_run_slots: int = 0
    capacity_kwh_per_k: float = 10.0
    loss_kw_per_k: float = 0.15
    comfort_min_c: float = 20.0
    comfort_max_c: float = 23.0
    cop_at_7c: float = 3.5
    cop_slope_per_k: float = 0.08

    def __post_init__(self) -> None:
        _check_finite(self)
        _require(self, "max_kw", self.max_kw > 0, "must be > 0")
        _require(self, "min_kw", 0 <= self.min_kw <= self.max_kw, "must be in [0, max_kw]")
        _require(self, "min_run_slots", self.min_run_slots >= 0, "must be >= 0")
        _require(self, "capacity_kwh_per_k", self.capacity_kwh_per_k > 0, "must be > 0")
        _require(self, "loss_kw_per_k", self.loss_kw_per_k >= 0, "must be >= 0")
        _require(self, "comfort_min_c", self.comfort_min_c <= self.comfort_max_c, "must be <= max")
        _require(self, "cop_at_7c", self.cop_at_7c >= 1, "must be >= 1")

    @property
    def needs_integers(self) -> bool:
        return self.min_kw > 0 or self.min_run_slots > 1


@dataclass(frozen=True)
class Site:
    """One home: its grid connection and devices. Device names must be unique."""

    grid: Grid = field(default_factory=Grid)
    pv: PV | None = field(default_factory=PV)
    battery: Battery | None = field(default_factory=Battery)
    wallboxes: tuple[Wallbox, ...] = ()
    heat_pumps: tuple[HeatPump, ...] = ()
    name: str = "site"

    def __post_init__(self) -> None:
        object.__setattr__(self, "wallboxes", tuple(self.wallboxes))
        object.__setattr__(self, "heat_pumps", tuple(self.heat_pumps))
        names = [d.name for d in (self.pv, self.battery) if d is not None]
        names += [w.name for w in self.wallboxes] + [h.name for h in self.heat_pumps]
        if len(set(names)) != len(names) or "grid" in names:
            raise ConfigError("Site.devices", f"device names must be unique, got {names}")

    def wallbox(self, name: str) -> Wallbox:
        for wb in self.wallboxes:
            if wb.name == name:
                return wb
        raise ConfigError("EVSession.wallbox", f"no wallbox named {name!r} on the site")

    @property
    def controllable_devices(self) -> int:
        """Devices §14a counts as controllable (battery, wallboxes, heat pumps)."""
        return (self.battery is not None) + len(self.wallboxes) + len(self.heat_pumps)


@dataclass(frozen=True)
class Tuning:
    """The parameters traders tune, per site or fleet group.

    Parameters
    ----------
    battery_wear_eur_per_kwh : float
        Degradation cost per kWh of throughput, counted as (charge + discharge) / 2 so one
        full cycle of the usable capacity costs ``capacity x wear`` [EUR/kWh].
    terminal_value_eur_per_kwh : float or None
        Value of energy left in the battery at the horizon end [EUR/kWh]; ``None`` = the
        median import price of the horizon x discharge efficiency.
    final_soc : float or None
        Battery SOC wanted at the horizon end [0-1] (e.g. a reserve for the next morning);
        soft: each kWh short costs ``final_soc_penalty_eur_per_kwh``. ``None`` = no target.
    final_soc_penalty_eur_per_kwh : float
        Cost of each kWh the battery ends below ``final_soc`` [EUR/kWh].
    ev_target_penalty_eur_per_kwh : float
        Cost of each kWh an EV misses of its target at departure [EUR/kWh].
    ev_solar_value_eur_per_kwh : float
        Value of a kWh put into a car in the solar modes, where no target forces charging;
        above the feed-in tariff so surplus goes to the car rather than the grid [EUR/kWh].
    comfort_penalty_eur_per_kh : float
        Cost per kelvin-hour outside the heat pump's comfort band [EUR/(K h)].
    reserve_penalty_eur_per_kwh : float
        Cost per kWh-hour below the battery reserve [EUR/(kWh h)].
    unserved_penalty_eur_per_kwh : float
        Value of lost load, used only when physics leaves no other choice [EUR/kWh].
    co2_price_eur_per_t : float
        Internal carbon price on grid imports [EUR/tCO2eq]; 0 = off.
    mip_gap : float
        Relative MIP gap at which the solver stops [-], of the plan's gross value (sum of the
        absolute objective terms). The default 0.5 % is far below what forecast errors move
        and lets most plans stop near the LP bound (see docs/optimizer.md); 0 = exact.
    mip_abs_gap_eur : float
        Absolute MIP gap at which the solver stops [EUR]; one cent per plan is far below
        what forecast errors move, and saves most of the branch-and-bound work.
    time_limit_s : float
        Solver time limit [s].
    """

    battery_wear_eur_per_kwh: float = 0.02
    terminal_value_eur_per_kwh: float | None = None
    final_soc: float | None = None
    final_soc_penalty_eur_per_kwh: float = 1.0
    ev_target_penalty_eur_per_kwh: float = 2.0
    ev_solar_value_eur_per_kwh: float = 0.2
    comfort_penalty_eur_per_kh: float = 2.0
    reserve_penalty_eur_per_kwh: float = 0.5
    unserved_penalty_eur_per_kwh: float = 10.0
    co2_price_eur_per_t: float = 0.0
    mip_gap: float = 5e-3
    mip_abs_gap_eur: float = 0.01
    time_limit_s: float = 10.0

    def __post_init__(self) -> None:
        _check_finite(self)
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                _require(self, f.name, value >= 0, "must be >= 0")
        _require(self, "mip_gap", self.mip_gap < 1, "must be < 1")
        if self.final_soc is not None:
            _require(self, "final_soc", self.final_soc <= 1, "must be in [0, 1]")
        _require(self, "time_limit_s", self.time_limit_s > 0, "must be > 0")
