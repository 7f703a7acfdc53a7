"""Per-slot energy, money and CO2 quantities that every highlight is a sum of.

:func:`slot_quantities` turns a checked energy frame into a table of *additive* per-slot
quantities (kWh, EUR, kg). Every ratio in the highlights is formed from sums of these columns
over a period, never averaged from per-slot ratios, so a period of any length (including DST
days with 92 or 100 quarter-hours) aggregates exactly.

Energy inside a slot is allocated with a fixed priority (docs/insights.md, "Allocation"):
PV feeds the loads first, then the battery, then the grid; the battery feeds the loads before
the grid; the grid covers what remains, including grid charging of the battery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from insights.battery import (
    BatteryParams,
    PoolParams,
    battery_pv_share,
    simulate_self_consumption,
)
from insights.frame import BalanceTolerance, step_hours, validate_energy_frame

G_PER_KG = 1000.0


@dataclass(frozen=True)
class InsightSettings:
    """Site parameters the insights need beyond the measured frame.

    Attributes
    ----------
    tz : str
        The site's local time zone; periods are local calendar days/weeks/months/years.
    battery : BatteryParams or None
        The battery of the self-consumption counterfactual; ``None`` = the site has none.
    pool : PoolParams
        Origin bookkeeping of the measured battery.
    tolerance : BalanceTolerance
        Energy-balance tolerance of the input check.
    """

    tz: str = "Europe/Berlin"
    battery: BatteryParams | None = field(default_factory=BatteryParams)
    pool: PoolParams = field(default_factory=PoolParams)
    tolerance: BalanceTolerance = field(default_factory=BalanceTolerance)


def slot_quantities(frame: pd.DataFrame, settings: InsightSettings | None = None) -> pd.DataFrame:
    """Additive per-slot quantities of an energy frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        An energy frame (see :mod:`insights.frame`); it is validated here.
    settings : InsightSettings, optional

    Returns
    -------
    pandas.DataFrame
        Same index; columns ending in ``_kwh`` [kWh], ``_eur`` [EUR], ``_kg`` [kgCO2eq],
        ``_h`` [h]. See docs/insights.md for each definition.
    """
    s = settings or InsightSettings()
    validate_energy_frame(frame, tolerance=s.tolerance)
    dt = step_hours(frame.index)  # type: ignore[arg-type]
    out = _measured_energy(frame, dt)
    out = out.join(_allocation(out, s.pool))
    out = out.join(_money_and_co2(frame, out, s.battery, dt))
    return out


def _measured_energy(frame: pd.DataFrame, dt: float) -> pd.DataFrame:
    def kwh(x: pd.Series) -> pd.Series:
        return x.astype(float) * dt

    out = pd.DataFrame(index=frame.index)
    out["pv_kwh"] = kwh(frame["pv_kw"])
    out["house_kwh"] = kwh(frame["house_kw"])
    out["ev_kwh"] = kwh(frame["ev_kw"])
    out["hp_kwh"] = kwh(frame["hp_kw"])
    out["consumption_kwh"] = out["house_kwh"] + out["ev_kwh"] + out["hp_kwh"]
    out["import_kwh"] = kwh(frame["grid_kw"].clip(lower=0))
    out["export_kwh"] = kwh((-frame["grid_kw"]).clip(lower=0))
    out["battery_charge_kwh"] = kwh((-frame["battery_kw"]).clip(lower=0))
    out["battery_discharge_kwh"] = kwh(frame["battery_kw"].clip(lower=0))
    if "hp_heat_kw" in frame.columns:
        heat = frame["hp_heat_kw"]
        # COP only over slots where heat is known, so a partly missing meter does not bias it
        out["hp_heat_kwh"] = kwh(heat.fillna(0.0))
        out["hp_metered_kwh"] = out["hp_kwh"].where(heat.notna(), 0.0)
    return out


def _allocation(e: pd.DataFrame, pool: PoolParams) -> pd.DataFrame:
    pv, load = e["pv_kwh"].to_numpy(), e["consumption_kwh"].to_numpy()
    charge, discharge = e["battery_charge_kwh"].to_numpy(), e["battery_discharge_kwh"].to_numpy()
    pv_to_load = np.minimum(pv, load)
    pv_to_battery = np.minimum(pv - pv_to_load, charge)
    grid_to_battery = charge - pv_to_battery
    battery_to_load = np.minimum(discharge, load - pv_to_load)
    share = battery_pv_share(pv_to_battery, grid_to_battery, discharge, pool)
    own = pv_to_load + battery_to_load * share
    own_frac = np.divide(own, load, out=np.zeros_like(own), where=load > 0)
    return pd.DataFrame(
        {
            "pv_to_load_kwh": pv_to_load,
            "pv_to_battery_kwh": pv_to_battery,
            "grid_to_battery_kwh": grid_to_battery,
            "battery_to_load_kwh": battery_to_load,
            "battery_pv_to_load_kwh": battery_to_load * share,
            "own_supply_kwh": own,
            "ev_own_kwh": e["ev_kwh"].to_numpy() * own_frac,
        },
        index=e.index,
    )


def _money_and_co2(
    frame: pd.DataFrame, e: pd.DataFrame, battery: BatteryParams | None, dt: float
) -> pd.DataFrame:
    p_imp = frame["import_eur_per_kwh"].to_numpy(dtype=float)
    p_exp = frame["export_eur_per_kwh"].to_numpy(dtype=float)
    ci_kg = frame["co2_g_per_kwh"].to_numpy(dtype=float) / G_PER_KG
    imp, exp = e["import_kwh"].to_numpy(), e["export_kwh"].to_numpy()
    load = e["consumption_kwh"].to_numpy()
    _, grid_sc_kw = simulate_self_consumption(
        frame["pv_kw"].to_numpy(dtype=float), load / dt, battery, dt
    )
    imp_sc, exp_sc = np.clip(grid_sc_kw, 0, None) * dt, np.clip(-grid_sc_kw, 0, None) * dt
    negative = p_imp < 0
    return pd.DataFrame(
        {
            "cost_eur": imp * p_imp - exp * p_exp,
            "cost_no_pv_eur": load * p_imp,
            "cost_self_consumption_eur": imp_sc * p_imp - exp_sc * p_exp,
            "import_self_consumption_kwh": imp_sc,
            "export_self_consumption_kwh": exp_sc,
            "co2_kg": imp * ci_kg,
            "co2_no_pv_kg": load * ci_kg,
            "co2_self_consumption_kg": imp_sc * ci_kg,
            "negative_price_h": np.where(negative, dt, 0.0),
            "negative_price_import_h": np.where(negative & (imp > 0), dt, 0.0),
            "negative_price_import_kwh": np.where(negative, imp, 0.0),
            "negative_price_import_eur": np.where(negative, imp * p_imp, 0.0),
        },
        index=e.index,
    )
