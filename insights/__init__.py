"""Insights: energy highlights, CO2 impact and savings, as pure functions over energy frames.

The input is an *energy frame* (:mod:`insights.frame`); every definition is in
docs/insights.md. No I/O happens here: the PNG card is returned as bytes.
"""

from insights.battery import BatteryParams, PoolParams, simulate_self_consumption
from insights.co2 import Co2Impact, co2_impact
from insights.flows import InsightSettings, slot_quantities
from insights.frame import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TELEMETRY_COLUMNS,
    BalanceReport,
    BalanceTolerance,
    EnergyFrameError,
    assemble_energy_frame,
    energy_frame_from_telemetry,
    validate_energy_frame,
)
from insights.highlights import Highlights, PeriodHighlights, energy_highlights
from insights.moments import NotableMoment, notable_moments
from insights.price_study import (
    daily_price_spread,
    negative_price_hours,
    quarter_hour_vs_hourly,
)
from insights.share import share_card_png, share_text

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TELEMETRY_COLUMNS",
    "BalanceReport",
    "BalanceTolerance",
    "BatteryParams",
    "Co2Impact",
    "EnergyFrameError",
    "Highlights",
    "InsightSettings",
    "NotableMoment",
    "PeriodHighlights",
    "PoolParams",
    "assemble_energy_frame",
    "co2_impact",
    "daily_price_spread",
    "energy_frame_from_telemetry",
    "energy_highlights",
    "negative_price_hours",
    "notable_moments",
    "quarter_hour_vs_hourly",
    "share_card_png",
    "share_text",
    "simulate_self_consumption",
    "slot_quantities",
    "validate_energy_frame",
]
