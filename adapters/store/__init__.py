"""The telemetry store: one small protocol, implementations registered by name.

Also the :class:`Plan` and :class:`Setpoint` records, which live in the service database
(:mod:`scheduler.plan_store`), not here.

The rest of the service talks to :class:`TelemetryStore` only and gets one from
:func:`make_store`; whether telemetry lives in SQLite or InfluxDB is a setting.

Guarantees every implementation gives (and the tests check where a server allows):

* writes are idempotent on (site, device, timestamp) and may arrive out of order;
* :meth:`TelemetryStore.write` returns only after the accepted samples are durably stored;
  if it raises, nothing of the batch is acknowledged and the sender keeps and re-sends it;
* bad samples are rejected one by one with a reason while the rest of the batch is stored.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Protocol, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from adapters.store.telemetry import DEFAULT_FUTURE_TOLERANCE, Sample, WriteResult, utc_now
from core.timeindex import check_index

ExportFormat = Literal["csv", "parquet"]


class StoreError(RuntimeError):
    """The store could not do what was asked; for a write: nothing was acknowledged."""


@dataclass(frozen=True)
class StoreSettings:
    """Everything needed to build a store (see :func:`make_store`).

    Parameters
    ----------
    backend : str
        A registered name: ``"sqlite"`` or ``"influxdb"``.
    data_dir : pathlib.Path
        Directory of the SQLite file (where earlier releases also kept plans and setpoints).
    sqlite_file : str
        File name inside ``data_dir``.
    raw_retention : datetime.timedelta
        How long 1-minute samples are kept; 15-minute aggregates are kept for good.
    future_tolerance : datetime.timedelta
        Samples stamped further ahead of the store's clock are rejected.
    influx_url, influx_token, influx_org, influx_bucket, influx_bucket_aggregates : str
        InfluxDB 2.x connection; raw samples go to ``influx_bucket``, 15-minute means to
        ``influx_bucket_aggregates``.
    influx_batch_size : int
        Points per HTTP write request.
    write_attempts : int
        Tries per write request before the batch is reported as failed.
    retry_wait_max_s : float
        Upper bound of the exponential back-off between tries [s].
    influx_aggregate_lookback : datetime.timedelta
        How far back maintenance recomputes aggregates (covers a box's re-sent backlog).
    sqlite_busy_timeout_s : float
        How long a SQLite write waits for another writer's lock before failing [s].
    """

    backend: str = "sqlite"
    data_dir: Path = Path("data")
    sqlite_file: str = "heartbeat.sqlite3"
    raw_retention: timedelta = timedelta(days=35)
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE
    influx_url: str = "http://127.0.0.1:8086"
    influx_token: str = ""
    influx_org: str = "heartbeat"
    influx_bucket: str = "telemetry"
    influx_bucket_aggregates: str = "telemetry_15min"
    influx_batch_size: int = 5000
    write_attempts: int = 5
    retry_wait_max_s: float = 10.0
    influx_aggregate_lookback: timedelta = timedelta(days=6)
    sqlite_busy_timeout_s: float = 5.0

    @property
    def sqlite_path(self) -> Path:
        """The SQLite database file."""
        return Path(self.data_dir) / self.sqlite_file


class PlanSummary(BaseModel):
    """A solve's summary; the optimizer may add fields (extra fields are kept on round trip)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    status: str
    objective_eur: float


@dataclass(frozen=True)
class Plan:
    """One solve's result as stored.

    Parameters
    ----------
    site_id : str
    created_at : datetime.datetime
        When the solve ran (tz-aware); a plan is unique per (site, created_at).
    slots : pandas.DataFrame
        Per-slot result on a UTC DatetimeIndex with fixed step, columns ``device-quantity``
        in project units (e.g. ``battery-power_kw``, ``battery-soc``).
    summary : PlanSummary
    inputs_versions : Mapping[str, str]
        Which inputs the solve used (e.g. ``{"prices": "2024-06-10T12:00Z", "config": "v3"}``).
    """

    site_id: str
    created_at: datetime
    slots: pd.DataFrame
    summary: PlanSummary
    inputs_versions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_index(pd.DatetimeIndex(self.slots.index), name="plan slots")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at: naive timestamp; use tz-aware UTC")
        object.__setattr__(self, "inputs_versions", MappingProxyType(dict(self.inputs_versions)))


@dataclass(frozen=True)
class Setpoint:
    """One value for one device quantity at one time, e.g. ``battery``/``power_kw`` [kW]."""

    device: str
    quantity: str
    ts: datetime
    value: float


@dataclass(frozen=True)
class MaintenanceResult:
    """What :meth:`TelemetryStore.maintain` did."""

    aggregated_buckets: int
    deleted_raw: int


class TelemetryStore(Protocol):
    """Where measurements and 15-minute aggregates live."""

    def write(self, samples: Sequence[Sample]) -> WriteResult:
        """Store valid samples idempotently; return only once they are durable."""
        ...

    def latest(self, site_id: str) -> dict[str, Sample]:
        """Per device, the newest stored sample of the site."""
        ...

    def window(
        self, site_id: str, start: datetime, end: datetime, step: timedelta = timedelta(minutes=15)
    ) -> pd.DataFrame:
        """Mean power [kW] per device on a UTC index ``[start, end)`` at ``step``."""
        ...

    def field_window(
        self,
        site_id: str,
        device: str,
        field: str,
        *,
        start: datetime,
        end: datetime,
        step: timedelta = timedelta(minutes=15),
    ) -> pd.Series:
        """Mean of one raw field (e.g. ``wallbox.connected``) per ``step`` on ``[start, end)``.

        Only raw samples count (kept for the raw retention); steps without any are NaN.
        """
        ...

    def maintain(self, now: datetime | None = None) -> MaintenanceResult:
        """Update 15-minute aggregates and drop raw samples older than the retention."""
        ...

    def export_site(self, site_id: str, path: Path, fmt: ExportFormat = "csv") -> list[Path]:
        """Write all of a site's data into directory ``path``; return the files written."""
        ...

    def delete_site(self, site_id: str) -> None:
        """Remove every stored trace of a site."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


StoreFactory = Callable[[StoreSettings, Callable[[], datetime]], TelemetryStore]
STORES: dict[str, StoreFactory] = {}
# Modules that register a backend on import; imported lazily so SQLite users never load
# influxdb-client.
_BACKEND_MODULES: Mapping[str, str] = MappingProxyType(
    {"sqlite": "adapters.store.sqlite", "influxdb": "adapters.store.influxdb"}
)


FactoryT = TypeVar("FactoryT", bound=StoreFactory)


def register_store(name: str) -> Callable[[FactoryT], FactoryT]:
    """Class or function decorator registering a store factory under ``name``."""

    def decorate(factory: FactoryT) -> FactoryT:
        STORES[name] = factory
        return factory

    return decorate


def make_store(settings: StoreSettings, clock: Callable[[], datetime] = utc_now) -> TelemetryStore:
    """Build the store named by ``settings.backend`` (the one place stores are constructed).

    Parameters
    ----------
    settings : StoreSettings
    clock : callable
        Returns the current tz-aware time; injected so tests and backtests run on a simulated
        clock (used for future-timestamp checks and retention).
    """
    if settings.backend not in STORES and settings.backend in _BACKEND_MODULES:
        importlib.import_module(_BACKEND_MODULES[settings.backend])
    if settings.backend not in STORES:
        known = sorted({*STORES, *_BACKEND_MODULES})
        raise ValueError(f"backend: unknown store {settings.backend!r}; known: {known}")
    return STORES[settings.backend](settings, clock)
