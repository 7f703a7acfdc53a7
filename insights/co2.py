"""CO2 impact: emissions caused by grid imports and emissions avoided against two baselines.

Method (docs/insights.md, "CO2"): every kWh imported in a slot carries that slot's grid
intensity [gCO2eq/kWh]. The same load on the same slots is priced in CO2 under

* the *no PV/battery* baseline (all consumption imported), and
* the *self-consumption* baseline (PV and the battery run by a simple rule).

``avoided_total = no_pv - caused`` splits into ``avoided_by_self_consumption = no_pv -
self_consumption`` (what any PV/battery system saves) and ``avoided_by_shifting =
self_consumption - caused`` (what moving grid energy into cleaner slots saved on top; it is
negative when price-driven shifting chose dirtier slots). Exports earn no CO2 credit: the
avoided emissions of exported PV belong to whoever consumes that energy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from insights.flows import InsightSettings, slot_quantities


@dataclass(frozen=True)
class Co2Impact:
    """Emissions of one period [kgCO2eq].

    Attributes
    ----------
    caused_kg : float
        Sum over slots of import [kWh] x intensity [g/kWh] / 1000.
    no_pv_kg : float
        Same load fully imported (baseline a).
    self_consumption_kg : float
        Imports of the rule-based PV/battery baseline (baseline b).
    avoided_total_kg, avoided_by_self_consumption_kg, avoided_by_shifting_kg : float
        ``no_pv - caused``, ``no_pv - self_consumption``, ``self_consumption - caused``.
    """

    caused_kg: float
    no_pv_kg: float
    self_consumption_kg: float
    avoided_total_kg: float
    avoided_by_self_consumption_kg: float
    avoided_by_shifting_kg: float

    @classmethod
    def from_sums(cls, sums: Mapping[str, float]) -> Co2Impact:
        """Build from summed :func:`slot_quantities` columns ``co2_*_kg``."""
        caused = float(sums["co2_kg"])
        no_pv = float(sums["co2_no_pv_kg"])
        sc = float(sums["co2_self_consumption_kg"])
        return cls(caused, no_pv, sc, no_pv - caused, no_pv - sc, sc - caused)


def co2_impact(frame: pd.DataFrame, settings: InsightSettings | None = None) -> Co2Impact:
    """CO2 impact of a whole energy frame [kgCO2eq].

    Parameters
    ----------
    frame : pandas.DataFrame
        An energy frame with ``co2_g_per_kwh`` [gCO2eq/kWh].
    settings : InsightSettings, optional
        Battery of the self-consumption baseline.
    """
    q = slot_quantities(frame, settings)
    return Co2Impact.from_sums({str(k): float(v) for k, v in q.sum().items()})
