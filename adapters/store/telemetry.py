"""The telemetry vocabulary: which devices a site reports, their fields, units and valid ranges.

A :class:`Sample` is one device's reading at one instant, as the Heartbeat box sends it
(1-minute resolution). Units are the project's: kW, SOC 0-1, degC. Sign conventions: grid
power + = import, battery power + = discharge, PV power >= 0.

Validation never raises for bad data; :func:`sample_problem` returns a reason so a store can
reject one sample and keep the rest of its batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType


@dataclass(frozen=True)
class FieldSpec:
    """Unit and inclusive valid range of one telemetry field."""

    unit: str
    low: float = -math.inf
    high: float = math.inf
    integral: bool = False


#: The box reports power in int32 W registers, so no real reading lies outside +-2^31 W; a
#: larger value is corrupt and would turn a 15-minute aggregate into infinity.
INT32_KW = (2**31 - 1) / 1000.0
POWER = FieldSpec("kW", low=-INT32_KW, high=INT32_KW)
POWER_NONNEG = FieldSpec("kW", low=0.0, high=INT32_KW)
SOC = FieldSpec("fraction", low=0.0, high=1.0)
TEMPERATURE = FieldSpec("degC", low=-50.0, high=120.0)

#: Known devices and their fields. ``power_kw`` is required for every device; the rest are
#: optional. Wallbox ``state`` is IEC 61851 A..F as 1..6 (0 unknown), heat pump ``sgready``
#: is the SG-Ready state 0..4 (BWP numbering), as in the Modbus map.
DEVICE_FIELDS: Mapping[str, Mapping[str, FieldSpec]] = MappingProxyType(
    {
        "grid": {"power_kw": POWER},
        "pv": {"power_kw": POWER_NONNEG},
        "battery": {"power_kw": POWER, "soc": SOC},
        "house": {"power_kw": POWER},
        "wallbox": {
            "power_kw": POWER_NONNEG,
            "connected": FieldSpec("bool", 0.0, 1.0, integral=True),
            "state": FieldSpec("IEC 61851 code", 0.0, 6.0, integral=True),
        },
        "heatpump": {
            "power_kw": POWER_NONNEG,
            "sgready": FieldSpec("SG-Ready state", 0.0, 4.0, integral=True),
            "tank_temp_degc": TEMPERATURE,
            "indoor_temp_degc": TEMPERATURE,
        },
    }
)
REQUIRED_FIELD = "power_kw"
#: Every field name of every device, in a stable order (the SQLite columns).
ALL_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(name for spec in DEVICE_FIELDS.values() for name in spec)
)
DEFAULT_FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Sample:
    """One device's reading at one instant.

    Parameters
    ----------
    site_id : str
        The site the box belongs to.
    device : str
        One of :data:`DEVICE_FIELDS` (``grid``, ``pv``, ``battery``, ``house``, ``wallbox``,
        ``heatpump``).
    ts : datetime.datetime
        Measurement time, tz-aware (stored as UTC).
    fields : Mapping[str, float]
        Field name -> value, e.g. ``{"power_kw": 1.2, "soc": 0.55}``; units in the field name
        or in :data:`DEVICE_FIELDS` ([kW], SOC [0-1], [degC]).
    """

    site_id: str
    device: str
    ts: datetime
    fields: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A read-only copy, so a stored or queued sample cannot change under the store.
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


@dataclass(frozen=True)
class Rejection:
    """A sample a store refused, its position in the batch and why."""

    index: int
    sample: Sample
    reason: str


@dataclass(frozen=True)
class WriteResult:
    """What a store did with a batch: ``accepted`` samples are durably stored."""

    accepted: int
    rejected: tuple[Rejection, ...] = ()


def _field_problem(device: str, name: str, value: object) -> str | None:
    spec = DEVICE_FIELDS[device].get(name)
    if spec is None:
        return f"unknown field {device}.{name!r}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{device}.{name}: not a number ({value!r})"
    number = float(value)
    if not math.isfinite(number):
        return f"{device}.{name}: not finite ({number})"
    if not spec.low <= number <= spec.high:
        return f"{device}.{name}: {number} outside [{spec.low}, {spec.high}] {spec.unit}"
    if spec.integral and not number.is_integer():
        return f"{device}.{name}: {number} is not a whole code"
    return None


def _time_problem(ts: object, now: datetime, tolerance: timedelta) -> str | None:
    if not isinstance(ts, datetime):
        return f"ts: not a datetime ({ts!r})"
    if ts.tzinfo is None or ts.utcoffset() is None:
        return "ts: naive timestamp; send tz-aware UTC"
    if ts - now > tolerance:
        return f"ts: {ts.isoformat()} is more than {tolerance} in the future"
    return None


def sample_problem(
    sample: Sample,
    now: datetime,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    oldest: datetime | None = None,
) -> str | None:
    """Why a sample cannot be stored, or ``None`` if it is valid.

    Parameters
    ----------
    sample : Sample
        The reading to check.
    now : datetime.datetime
        The store's current time (tz-aware).
    future_tolerance : datetime.timedelta
        How far a timestamp may lie ahead of ``now`` (box clock drift).
    oldest : datetime.datetime, optional
        Samples before this are refused (older than raw retention).

    Returns
    -------
    str or None
        A reason naming the offending field, or ``None``.
    """
    if not isinstance(sample.site_id, str) or not sample.site_id:
        return "site_id: empty"
    if sample.device not in DEVICE_FIELDS:
        return f"unknown device {sample.device!r}; known: {', '.join(DEVICE_FIELDS)}"
    problem = _time_problem(sample.ts, now, future_tolerance)
    if problem:
        return problem
    if oldest is not None and sample.ts < oldest:
        return f"ts: {sample.ts.isoformat()} is older than the raw retention ({oldest.isoformat()})"
    if REQUIRED_FIELD not in sample.fields:
        return f"{sample.device}.{REQUIRED_FIELD}: missing"
    for name, value in sample.fields.items():
        problem = _field_problem(sample.device, name, value)
        if problem:
            return problem
    return None


def check_field_window(device: str, field: str, step: timedelta) -> None:
    """Raise ``ValueError`` unless ``device.field`` is a telemetry field and ``step`` is at
    least the stores' 1 ms resolution (the arguments of ``TelemetryStore.field_window``)."""
    if field not in DEVICE_FIELDS.get(device, {}):
        raise ValueError(f"field: {device}.{field} is not in the telemetry vocabulary")
    if step < timedelta(milliseconds=1):
        raise ValueError(f"step: {step} must be at least 1 ms")


def split_valid(
    samples: list[Sample] | tuple[Sample, ...],
    now: datetime,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    oldest: datetime | None = None,
) -> tuple[list[Sample], tuple[Rejection, ...]]:
    """Split a batch into storable samples and rejections with reasons (:func:`sample_problem`)."""
    good: list[Sample] = []
    bad: list[Rejection] = []
    for index, sample in enumerate(samples):
        reason = sample_problem(sample, now, future_tolerance, oldest)
        if reason is None:
            good.append(sample)
        else:
            bad.append(Rejection(index, sample, reason))
    return good, tuple(bad)


def utc_now() -> datetime:
    """The wall clock as a tz-aware UTC datetime (the default injected clock)."""
    return datetime.now(UTC)
