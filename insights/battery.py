"""Battery bookkeeping for insights: origin of stored energy and a rule-based baseline.

Two sequential models live here, so each is a single loop over slots (state carries from one
slot to the next; there is no closed form):

* :func:`battery_pv_share` — a *proportional pool*: the battery holds energy tagged by
  origin (PV or grid). Charging adds the AC energy of each origin; discharging removes
  ``discharged / round_trip_efficiency`` from the pool in proportion to its current mix, so
  losses are borne pro rata by both origins. The PV share of each discharge is the pool's PV
  share just before it.
* :func:`simulate_self_consumption` — a plain PV-battery system without optimization: charge
  from PV surplus, discharge into deficit, never touch the grid on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatteryParams:
    """A home battery for the self-consumption baseline.

    Attributes
    ----------
    capacity_kwh : float
        Usable capacity between SOC 0 and 1 [kWh].
    power_kw : float
        Charge and discharge power limit (AC) [kW].
    charge_efficiency, discharge_efficiency : float
        One-way efficiencies (AC to cell, cell to AC) [-].
    soc_min : float
        Lowest SOC the baseline discharges to [0-1].
    soc_initial : float
        SOC at the first slot [0-1].
    """

    capacity_kwh: float = 10.0
    power_kw: float = 5.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    soc_min: float = 0.05
    soc_initial: float = 0.05

    def __post_init__(self) -> None:
        if self.capacity_kwh < 0 or self.power_kw < 0:
            raise ValueError("capacity_kwh and power_kw must be >= 0")
        for name in ("charge_efficiency", "discharge_efficiency"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be in (0, 1]")
        if not 0 <= self.soc_min <= self.soc_initial <= 1:
            raise ValueError("soc_min and soc_initial: need 0 <= soc_min <= soc_initial <= 1")


@dataclass(frozen=True)
class PoolParams:
    """Parameters of the proportional origin pool.

    Attributes
    ----------
    round_trip_efficiency : float
        AC-to-AC efficiency used to remove losses from the pool [-].
    initial_pv_share : float
        PV share assumed for energy that was already in the battery when the frame starts
        (or that the pool cannot explain). 0 is conservative: unknown energy is never
        counted as own energy [-].
    """

    round_trip_efficiency: float = 0.9
    initial_pv_share: float = 0.0


def battery_pv_share(
    pv_charge_kwh: np.ndarray,
    grid_charge_kwh: np.ndarray,
    discharge_kwh: np.ndarray,
    params: PoolParams | None = None,
) -> np.ndarray:
    """PV share of the energy discharged in each slot, from a proportional origin pool.

    Parameters
    ----------
    pv_charge_kwh, grid_charge_kwh : numpy.ndarray
        AC energy charged from PV and from the grid per slot [kWh].
    discharge_kwh : numpy.ndarray
        AC energy discharged per slot [kWh].
    params : PoolParams, optional

    Returns
    -------
    numpy.ndarray
        Share 0-1 of each slot's discharge that originates from PV (``initial_pv_share``
        where nothing is discharged).
    """
    p = params or PoolParams()
    share = np.full(len(discharge_kwh), p.initial_pv_share)
    pool_pv, pool_grid = 0.0, 0.0
    for i, (c_pv, c_grid, d) in enumerate(
        zip(pv_charge_kwh.tolist(), grid_charge_kwh.tolist(), discharge_kwh.tolist(), strict=True)
    ):
        if d > 0:
            drawn = d / p.round_trip_efficiency
            pool = pool_pv + pool_grid
            known = min(drawn, pool)
            frac = pool_pv / pool if pool > 0 else 0.0
            # energy the pool cannot explain was in the battery before the frame started
            share[i] = (known * frac + (drawn - known) * p.initial_pv_share) / drawn
            pool_pv -= known * frac
            pool_grid -= known * (1.0 - frac)
        pool_pv += c_pv
        pool_grid += c_grid
    return share


def simulate_self_consumption(
    pv_kw: np.ndarray, load_kw: np.ndarray, battery: BatteryParams | None, dt_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rule-based PV self-consumption: charge from surplus, discharge into deficit.

    Parameters
    ----------
    pv_kw, load_kw : numpy.ndarray
        PV output and total load per slot [kW].
    battery : BatteryParams or None
        ``None`` simulates PV without a battery.
    dt_h : float
        Slot length [h].

    Returns
    -------
    battery_kw, grid_kw : numpy.ndarray
        Battery AC power (+ discharge) and grid power (+ import) per slot [kW].
    """
    net = np.asarray(load_kw, dtype=float) - np.asarray(pv_kw, dtype=float)
    bat = np.zeros(len(net))
    if battery is not None and battery.capacity_kwh > 0:
        b = battery
        stored = b.soc_initial * b.capacity_kwh
        floor = b.soc_min * b.capacity_kwh
        for i, deficit in enumerate(net.tolist()):
            if deficit < 0:
                room_kw = (b.capacity_kwh - stored) / b.charge_efficiency / dt_h
                charge = min(-deficit, b.power_kw, room_kw)
                stored += charge * b.charge_efficiency * dt_h
                bat[i] = -charge
            elif deficit > 0:
                avail_kw = max(stored - floor, 0.0) * b.discharge_efficiency / dt_h
                discharge = min(deficit, b.power_kw, avail_kw)
                stored -= discharge / b.discharge_efficiency * dt_h
                bat[i] = discharge
    return bat, net - bat
