"""Retail tariff: import and export price per slot from the spot price and a typed config.

Import price = (spot + supplier margin + grid fee(t) + levies + electricity tax) x (1 + VAT).
The grid fee can be time-variable (German §14a EnWG "Modul 3"): zones low/standard/high set per
calendar quarter and weekday with quarter-hour edges, evaluated in the tariff's local time zone.
Export price: fixed (EEG feed-in tariff) or spot + margin (direct marketing). Per-site rules:
no export payment while spot < 0 (EEG §51), and a feed-in power cap for the optimizer.

Every number comes from a TOML file (``load_tariff``); a documented German example ships at
``pricing/tariffs/de_dynamic_example.toml``.
"""

from __future__ import annotations

import tomllib
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.timeindex import check_index
from pricing.series import QUARTER_FREQ, to_step

Zone = Literal["low", "standard", "high"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
QUARTERS_PER_DAY = 96


class TariffConfigError(ValueError):
    """The tariff file is missing a field or has an invalid value (the message names it).

    Attributes
    ----------
    field : str
        Dotted path of the field (``grid_fee.low_eur_per_kwh``), ``(toml)`` for a syntax error.
    reason : str
        Why it was rejected.
    """

    def __init__(self, message: str, field: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason or message


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GridFeeWindow(_Strict):
    """One time window of a grid-fee zone; ``end`` may be ``24:00``."""

    quarters: list[int] = Field(min_length=1, description="calendar quarters 1-4")
    weekdays: list[Weekday] = Field(min_length=1)
    start: str
    end: str
    zone: Zone

    @field_validator("quarters")
    @classmethod
    def _quarters_1_to_4(cls, value: list[int]) -> list[int]:
        if any(q not in (1, 2, 3, 4) for q in value):
            raise ValueError("calendar quarters are 1, 2, 3 or 4")
        return value

    @field_validator("start", "end")
    @classmethod
    def _quarter_hour_edge(cls, value: str) -> str:
        quarter_of_day(value)
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> GridFeeWindow:
        if quarter_of_day(self.start) >= quarter_of_day(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class GridFee(_Strict):
    """Grid fee (Netzentgelt, working price) per zone [EUR/kWh, net]."""

    low_eur_per_kwh: float
    standard_eur_per_kwh: float
    high_eur_per_kwh: float
    windows: list[GridFeeWindow] = Field(default_factory=list)


class Levy(_Strict):
    name: str
    eur_per_kwh: float


class ExportTariff(_Strict):
    """Feed-in remuneration: ``fixed`` [EUR/kWh] or ``spot`` + margin [EUR/kWh]."""

    mode: Literal["fixed", "spot"]
    fixed_eur_per_kwh: float | None = None
    spot_margin_eur_per_kwh: float | None = None

    @model_validator(mode="after")
    def _needs_its_number(self) -> ExportTariff:
        if self.mode == "fixed" and self.fixed_eur_per_kwh is None:
            raise ValueError("mode 'fixed' needs fixed_eur_per_kwh")
        if self.mode == "spot" and self.spot_margin_eur_per_kwh is None:
            raise ValueError("mode 'spot' needs spot_margin_eur_per_kwh")
        return self


class Tariff(_Strict):
    """A retail tariff; all money values net of VAT [EUR/kWh].

    Dynamic by default (energy = spot + ``supplier_margin_eur_per_kwh``); with
    ``fixed_energy_eur_per_kwh`` the energy price is that constant instead (the margin column of
    the breakdown is then fixed - spot). ``bidding_zone`` names the day-ahead market whose
    prices the tariff follows (entsoe-py area name).
    """

    name: str
    timezone: str = "Europe/Berlin"
    bidding_zone: str = "DE_LU"
    supplier_margin_eur_per_kwh: float | None = None
    fixed_energy_eur_per_kwh: float | None = Field(default=None, ge=0)
    electricity_tax_eur_per_kwh: float
    vat_rate: float = Field(ge=0, le=1)
    levies: list[Levy]
    grid_fee: GridFee
    export: ExportTariff

    @model_validator(mode="after")
    def _windows_do_not_overlap(self) -> Tariff:
        zone_table(self.grid_fee)
        return self

    @model_validator(mode="after")
    def _one_energy_price(self) -> Tariff:
        if (self.supplier_margin_eur_per_kwh is None) == (self.fixed_energy_eur_per_kwh is None):
            raise ValueError(
                "set exactly one of supplier_margin_eur_per_kwh (dynamic: spot + margin) and "
                "fixed_energy_eur_per_kwh (fixed price)"
            )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class SiteExportRules(_Strict):
    """Per-site feed-in rules.

    Attributes
    ----------
    unpaid_when_spot_negative : bool
        No export payment in slots with spot < 0 (EEG §51 / "Solarspitzengesetz" plants).
    export_limit_kw : float or None
        Feed-in power cap [kW] (e.g. 60 % of PV peak, or 0); used by the optimizer's grid block.
    """

    unpaid_when_spot_negative: bool = False
    export_limit_kw: float | None = Field(default=None, ge=0)


def quarter_of_day(clock: str) -> int:
    """Quarter-hour number (0-96) of an ``HH:MM`` time on a quarter-hour edge."""
    if clock == "24:00":
        return QUARTERS_PER_DAY
    try:
        parsed = time.fromisoformat(clock)
    except ValueError as exc:
        raise ValueError(f"time {clock!r} is not HH:MM") from exc
    if parsed.minute % 15 or parsed.second:
        raise ValueError(f"time {clock!r} is not on a quarter-hour edge")
    return parsed.hour * 4 + parsed.minute // 15


def zone_table(grid_fee: GridFee) -> np.ndarray:
    """Zone code per (calendar quarter, weekday, quarter-hour): 0 low, 1 standard, 2 high.

    Returns
    -------
    numpy.ndarray
        Shape (4, 7, 96); ``standard`` where no window applies. Overlapping windows raise.
    """
    codes = {"low": 0, "standard": 1, "high": 2}
    table = np.full((4, 7, QUARTERS_PER_DAY), -1, dtype=int)
    for w in grid_fee.windows:
        q_idx = [q - 1 for q in w.quarters]
        d_idx = [WEEKDAYS.index(d) for d in w.weekdays]
        span = slice(quarter_of_day(w.start), quarter_of_day(w.end))
        block = table[np.ix_(q_idx, d_idx)][..., span]
        if (block >= 0).any():
            raise ValueError(f"grid_fee window {w.start}-{w.end} ({w.zone}) overlaps another")
        for q in q_idx:
            for d in d_idx:
                table[q, d, span] = codes[w.zone]
    table[table < 0] = codes["standard"]
    return table


def load_tariff(path: str | Path) -> Tariff:
    """Read and validate a tariff TOML file.

    Raises
    ------
    TariffConfigError
        Names the first missing or invalid field, e.g. ``grid_fee.low_eur_per_kwh``.
    """
    path = Path(path)
    return parse_tariff(path.read_text(encoding="utf-8"), where=str(path))


def parse_tariff(text: str, where: str = "tariff") -> Tariff:
    """Validate a tariff from TOML text (an uploaded file).

    Raises
    ------
    TariffConfigError
        With ``field`` set to the dotted path of the first missing or invalid field
        (``"(toml)"`` when the text is not TOML) and ``reason`` saying why.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffConfigError(f"{where}: not valid TOML: {exc}", "(toml)", str(exc)) from exc
    try:
        return Tariff.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        kind = "missing field" if first["type"] == "missing" else "invalid field"
        raise TariffConfigError(
            f"{where}: {kind} {field!r}: {first['msg']}", field, f"{kind}: {first['msg']}"
        ) from exc


def tariff_catalog() -> dict[str, Path]:
    """The shipped tariffs by id (file stem of ``pricing/tariffs/*.toml``)."""
    folder = Path(str(resources.files("pricing.tariffs")))
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def catalog_tariff(tariff_id: str) -> Tariff:
    """A shipped tariff by id.

    Raises
    ------
    TariffConfigError
        Unknown id (``field`` ``tariff_id``).
    """
    path = tariff_catalog().get(tariff_id)
    if path is None:
        known = ", ".join(tariff_catalog())
        raise TariffConfigError(
            f"unknown tariff id {tariff_id!r}", "tariff_id", f"unknown tariff; known: {known}"
        )
    return load_tariff(path)


def grid_fee_per_slot(index: pd.DatetimeIndex, grid_fee: GridFee, tz: str) -> pd.Series:
    """Grid fee [EUR/kWh, net] per slot; a slot longer than 15 min gets its quarter-hour mean."""
    step = check_index(index)
    quarters = pd.date_range(
        index[0].floor(QUARTER_FREQ), index[-1] + step, freq=QUARTER_FREQ, inclusive="left"
    )
    local = quarters.tz_convert(tz)
    table = zone_table(grid_fee)
    zones = table[local.quarter - 1, local.weekday, local.hour * 4 + local.minute // 15]
    prices = np.array(
        [grid_fee.low_eur_per_kwh, grid_fee.standard_eur_per_kwh, grid_fee.high_eur_per_kwh]
    )
    return to_step(pd.Series(prices[zones], index=quarters, name="grid_fee_eur_per_kwh"), index)


def retail_prices(
    spot_frame: pd.DataFrame, tariff: Tariff, site_rules: SiteExportRules
) -> pd.DataFrame:
    """Import and export price per slot with a breakdown.

    Parameters
    ----------
    spot_frame : pandas.DataFrame
        ``spot_eur_per_kwh`` [EUR/kWh] on a UTC index (output of ``prices_for``); an
        ``is_estimate`` column is passed through.
    tariff : Tariff
    site_rules : SiteExportRules

    Returns
    -------
    pandas.DataFrame
        Breakdown [EUR/kWh]: ``spot_eur_per_kwh``, ``margin_eur_per_kwh``,
        ``grid_fee_eur_per_kwh``, ``levies_eur_per_kwh``, ``electricity_tax_eur_per_kwh``,
        ``vat_eur_per_kwh``; totals ``import_eur_per_kwh`` (gross) and ``export_eur_per_kwh``;
        ``export_unpaid`` (bool: the negative-price rule set export to 0 in this slot).
    """
    index = pd.DatetimeIndex(spot_frame.index)
    check_index(index, name="spot_frame.index")
    spot = spot_frame["spot_eur_per_kwh"].astype(float)
    if spot.isna().any():
        raise ValueError(f"spot_eur_per_kwh has no value at {spot.index[spot.isna()][0]}")
    out = pd.DataFrame(index=index)
    out["spot_eur_per_kwh"] = spot
    if tariff.fixed_energy_eur_per_kwh is None:
        out["margin_eur_per_kwh"] = tariff.supplier_margin_eur_per_kwh or 0.0
    else:  # the constant energy price replaces spot + margin
        out["margin_eur_per_kwh"] = tariff.fixed_energy_eur_per_kwh - spot
    out["grid_fee_eur_per_kwh"] = grid_fee_per_slot(index, tariff.grid_fee, tariff.timezone)
    out["levies_eur_per_kwh"] = sum(levy.eur_per_kwh for levy in tariff.levies)
    out["electricity_tax_eur_per_kwh"] = tariff.electricity_tax_eur_per_kwh
    net = out.sum(axis=1)
    out["vat_eur_per_kwh"] = net * tariff.vat_rate
    out["import_eur_per_kwh"] = net + out["vat_eur_per_kwh"]
    export = export_price(spot, tariff.export)
    unpaid = (spot < 0) & site_rules.unpaid_when_spot_negative
    out["export_eur_per_kwh"] = export.where(~unpaid, 0.0)
    out["export_unpaid"] = unpaid.astype(bool)
    if "is_estimate" in spot_frame:
        out["is_estimate"] = spot_frame["is_estimate"].astype(bool)
    return out


def export_price(spot: pd.Series, export: ExportTariff) -> pd.Series:
    """Feed-in remuneration [EUR/kWh] before site rules."""
    if export.mode == "fixed":
        return pd.Series(float(export.fixed_eur_per_kwh or 0.0), index=spot.index)
    return spot + float(export.spot_margin_eur_per_kwh or 0.0)
