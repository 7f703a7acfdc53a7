"""The physical twin behind the box simulator: battery, PV, household load, EV and heat pump.

The box resolves its control layers into one :class:`DeviceCommand` per step; the twin turns it
into powers and integrates the states (battery SOC, heat-store temperature, EV session energy).
Every step satisfies the house balance ``grid = load + ev + hp - pv - battery`` [kW]
(battery + = discharge) and the battery balance
``(charge * eta_c - discharge / eta_d) * dt = dSOC * capacity``.
Profiles come from the bundled real data (see :mod:`adapters.datasets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adapters import datasets
from adapters.heartbeat.esi_types import BatteryMode

PROFILE_STEP_S = 900


@dataclass(frozen=True)
class BatteryParams:
    """Home battery: ``capacity_kwh`` [kWh], power limits [kW], efficiencies, SOC [0-1]."""

    capacity_kwh: float = 10.0
    charge_max_kw: float = 5.0
    discharge_max_kw: float = 5.0
    eta_charge: float = 0.95
    eta_discharge: float = 0.95
    soc_min: float = 0.05
    soc_max: float = 1.0
    soc_init: float = 0.5


@dataclass(frozen=True)
class WallboxParams:
    """Wallbox: ``max_current_a`` [A], default ``phases``, ``voltage_v`` [V] per phase."""

    max_current_a: float = 16.0
    phases: int = 3
    voltage_v: float = 230.0
    #: The car's battery [kWh] and its SOC at plug-in [0-1], for the SOC the box reports
    #: (ESI v1.1; cars that tell the wallbox their SOC, e.g. over ISO 15118).
    car_capacity_kwh: float = 60.0
    car_arrival_soc: float = 0.3


@dataclass(frozen=True)
class HeatPumpParams:
    """Heat pump heating a thermal store that loses heat to the outdoor air.

    ``el_max_kw`` [kW electric], ``store_kwh_per_k`` [kWh/K], ``loss_kw_per_k`` [kW/K],
    ``t_set_c``/``band_k``/``boost_k`` [degC/K], COP = ``cop_0c + cop_slope * T_out`` clipped
    to [``cop_min``, ``cop_max``].
    """

    el_max_kw: float = 3.0
    store_kwh_per_k: float = 10.0
    loss_kw_per_k: float = 0.15
    t_set_c: float = 21.0
    band_k: float = 1.0
    boost_k: float = 2.0
    t_init_c: float = 21.0
    cop_0c: float = 3.0
    cop_slope: float = 0.08
    cop_min: float = 1.5
    cop_max: float = 6.0

    def cop(self, t_out_c: float) -> float:
        """Coefficient of performance at outdoor temperature ``t_out_c`` [degC]."""
        return float(np.clip(self.cop_0c + self.cop_slope * t_out_c, self.cop_min, self.cop_max))


@dataclass(frozen=True)
class SiteParams:
    """The devices of one simulated home."""

    pv: datasets.PvSystem = field(default_factory=lambda: datasets.PvSystem(peak_kw=8.0))
    battery: BatteryParams = field(default_factory=BatteryParams)
    wallbox: WallboxParams = field(default_factory=WallboxParams)
    heat_pump: HeatPumpParams = field(default_factory=HeatPumpParams)
    annual_load_kwh: float = 3500.0


@dataclass(frozen=True)
class DeviceCommand:
    """What the box applies this step (after precedence and clamping).

    ``battery_kw`` [kW, + discharge] with ``battery_mode``; AUTO = self-consumption.
    ``wallbox_current_a`` [A] (0 = pause), ``hp_sgready`` 1-4, ``hp_budget_kw`` [kW] or None,
    limits [kW] or None: ``grid_import_limit_kw`` (site cap), ``consumption_limit_kw`` (§14a,
    controllable devices together), ``feedin_limit_kw`` (export cap, curtails PV).
    """

    battery_kw: float = 0.0
    battery_mode: BatteryMode = BatteryMode.AUTO
    soc_min: float = 0.05
    soc_max: float = 1.0
    wallbox_current_a: float = 16.0
    wallbox_phases: int = 3
    hp_sgready: int = 2
    hp_budget_kw: float | None = None
    grid_import_limit_kw: float | None = None
    consumption_limit_kw: float | None = None
    feedin_limit_kw: float | None = None


@dataclass(frozen=True)
class TwinStep:
    """One integrated step: powers [kW] (mean over the step), SOC [0-1], temperatures [degC]."""

    t: float
    dt_s: float
    pv_kw: float
    load_kw: float
    ev_kw: float
    hp_kw: float
    battery_kw: float
    grid_kw: float
    soc_start: float
    soc_end: float
    t_store_c: float
    t_out_c: float
    ev_plugged: bool
    wallbox_phases: int
    hp_sgready: int

    @property
    def charge_kw(self) -> float:
        """Battery charging power [kW] >= 0."""
        return max(-self.battery_kw, 0.0)

    @property
    def discharge_kw(self) -> float:
        """Battery discharging power [kW] >= 0."""
        return max(self.battery_kw, 0.0)


@dataclass(frozen=True)
class Profiles:
    """Exogenous inputs on a 15-min UTC grid: PV [kW], load [kW], outdoor temperature [degC].

    ``heat_kw`` [kW thermal], if given, is drawn from the heat store besides its loss to the
    outdoor air (e.g. hot water, or a measured building demand).
    """

    start: float
    pv_kw: np.ndarray
    load_kw: np.ndarray
    t_out_c: np.ndarray
    ev_sessions: pd.DataFrame
    heat_kw: np.ndarray | None = None

    def at(self, t: float) -> tuple[float, float, float]:
        """PV, load, T_out at UNIX time ``t`` (the period repeats beyond its end)."""
        i = int((t - self.start) // PROFILE_STEP_S) % len(self.pv_kw)
        return float(self.pv_kw[i]), float(self.load_kw[i]), float(self.t_out_c[i])

    def heat_at(self, t: float) -> float:
        """Heat demand besides the store's loss at UNIX time ``t`` [kW thermal]."""
        if self.heat_kw is None:
            return 0.0
        return float(self.heat_kw[int((t - self.start) // PROFILE_STEP_S) % len(self.heat_kw)])


def bundled_profiles(
    start: str | pd.Timestamp, days: int, site: SiteParams, load: str = "bdew"
) -> Profiles:
    """Profiles from the bundled real data for ``days`` days from ``start`` (UTC).

    ``load`` is ``bdew`` (H25 profile scaled to ``site.annual_load_kwh``) or ``uci`` (the
    measured Sceaux week).
    """
    t0 = pd.Timestamp(start)
    if t0.tzinfo is None:
        raise ValueError("start: naive timestamp; use tz-aware UTC")
    index = pd.date_range(t0.tz_convert("UTC"), periods=days * 96, freq="15min")
    weather = datasets.weather_for_period(index)
    pv = datasets.pv_power(weather, site.pv)
    if load == "bdew":
        house = datasets.household_load_for_period(index, site.annual_load_kwh)
    elif load == "uci":
        house = datasets.uci_load_for_period(index)
    else:
        raise ValueError(f"load: {load!r} is not 'bdew' or 'uci'")
    sessions = datasets.ev_sessions_for_period(
        datasets.read_ev_sessions(), index[0], index[-1] + pd.Timedelta(minutes=15)
    )
    return Profiles(
        start=index[0].timestamp(),
        pv_kw=pv.to_numpy(float),
        load_kw=house.to_numpy(float),
        t_out_c=weather["temp_air_c"].to_numpy(float),
        ev_sessions=sessions,
    )


class Twin:
    """Mutable physical state of one home, stepped by the box simulator."""

    def __init__(self, site: SiteParams, profiles: Profiles) -> None:
        self.site = site
        self.profiles = profiles
        self.soc = site.battery.soc_init
        self.t_store_c = site.heat_pump.t_init_c
        self.hp_on = False
        plugin = profiles.ev_sessions["plugin_utc"].map(pd.Timestamp.timestamp).to_numpy()
        self._plugout = profiles.ev_sessions["plugout_utc"].map(pd.Timestamp.timestamp).to_numpy()
        # a car unplugged and plugged in again within the same minute (the session data has
        # such pairs) is unplugged for a minute: the box, and a controller, see two sessions
        self._plugin = np.where(np.isin(plugin, self._plugout), plugin + 60.0, plugin)
        self._ev_left = profiles.ev_sessions["energy_kwh"].to_numpy(float).copy()
        self.last: TwinStep | None = None

    def snapshot(self) -> tuple[float, float, bool, np.ndarray]:
        """The mutable states: battery SOC, store temperature, heat pump on, car energy left."""
        return self.soc, self.t_store_c, self.hp_on, self._ev_left.copy()

    def restore(self, state: tuple[float, float, bool, np.ndarray]) -> None:
        """Back to a :meth:`snapshot` (keeps ``last``, the reading of the step taken since)."""
        self.soc, self.t_store_c, self.hp_on, left = state
        self._ev_left = left.copy()

    @classmethod
    def from_bundled_data(
        cls,
        start: str | pd.Timestamp,
        days: int = 1,
        site: SiteParams | None = None,
        load: str = "bdew",
    ) -> Twin:
        """A twin driven by the bundled weather, load and EV data for the given period."""
        site = site or SiteParams()
        return cls(site, bundled_profiles(start, days, site, load))

    def ev_now(self, t: float) -> tuple[float | None, float | None]:
        """The plugged car's SOC [0-1] and AC energy charged since plug-in [kWh]; (None, None)
        without a car. The car takes the energy 1:1 (as :meth:`step` counts it)."""
        k = self.ev_session(t)
        if k is None:
            return None, None
        need = float(self.profiles.ev_sessions["energy_kwh"].iloc[k])
        charged = need - float(self._ev_left[k])
        wb = self.site.wallbox
        soc = min(wb.car_arrival_soc + charged / wb.car_capacity_kwh, 1.0)
        return soc, charged

    def ev_session(self, t: float) -> int | None:
        """Index of the EV session plugged in at ``t``, or None."""
        hit = np.flatnonzero((self._plugin <= t) & (t < self._plugout))
        return int(hit[0]) if len(hit) else None

    def step(self, t: float, dt_s: float, cmd: DeviceCommand) -> TwinStep:
        """Advance by ``dt_s`` [s] from ``t`` [UNIX s] under ``cmd``; returns the step record."""
        dt_h = dt_s / 3600.0
        pv, load, t_out = self.profiles.at(t)
        ev, plugged = self._ev_power(t, dt_h, cmd)
        hp = self._hp_power(cmd)
        ev, hp = _limit_controllable(ev, hp, cmd.consumption_limit_kw)
        bat = self._battery_power(load + ev + hp - pv, dt_h, cmd)
        grid = load + ev + hp - pv - bat
        if cmd.grid_import_limit_kw is not None and grid > cmd.grid_import_limit_kw and bat < 0:
            bat = min(bat + (grid - cmd.grid_import_limit_kw), 0.0)
            grid = load + ev + hp - pv - bat
        if cmd.feedin_limit_kw is not None and -grid > cmd.feedin_limit_kw:
            pv -= min(pv, -grid - cmd.feedin_limit_kw)
            grid = load + ev + hp - pv - bat
        soc0 = self.soc
        b = self.site.battery
        self.soc += (
            (max(-bat, 0) * b.eta_charge - max(bat, 0) / b.eta_discharge) * dt_h / (b.capacity_kwh)
        )
        hpp = self.site.heat_pump
        heat = hp * hpp.cop(t_out) - hpp.loss_kw_per_k * (self.t_store_c - t_out)
        heat -= self.profiles.heat_at(t)
        self.t_store_c += heat * dt_h / hpp.store_kwh_per_k
        if plugged is not None:
            self._ev_left[plugged] = max(self._ev_left[plugged] - ev * dt_h, 0.0)
        self.last = TwinStep(
            t, dt_s, pv, load, ev, hp, bat, grid, soc0, self.soc, self.t_store_c, t_out,
            plugged is not None, cmd.wallbox_phases, cmd.hp_sgready,
        )  # fmt: skip
        return self.last

    def _ev_power(self, t: float, dt_h: float, cmd: DeviceCommand) -> tuple[float, int | None]:
        k = self.ev_session(t)
        if k is None:
            return 0.0, None
        wb = self.site.wallbox
        p = cmd.wallbox_phases * wb.voltage_v * cmd.wallbox_current_a / 1000.0
        return min(p, self._ev_left[k] / dt_h), k

    def _hp_power(self, cmd: DeviceCommand) -> float:
        hp = self.site.heat_pump
        if cmd.hp_sgready == 1:
            self.hp_on = False
        elif cmd.hp_sgready == 4:
            self.hp_on = True
        else:
            target = hp.t_set_c + (hp.boost_k if cmd.hp_sgready == 3 else 0.0)
            if self.t_store_c < target - hp.band_k / 2:
                self.hp_on = True
            elif self.t_store_c > target + hp.band_k / 2:
                self.hp_on = False
        p = hp.el_max_kw if self.hp_on else 0.0
        return p if cmd.hp_budget_kw is None else min(p, cmd.hp_budget_kw)

    def _battery_power(self, net_kw: float, dt_h: float, cmd: DeviceCommand) -> float:
        b = self.site.battery
        mode = cmd.battery_mode
        if mode == BatteryMode.AUTO:
            p = net_kw
        elif mode == BatteryMode.HOLD:
            p = min(net_kw, 0.0)
        else:
            p = cmd.battery_kw
            if mode == BatteryMode.NO_GRID_CHARGE and p < 0:
                p = max(p, min(net_kw, 0.0))
        soc_lo, soc_hi = max(cmd.soc_min, b.soc_min), min(cmd.soc_max, b.soc_max)
        p_dis = min(b.discharge_max_kw, max(self.soc - soc_lo, 0) * b.capacity_kwh
                    * b.eta_discharge / dt_h)  # fmt: skip
        p_ch = min(b.charge_max_kw, max(soc_hi - self.soc, 0) * b.capacity_kwh
                   / b.eta_charge / dt_h)  # fmt: skip
        return float(np.clip(p, -p_ch, p_dis))


def _limit_controllable(ev: float, hp: float, limit: float | None) -> tuple[float, float]:
    """§14a: controllable consumption (EV first, then heat pump) reduced to ``limit`` [kW]."""
    if limit is None or ev + hp <= limit:
        return ev, hp
    ev = max(min(ev, limit - hp), 0.0)
    hp = min(hp, limit - ev)
    return ev, max(hp, 0.0)
