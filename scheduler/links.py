"""How the control loop reaches a box: the :class:`BoxLink` protocol and its pull implementation.

A :class:`~scheduler.controller.SiteController` talks to its box through a link with the
methods of :class:`~adapters.heartbeat.client.HeartbeatClient`. Two links exist:

* **Modbus TCP (push)**: the :class:`HeartbeatClient` itself, at the address the operator
  recorded for the box's serial. The controller reads the registers, beats the watchdog, writes
  live setpoints and uploads the schedule.
* **Pull** (:class:`PullLink`): the box posts telemetry to ``/v1/gateway/telemetry`` and
  fetches its schedule from ``/v1/gateway/schedule``. The newest stored telemetry is the
  measurement; the plan the controller stores is the output (the gateway serves it with an
  ETag). There is no watchdog to beat and nothing to write: a box that has not posted within
  ``offline_after_s`` is unreachable.

Both go through the same cycle and the same status model.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from adapters import store as st
from adapters.clock import Clock
from adapters.heartbeat.client import BoxUnreachable
from adapters.heartbeat.esi_types import (
    BoxInfo,
    BoxStatus,
    Capability,
    ControlState,
    ExternalLimit,
    FallbackMode,
    LastStatus,
    Measurement,
    SchedStatus,
    Schedule,
    ScheduleState,
    Setpoints,
)
from adapters.store.telemetry import Sample
from scheduler.store_io import StoreIO


class BoxLink(Protocol):
    """What the controller needs of a box (the methods of ``HeartbeatClient`` it calls)."""

    reconnects: int

    async def discover(self) -> object: ...

    async def set_watchdog_timeout(self, seconds: int) -> None: ...

    async def read_status(self) -> BoxStatus: ...

    async def read_measurements(self) -> Measurement: ...

    def heartbeat_interval_s(self) -> float: ...

    async def heartbeat(self, force: bool = False) -> bool: ...

    async def write_setpoints(self, setpoints: Setpoints) -> BoxStatus: ...

    async def upload_schedule(self, schedule: Schedule) -> ScheduleState: ...

    async def release(self) -> None: ...

    async def close(self) -> None: ...


class PullLink:
    """A box that pulls: measurements from the telemetry store, output through the stored plan.

    Parameters
    ----------
    site_id : str
        The site whose telemetry the box posts.
    store : TelemetryStore
        Where the gateway stores the box's telemetry.
    clock : Clock
        The control loop's clock (UNIX s).
    offline_after_s : float
        Telemetry older than this [s] makes the box unreachable.
    """

    #: The measurements are in the store already; the controller must not store them again.
    measurements_stored = True

    def __init__(
        self, site_id: str, store: st.TelemetryStore, clock: Clock, offline_after_s: float = 900.0
    ) -> None:
        self.site_id, self.store, self.clock = site_id, store, clock
        self.offline_after_s = offline_after_s
        self.reconnects = 0
        self._seq = 0
        #: Where the store is read (off the event loop; the supervisor gives its store threads).
        self.io = StoreIO("telemetry")

    async def discover(self) -> BoxInfo:
        return BoxInfo("HBGW", 1, 0, 0, Capability(0))

    async def set_watchdog_timeout(self, seconds: int) -> None:
        return None

    def heartbeat_interval_s(self) -> float:
        return 60.0

    async def heartbeat(self, force: bool = False) -> bool:
        return False

    async def read_status(self) -> BoxStatus:
        """A pull box follows its fetched schedule while it reports; else it is unreachable."""
        await self._latest()
        return _status(ControlState.SCHEDULE, self._seq)

    async def read_measurements(self) -> Measurement:
        """The newest posted sample per device as one measurement [kW, SOC 0-1]."""
        latest = await self._latest()

        def value(device: str, field: str) -> float | None:
            sample = latest.get(device)
            v = None if sample is None else sample.fields.get(field)
            return None if v is None else float(v)

        newest = max(pd.Timestamp(s.ts) for s in latest.values())
        connected = value("wallbox", "connected")
        state = value("wallbox", "state")
        return Measurement(
            time=newest.tz_convert("UTC") if newest.tzinfo else newest.tz_localize("UTC"),
            pv_kw=value("pv", "power_kw"),
            grid_kw=value("grid", "power_kw"),
            battery_kw=value("battery", "power_kw"),
            battery_soc=value("battery", "soc"),
            house_load_kw=value("house", "power_kw"),
            wallbox_kw=value("wallbox", "power_kw"),
            wallbox_state=int(state) if state is not None else (2 if connected else 0),
            wallbox_phases_active=0,
            hp_kw=value("heatpump", "power_kw"),
            hp_sgready_applied=int(value("heatpump", "sgready") or 0),
            battery_applied_kw=None,
            wallbox_applied_a=None,
            source_of_control={},
        )

    async def write_setpoints(self, setpoints: Setpoints) -> BoxStatus:
        """Nothing to write: the stored plan is what the box fetches."""
        self._seq = self._seq % 0xFFFF + 1
        return _status(ControlState.SCHEDULE, self._seq)

    async def upload_schedule(self, schedule: Schedule) -> ScheduleState:
        return ScheduleState(schedule.schedule_id, None, 0, SchedStatus.ACTIVE)

    async def release(self) -> None:
        return None  # the gateway stops serving the plan (switch off, revoked token, deletion)

    async def close(self) -> None:
        return None

    async def _latest(self) -> dict[str, Sample]:
        latest = await self.io.run(self.store.latest, self.site_id)
        if not latest:
            raise BoxUnreachable("the box has not posted telemetry yet")
        newest = max(pd.Timestamp(s.ts).timestamp() for s in latest.values())
        age = self.clock.now() - newest
        if age > self.offline_after_s:
            raise BoxUnreachable(f"no telemetry from the box for {age / 60:.0f} min")
        return latest


def _status(state: ControlState, seq: int) -> BoxStatus:
    return BoxStatus(
        ctrl_heartbeat=0,
        watchdog_timeout_s=0,
        watchdog_remaining_s=0,
        control_state=state,
        fallback_mode=FallbackMode.SELF_CONSUMPTION,
        controller_id=0,
        box_heartbeat=0,
        box_time=None,
        applied_seq=seq,
        last_status=LastStatus.OK,
        external_limits=ExternalLimit(0),
        external_consumption_limit_kw=None,
        external_feedin_limit_kw=None,
    )
