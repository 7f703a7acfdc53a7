"""The energy frame: the one input every insight function reads.

An energy frame is a :class:`pandas.DataFrame` on a tz-aware UTC index with a fixed step
(:func:`core.timeindex.check_index`), values labelled at slot start. Power columns are the
**mean power over the slot** in kW:

==========================  =========================================================
column                      meaning
==========================  =========================================================
``pv_kw``                   PV AC output, >= 0
``house_kw``                household load without EV and heat pump, >= 0
``ev_kw``                   wallbox charging power, >= 0
``hp_kw``                   heat-pump electrical input, >= 0
``battery_kw``              home battery AC power, + = discharge, - = charge
``grid_kw``                 grid connection point, + = import, - = export
``soc`` (optional)          battery state of charge at slot start, 0-1
``hp_heat_kw`` (optional)   heat delivered by the heat pump, kW thermal
``import_eur_per_kwh``      retail price paid for imported energy [EUR/kWh]
``export_eur_per_kwh``      feed-in remuneration for exported energy [EUR/kWh]
``co2_g_per_kwh``           grid carbon intensity [gCO2eq/kWh]
==========================  =========================================================

The balance ``grid = house + ev + hp - pv - battery`` must hold slot by slot within a
tolerance; see :func:`check_energy_balance`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.timeindex import check_index

POWER_COLUMNS: tuple[str, ...] = ("pv_kw", "house_kw", "ev_kw", "hp_kw", "battery_kw", "grid_kw")
PRICE_COLUMNS: tuple[str, ...] = ("import_eur_per_kwh", "export_eur_per_kwh", "co2_g_per_kwh")
OPTIONAL_COLUMNS: tuple[str, ...] = ("soc", "hp_heat_kw")
REQUIRED_COLUMNS: tuple[str, ...] = POWER_COLUMNS + PRICE_COLUMNS
NON_NEGATIVE_COLUMNS: tuple[str, ...] = ("pv_kw", "house_kw", "ev_kw", "hp_kw")


class EnergyFrameError(ValueError):
    """An energy frame is unusable: missing columns, bad values or a gross balance mismatch."""


@dataclass(frozen=True)
class BalanceTolerance:
    """How closely ``grid = house + ev + hp - pv - battery`` must hold.

    Attributes
    ----------
    report_kw : float
        Slots whose residual exceeds this are counted in the report [kW].
    gross_kw : float
        Any slot whose residual exceeds this makes the frame unusable [kW].
    """

    report_kw: float = 0.05
    gross_kw: float = 1.0


@dataclass(frozen=True)
class BalanceReport:
    """Result of the balance check.

    Attributes
    ----------
    max_residual_kw : float
        Largest absolute slot residual ``grid - (house + ev + hp - pv - battery)`` [kW].
    residual_kwh : float
        Sum of absolute residual energy over the frame [kWh].
    slots_over_tolerance : int
        Number of slots whose residual exceeds ``BalanceTolerance.report_kw``.
    n_slots : int
        Number of slots checked.
    """

    max_residual_kw: float
    residual_kwh: float
    slots_over_tolerance: int
    n_slots: int


def step_hours(index: pd.DatetimeIndex) -> float:
    """The slot length of a checked index [h]."""
    return float(check_index(index) / pd.Timedelta(hours=1))


def assemble_energy_frame(
    power: pd.DataFrame,
    *,
    import_eur_per_kwh: pd.Series | None = None,
    export_eur_per_kwh: pd.Series | None = None,
    co2_g_per_kwh: pd.Series | None = None,
    tolerance: BalanceTolerance | None = None,
) -> pd.DataFrame:
    """Join power telemetry and per-slot price/CO2 series into a checked energy frame.

    Parameters
    ----------
    power : pandas.DataFrame
        The power columns (see module docstring) [kW]; may already hold the price columns.
    import_eur_per_kwh, export_eur_per_kwh : pandas.Series, optional
        Per-slot prices [EUR/kWh] on the same index; override columns of ``power``.
    co2_g_per_kwh : pandas.Series, optional
        Per-slot grid carbon intensity [gCO2eq/kWh] on the same index.
    tolerance : BalanceTolerance, optional
        Balance tolerance; defaults to :class:`BalanceTolerance()`.

    Returns
    -------
    pandas.DataFrame
        A copy with all required columns, float dtype, checked by :func:`validate_energy_frame`.
    """
    frame = power.copy()
    extra = {
        "import_eur_per_kwh": import_eur_per_kwh,
        "export_eur_per_kwh": export_eur_per_kwh,
        "co2_g_per_kwh": co2_g_per_kwh,
    }
    for name, series in extra.items():
        if series is None:
            continue
        if not series.index.equals(frame.index):
            raise EnergyFrameError(f"{name}: index does not match the power frame's index")
        frame[name] = series.to_numpy(dtype=float)
    validate_energy_frame(frame, tolerance=tolerance)
    return frame


#: Store/telemetry column (``{device}-power_kw``, see adapters.store.telemetry) -> frame column.
TELEMETRY_COLUMNS: dict[str, str] = {
    "pv-power_kw": "pv_kw",
    "house-power_kw": "house_kw",
    "wallbox-power_kw": "ev_kw",
    "heatpump-power_kw": "hp_kw",
    "battery-power_kw": "battery_kw",
    "grid-power_kw": "grid_kw",
}


def energy_frame_from_telemetry(
    window: pd.DataFrame,
    *,
    import_eur_per_kwh: pd.Series,
    export_eur_per_kwh: pd.Series,
    co2_g_per_kwh: pd.Series,
    tolerance: BalanceTolerance | None = None,
) -> pd.DataFrame:
    """An energy frame from a telemetry window in the store's vocabulary.

    Parameters
    ----------
    window : pandas.DataFrame
        Mean power per device [kW] with columns ``{device}-power_kw`` (``TelemetryStore.window``
        output); an absent column or an all-NaN column is a device the site does not have (0 kW).
        Optional ``battery-soc`` is passed on as ``soc``.
    import_eur_per_kwh, export_eur_per_kwh : pandas.Series
        Per-slot prices [EUR/kWh] on the window's index.
    co2_g_per_kwh : pandas.Series
        Per-slot grid intensity [gCO2eq/kWh] on the window's index.
    tolerance : BalanceTolerance, optional

    Raises
    ------
    EnergyFrameError
        A present device has slots without data (named with the count and the first slot): the
        caller decides whether to fill or to cut the window, insights never invent energy.
    """
    power = pd.DataFrame(index=window.index)
    for source, target in TELEMETRY_COLUMNS.items():
        column = window[source] if source in window.columns else None
        if column is None or column.isna().all():
            power[target] = 0.0
            continue
        gaps = column.isna()
        if gaps.any():
            first = window.index[int(gaps.to_numpy().argmax())]
            raise EnergyFrameError(
                f"{source}: {int(gaps.sum())} slot(s) without data, first at {first}"
            )
        power[target] = column.astype(float)
    if "battery-soc" in window.columns and window["battery-soc"].notna().all():
        power["soc"] = window["battery-soc"].astype(float)
    return assemble_energy_frame(
        power,
        import_eur_per_kwh=import_eur_per_kwh,
        export_eur_per_kwh=export_eur_per_kwh,
        co2_g_per_kwh=co2_g_per_kwh,
        tolerance=tolerance,
    )


def validate_energy_frame(
    frame: pd.DataFrame, *, tolerance: BalanceTolerance | None = None
) -> BalanceReport:
    """Check an energy frame and return its balance report.

    Raises
    ------
    core.timeindex.TimeIndexError
        Naive, non-UTC or irregular index.
    EnergyFrameError
        Missing columns (all named), NaN in a required column, negative PV or load, SOC
        outside 0-1, or a slot whose balance residual exceeds ``tolerance.gross_kw``.
    """
    check_index(frame.index, name="energy frame index")  # type: ignore[arg-type]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise EnergyFrameError(f"energy frame: missing columns {', '.join(missing)}")
    for column in REQUIRED_COLUMNS:
        if frame[column].isna().any():
            raise EnergyFrameError(f"{column}: contains NaN")
    for column in NON_NEGATIVE_COLUMNS:
        if (frame[column] < 0).any():
            raise EnergyFrameError(f"{column}: negative values (must be >= 0 kW)")
    if "soc" in frame.columns and ((frame["soc"] < 0) | (frame["soc"] > 1)).any():
        raise EnergyFrameError("soc: values outside 0-1")
    return check_energy_balance(frame, tolerance=tolerance or BalanceTolerance())


def check_energy_balance(frame: pd.DataFrame, *, tolerance: BalanceTolerance) -> BalanceReport:
    """Compare measured grid power with ``house + ev + hp - pv - battery`` slot by slot."""
    residual = frame["grid_kw"].to_numpy(dtype=float) - balance_grid_kw(frame)
    abs_res = np.abs(residual)
    worst = float(abs_res.max())
    if worst > tolerance.gross_kw:
        at = frame.index[int(abs_res.argmax())]
        raise EnergyFrameError(
            f"grid_kw: energy balance off by {worst:.3f} kW at {at} "
            f"(grid = house + ev + hp - pv - battery; limit {tolerance.gross_kw} kW)"
        )
    dt_h = step_hours(frame.index)  # type: ignore[arg-type]
    return BalanceReport(
        max_residual_kw=worst,
        residual_kwh=float(abs_res.sum() * dt_h),
        slots_over_tolerance=int((abs_res > tolerance.report_kw).sum()),
        n_slots=len(frame),
    )


def balance_grid_kw(frame: pd.DataFrame) -> np.ndarray:
    """Grid power implied by the other power columns, ``house + ev + hp - pv - battery`` [kW]."""
    load = frame["house_kw"] + frame["ev_kw"] + frame["hp_kw"]
    return (load - frame["pv_kw"] - frame["battery_kw"]).to_numpy(dtype=float)
