"""Battery flexibility around a plan: how much more a battery could give or take per slot.

Definitions (per slot of length dt, the deviation confined to that one slot):

* ``energy_kwh``: energy in the battery at the slot start as planned [kWh];
* ``up_kw``: extra net AC output possible (more discharge or less charge than planned)
  ``= max(0, min(P_dis_max, (E - E_min) eta_d / dt) - (P_dis - P_ch))``;
* ``down_kw``: extra net AC input possible (more charge or less discharge than planned)
  ``= max(0, min(P_ch_max, (E_max - E) / (eta_c dt)) - (P_ch - P_dis))``;

with E the planned energy at the slot start, E_min / E_max the hard SOC window times the
capacity, and P_ch / P_dis the planned charge / discharge power [kW].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.timeindex import check_index
from optimizer import Battery

FLEXIBILITY_COLUMNS = ("energy_kwh", "up_kw", "down_kw")


def _flows(slots: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if "battery_charge_kw" in slots and "battery_discharge_kw" in slots:
        charge = slots["battery_charge_kw"].to_numpy(float)
        discharge = slots["battery_discharge_kw"].to_numpy(float)
    elif "battery_kw" in slots:
        net = slots["battery_kw"].to_numpy(float)  # + = discharge
        charge, discharge = np.maximum(-net, 0.0), np.maximum(net, 0.0)
    else:
        raise ValueError("plan has no battery power column (battery_kw or charge/discharge)")
    return charge, discharge


def battery_flexibility(slots: pd.DataFrame, battery: Battery) -> pd.DataFrame:
    """Stored energy and up/down power flexibility per slot of a battery's plan.

    Parameters
    ----------
    slots : pandas.DataFrame
        Plan rows on a UTC index with a fixed step: ``battery_soc`` at the slot end [0-1] and
        ``battery_charge_kw`` / ``battery_discharge_kw`` [kW] (or ``battery_kw``, + = discharge).
    battery : Battery
        Capacity [kWh], power limits [kW], efficiencies and SOC window [0-1].

    Returns
    -------
    pandas.DataFrame
        ``energy_kwh`` [kWh], ``up_kw`` and ``down_kw`` [kW] per slot (see module docstring).
    """
    dt = check_index(pd.DatetimeIndex(slots.index), name="slots.index") / pd.Timedelta(hours=1)
    if "battery_soc" not in slots:
        raise ValueError("plan has no battery_soc column")
    charge, discharge = _flows(slots)
    eta_c, eta_d = battery.charge_efficiency, battery.discharge_efficiency
    end = slots["battery_soc"].to_numpy(float) * battery.capacity_kwh
    start = end - eta_c * charge * dt + discharge * dt / eta_d
    e_min, e_max = battery.soc_min * battery.capacity_kwh, battery.soc_max * battery.capacity_kwh
    max_out = np.minimum(battery.discharge_kw, np.maximum(start - e_min, 0.0) * eta_d / dt)
    max_in = np.minimum(battery.charge_kw, np.maximum(e_max - start, 0.0) / (eta_c * dt))
    return pd.DataFrame(
        {
            "energy_kwh": start,
            "up_kw": np.maximum(max_out - (discharge - charge), 0.0),
            "down_kw": np.maximum(max_in - (charge - discharge), 0.0),
        },
        index=slots.index,
    )
