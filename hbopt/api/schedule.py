"""What a polling box gets: the current plan's remaining slots, live setpoints and an ETag.

The ETag names (site, plan creation time, current slot), so it changes exactly when a new plan
is stored or the current slot ends; a box that sends it back in ``If-None-Match`` gets 304 and
no body. Plans are read through a short per-process cache so a thousand polling boxes do not
each load a plan from the store every few seconds.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from hbopt.adapters.store import Plan, TelemetryStore
from hbopt.api.schemas import SchedulePublic, ScheduleSlot
from hbopt.timeindex import check_index


@dataclass
class PlanCache:
    """Latest plan per site, reused for ``ttl_s`` seconds (monotonic clock)."""

    ttl_s: float
    _entries: dict[str, tuple[float, Plan | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def latest(self, store: TelemetryStore, site_id: str) -> Plan | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(site_id)
        if entry is not None and now - entry[0] < self.ttl_s:
            return entry[1]
        plan = store.latest_plan(site_id)
        with self._lock:
            self._entries[site_id] = (now, plan)
        return plan

    def forget(self, site_id: str) -> None:
        with self._lock:
            self._entries.pop(site_id, None)


def remaining_slots(plan: Plan, now: datetime) -> pd.DataFrame:
    """The plan's slots that have not ended at ``now`` (the first one is the current slot)."""
    step = check_index(pd.DatetimeIndex(plan.slots.index), name="plan slots")
    ends = pd.DatetimeIndex(plan.slots.index) + step
    return plan.slots[ends > pd.Timestamp(now)]


def schedule_etag(site_id: str, plan: Plan | None, remaining: pd.DataFrame | None) -> str:
    """A strong ETag for what :func:`schedule_body` would return."""
    if plan is None or remaining is None:
        key = f"{site_id}|none"
    else:
        first = remaining.index[0].isoformat() if len(remaining) else "ended"
        key = f"{site_id}|{plan.created_at.isoformat()}|{first}"
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _values(row: pd.Series) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, value in row.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            values[str(name)] = number
    return values


def schedule_body(
    site_id: str, plan: Plan | None, remaining: pd.DataFrame | None, now: datetime
) -> SchedulePublic:
    if plan is None or remaining is None:
        return SchedulePublic(
            site_id=site_id, plan_created_at=None, step_minutes=None, setpoints={}, slots=[]
        )
    step = check_index(pd.DatetimeIndex(plan.slots.index), name="plan slots")
    starts = pd.DatetimeIndex(remaining.index)
    slots = [
        ScheduleSlot(start=start.to_pydatetime(), values=_values(remaining.iloc[i]))
        for i, start in enumerate(starts)
    ]
    current = slots[0].values if slots and slots[0].start <= now else {}
    return SchedulePublic(
        site_id=site_id,
        plan_created_at=plan.created_at,
        step_minutes=int(step / pd.Timedelta(minutes=1)),
        setpoints=current,
        slots=slots,
    )
