"""What a polling box gets: the current plan's remaining slots, live setpoints and an ETag.

The ETag names (site, plan creation time, current slot), so it changes exactly when a new plan
is stored or the current slot ends; a box that sends it back in ``If-None-Match`` gets 304 and
no body. Plans are read through a per-process cache (``schedule_cache_s``) so a thousand polling
boxes do not each load a plan from the store on every poll; answering a 304 then costs a
dictionary lookup and a binary search. Each API process asks the store every
``plan_watch_s`` which sites got a new plan since it last asked (:meth:`PlanCache.watch`) and
forgets those, so a plan stored by the control process (or another worker) reaches a polling
box within that second, whichever worker answers it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from adapters.store import Plan
from api.schemas import SchedulePublic
from core.timeindex import check_index
from scheduler.plan_store import PlanStore


@dataclass(frozen=True)
class CachedPlan:
    """A site's latest plan (or None), prepared once for fast answers to polling boxes."""

    site_id: str
    plan: Plan | None
    loaded_at: float  # time.monotonic()
    ends_ns: np.ndarray | None = None
    step_minutes: int | None = None
    #: Per slot: start (ISO 8601, UTC) and its finite values by ``device-quantity`` column.
    slot_rows: tuple[tuple[str, dict[str, float]], ...] = ()

    @classmethod
    def of(cls, site_id: str, plan: Plan | None) -> CachedPlan:
        if plan is None:
            return cls(site_id, None, time.monotonic())
        index = pd.DatetimeIndex(plan.slots.index)
        step = check_index(index, name="plan slots")
        ends = (index + step).tz_convert(None).as_unit("ns").to_numpy().view("int64")
        return cls(
            site_id,
            plan,
            time.monotonic(),
            ends,
            int(step / pd.Timedelta(minutes=1)),
            _slot_rows(plan.slots),
        )

    def first_open_slot(self, now: datetime) -> int:
        """Position of the first slot that has not ended at ``now`` (len: the plan ran out)."""
        assert self.ends_ns is not None
        return int(np.searchsorted(self.ends_ns, pd.Timestamp(now).value, side="right"))

    def etag(self, now: datetime) -> str:
        """A strong ETag for what :meth:`body` returns at ``now``."""
        if self.plan is None:
            key = f"{self.site_id}|none"
        else:
            key = f"{self.site_id}|{self.plan.created_at.isoformat()}|{self.first_open_slot(now)}"
        return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'

    def body(self, now: datetime) -> dict[str, Any]:
        """The :class:`SchedulePublic` document at ``now``, as JSON-ready data."""
        if self.plan is None:
            empty = SchedulePublic(
                site_id=self.site_id,
                plan_created_at=None,
                step_minutes=None,
                setpoints={},
                slots=[],
            )
            return empty.model_dump(mode="json")
        first = self.first_open_slot(now)
        remaining = self.slot_rows[first:]
        # The first open slot is live only once it has begun (a plan may start in the future).
        live = bool(remaining) and pd.Timestamp(remaining[0][0]) <= pd.Timestamp(now)
        return {
            "site_id": self.site_id,
            "plan_created_at": self.plan.created_at.isoformat(),
            "step_minutes": self.step_minutes,
            "setpoints": dict(remaining[0][1]) if live else {},
            "slots": [{"start": start, "values": values} for start, values in remaining],
        }


def _slot_rows(slots: pd.DataFrame) -> tuple[tuple[str, dict[str, float]], ...]:
    numeric = slots.apply(pd.to_numeric, errors="coerce").astype("float64")
    columns = [str(c) for c in numeric.columns]
    values = numeric.to_numpy()
    starts = pd.DatetimeIndex(slots.index).tz_convert("UTC")
    return tuple(
        (
            start.isoformat().replace("+00:00", "Z"),
            {c: float(v) for c, v in zip(columns, row, strict=True) if math.isfinite(v)},
        )
        for start, row in zip(starts, values, strict=True)
    )


@dataclass
class PlanCache:
    """Latest plan per site, reused for ``ttl_s`` seconds (monotonic clock)."""

    ttl_s: float
    _entries: dict[str, CachedPlan] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cursor: int | None = None

    def fresh(self, site_id: str) -> CachedPlan | None:
        """The cached entry if it is young enough, else None (then call :meth:`load`)."""
        with self._lock:
            entry = self._entries.get(site_id)
        if entry is not None and time.monotonic() - entry.loaded_at < self.ttl_s:
            return entry
        return None

    def load(self, store: PlanStore, site_id: str) -> CachedPlan:
        """Read the site's latest plan from the store (blocking) and cache it."""
        entry = CachedPlan.of(site_id, store.latest_plan(site_id))
        with self._lock:
            self._entries[site_id] = entry
        return entry

    def latest(self, store: PlanStore, site_id: str) -> CachedPlan:
        return self.fresh(site_id) or self.load(store, site_id)

    def forget(self, site_id: str) -> None:
        with self._lock:
            self._entries.pop(site_id, None)

    def watch(self, store: PlanStore) -> list[str]:
        """Forget the plans of the sites that got a new one in the store since the last call
        (blocking; the first call only takes the store's cursor). Returns those sites."""
        cursor, sites = store.plans_since(self._cursor)
        self._cursor = cursor
        for site_id in sites:
            self.forget(site_id)
        return sites
