"""Why each device does what the plan says in a slot, in words for the app.

A pure function over plan rows (the optimizer's column names: ``battery_charge_kw``,
``ev_kw``, ``hp_kw``, ``import_eur_per_kwh``, ...): it compares the slot with the rest of the
plan (the local day's median import price, when the battery or car acts next) and returns one
:class:`DeviceReason` per battery, wallbox and heat pump.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from optimizer import ChargingMode

#: Flows below this are no action [kW].
ACTIVE_KW = 0.05
SOLAR_MODES = (ChargingMode.SOLAR, ChargingMode.MIN_SOLAR, ChargingMode.AFTER_BATTERY)


@dataclass(frozen=True)
class DeviceReason:
    """One device's action in a slot and why.

    ``action`` is ``charge``, ``discharge``, ``hold``, ``wait``, ``heat`` or ``off``; ``code``
    is a stable key for the app (e.g. ``grid_cheap``); ``text`` the sentence to show.
    """

    device: str
    kind: str
    action: str
    code: str
    text: str
    power_kw: float
    slot_start: pd.Timestamp


@dataclass(frozen=True)
class ReasonContext:
    """What the plan rows do not say: the site's time zone and each wallbox's settings."""

    tz: str = "Europe/Berlin"
    ev_modes: Mapping[str, ChargingMode] = field(default_factory=dict)
    ev_departures: Mapping[str, datetime | None] = field(default_factory=dict)


def _ct(price: float) -> str:
    return f"{price * 100:.1f} ct/kWh"


def _versus_median(price: float, median: float) -> str:
    if abs(median) < 1e-9:
        return f"day's median {_ct(median)}"
    change = (price - median) / abs(median)
    side = "below" if change < 0 else "above"
    return f"{abs(change):.0%} {side} the day's median"


def _hhmm(ts: pd.Timestamp | datetime, tz: str) -> str:
    return pd.Timestamp(ts).tz_convert(tz).strftime("%H:%M")


def _day_median(slots: pd.DataFrame, i: int, tz: str) -> float:
    prices = slots["import_eur_per_kwh"].astype(float)
    days = pd.DatetimeIndex(slots.index).tz_convert(tz).normalize()
    same = prices[days == days[i]]
    return float((same if len(same) >= 4 else prices).median())


def _next_active(values: np.ndarray, i: int) -> int | None:
    later = np.flatnonzero(values[i + 1 :] > ACTIVE_KW)
    return None if len(later) == 0 else i + 1 + int(later[0])


def _col(slots: pd.DataFrame, name: str) -> np.ndarray:
    return slots[name].to_numpy(float) if name in slots else np.zeros(len(slots))


@dataclass(frozen=True)
class _Slot:
    slots: pd.DataFrame
    i: int
    ctx: ReasonContext
    wallboxes: tuple[str, ...]
    heat_pumps: tuple[str, ...]

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.slots.index[self.i])

    @property
    def price(self) -> float:
        return float(self.slots["import_eur_per_kwh"].iloc[self.i])

    @property
    def median(self) -> float:
        return _day_median(self.slots, self.i, self.ctx.tz)

    def surplus_kw(self) -> float:
        """PV left after the house, the cars and the heat pumps [kW]."""
        use = _col(self.slots, "load_kw")[self.i]
        use += sum(_col(self.slots, f"{w}_kw")[self.i] for w in self.wallboxes)
        use += sum(_col(self.slots, f"{h}_kw")[self.i] for h in self.heat_pumps)
        return float(_col(self.slots, "pv_kw")[self.i] - use)

    def reason(  # noqa: PLR0917 - one positional per field of the reason, read like a row
        self, device: str, kind: str, action: str, code: str, text: str, power: float
    ) -> DeviceReason:
        return DeviceReason(device, kind, action, code, text, round(power, 3), self.start)


def _battery(s: _Slot) -> DeviceReason:
    charge, discharge = _col(s.slots, "battery_charge_kw"), _col(s.slots, "battery_discharge_kw")
    if "battery_charge_kw" not in s.slots and "battery_kw" in s.slots:
        net = _col(s.slots, "battery_kw")
        charge, discharge = np.maximum(-net, 0.0), np.maximum(net, 0.0)
    c, d, i = float(charge[s.i]), float(discharge[s.i]), s.i
    versus = f"{_ct(s.price)}, {_versus_median(s.price, s.median)}"
    if c > ACTIVE_KW:
        if c <= s.surplus_kw() + ACTIVE_KW:
            return s.reason(
                "battery", "battery", "charge", "pv_surplus", "charging from PV surplus", -c
            )
        return s.reason(
            "battery",
            "battery",
            "charge",
            "grid_cheap",
            f"charging from the grid at a low price ({versus})",
            -c,
        )
    if d > ACTIVE_KW:
        if _col(s.slots, "grid_export_kw")[i] > ACTIVE_KW and s.surplus_kw() >= -ACTIVE_KW:
            export = float(_col(s.slots, "export_eur_per_kwh")[i])
            return s.reason(
                "battery",
                "battery",
                "discharge",
                "export_expensive",
                f"discharging to the grid at a high feed-in price ({_ct(export)})",
                d,
            )
        return s.reason(
            "battery",
            "battery",
            "discharge",
            "cover_house_expensive",
            f"discharging to cover the house at a high price ({versus})",
            d,
        )
    later = _next_active(discharge, i)
    if later is not None:
        at = _hhmm(s.slots.index[later], s.ctx.tz)
        return s.reason(
            "battery",
            "battery",
            "hold",
            "hold_for_later",
            f"holding for later (price rises at {at})",
            0.0,
        )
    later = _next_active(charge, i)
    if later is not None:
        at = _hhmm(s.slots.index[later], s.ctx.tz)
        return s.reason(
            "battery", "battery", "hold", "wait_to_charge", f"waiting to charge at {at}", 0.0
        )
    return s.reason(
        "battery",
        "battery",
        "hold",
        "idle",
        "idle: no price difference in the plan pays for a cycle",
        0.0,
    )


def _wallbox(s: _Slot, name: str) -> DeviceReason:
    power = _col(s.slots, f"{name}_kw")
    mode = ChargingMode(s.ctx.ev_modes.get(name, ChargingMode.SMART))
    p = float(power[s.i])
    if p > ACTIVE_KW:
        if mode in SOLAR_MODES:
            return s.reason(
                name, "wallbox", "charge", "solar", "charging from PV surplus (solar mode)", p
            )
        if mode == ChargingMode.NOW:
            return s.reason(
                name, "wallbox", "charge", "now", "charging now: mode 'now' charges at once", p
            )
        departure = s.ctx.ev_departures.get(name)
        if departure is not None:
            at = _hhmm(departure, s.ctx.tz)
            text = f"charging now: among the cheapest hours before departure at {at}"
        else:
            text = "charging now: among the cheapest hours of the plan"
        return s.reason(name, "wallbox", "charge", "cheapest_hours", text, p)
    if mode == ChargingMode.OFF:
        return s.reason(name, "wallbox", "off", "off", "off: charging mode is off", 0.0)
    later = _next_active(power, s.i)
    if later is None:
        return s.reason(
            name, "wallbox", "off", "idle", "not charging: no car, or nothing more to charge", 0.0
        )
    at = _hhmm(s.slots.index[later], s.ctx.tz)
    if mode in SOLAR_MODES:
        return s.reason(
            name, "wallbox", "wait", "wait_solar", f"waiting for PV surplus (from {at})", 0.0
        )
    return s.reason(
        name, "wallbox", "wait", "wait_cheaper", f"waiting for cheaper hours (from {at})", 0.0
    )


def _heat_pump(s: _Slot, name: str) -> DeviceReason:
    p = float(_col(s.slots, f"{name}_kw")[s.i])
    versus = f"{_ct(s.price)}, {_versus_median(s.price, s.median)}"
    if p > ACTIVE_KW:
        if s.price < s.median:
            return s.reason(
                name,
                "heat_pump",
                "heat",
                "preheat_cheap",
                f"pre-heating while power is cheap ({versus})",
                p,
            )
        return s.reason(
            name, "heat_pump", "heat", "heat_comfort", "heating to keep the comfort band", p
        )
    if s.price > s.median:
        return s.reason(
            name, "heat_pump", "off", "blocked_price_peak", f"blocked: price peak ({versus})", 0.0
        )
    return s.reason(name, "heat_pump", "off", "off_warm", "off: the store holds enough heat", 0.0)


def _device_names(slots: pd.DataFrame, suffix: str) -> tuple[str, ...]:
    return tuple(str(c)[: -len(suffix)] for c in slots.columns if str(c).endswith(suffix))


def next_action_reasons(slots: pd.DataFrame, i: int, context: ReasonContext) -> list[DeviceReason]:
    """Why each device does what plan row ``i`` says.

    Parameters
    ----------
    slots : pandas.DataFrame
        Plan rows on a UTC index with at least ``import_eur_per_kwh`` [EUR/kWh]; battery,
        wallbox (``{name}_kw`` with ``{name}_phases``) and heat pump (``{name}_kw`` with
        ``{name}_sgready``) columns as the optimizer writes them, plus ``pv_kw``,
        ``load_kw`` and ``grid_export_kw`` [kW] where present.
    i : int
        The row to explain (the current or next slot).
    context : ReasonContext
        Time zone for clock times and the wallboxes' modes and departures.

    Returns
    -------
    list of DeviceReason
        Battery first, then wallboxes, then heat pumps.
    """
    if "import_eur_per_kwh" not in slots or not 0 <= i < len(slots):
        return []
    wallboxes = dict.fromkeys(_device_names(slots, "_phases"))
    wallboxes.update(dict.fromkeys(n for n in context.ev_modes if f"{n}_kw" in slots))
    s = _Slot(slots, i, context, tuple(wallboxes), _device_names(slots, "_sgready"))
    reasons = []
    if "battery_soc" in slots or "battery_kw" in slots:
        reasons.append(_battery(s))
    reasons += [_wallbox(s, name) for name in s.wallboxes]
    reasons += [_heat_pump(s, name) for name in s.heat_pumps]
    return reasons
