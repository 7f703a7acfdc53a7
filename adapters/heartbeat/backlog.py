"""The box's 5-day measurement buffer and its upload to the service.

The box records one :class:`MinuteRecord` per minute. Records stay in the buffer until a
:class:`BacklogSink` accepts them; beyond 5 days the oldest are dropped. Uploads go oldest
first in batches; each batch carries an idempotency key derived from its content (site, first
and last timestamp, record count), so a batch re-sent after a lost reply is recognisable and
the receiver stores it once.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from typing import Protocol

RETENTION_S = 5 * 24 * 3600
#: Bad records kept aside for inspection (a day of minutes); older ones are counted only.
QUARANTINE_MAX = 1440


@dataclass(frozen=True)
class MinuteRecord:
    """One-minute mean of the box's measurements.

    ``t`` [UNIX s, UTC] is the minute's start; powers [kW] (battery + discharge, grid + import),
    ``battery_soc`` [0-1].
    """

    t: int
    pv_kw: float
    grid_kw: float
    battery_kw: float
    battery_soc: float
    house_load_kw: float
    wallbox_kw: float
    hp_kw: float


class BacklogSink(Protocol):
    """Where the box uploads its backlog; ``send`` raises on any failure."""

    def send(self, batch: Sequence[MinuteRecord], idempotency_key: str) -> None:
        """Deliver ``batch``; a key seen before must not create duplicates."""
        ...


def idempotency_key(site_id: str, batch: Sequence[MinuteRecord]) -> str:
    """Content-derived key: SHA-256 over site, first/last timestamp and record count."""
    text = f"{site_id}|{batch[0].t}|{batch[-1].t}|{len(batch)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class MeasurementBuffer:
    """Bounded FIFO of minute records (5 days), thread-safe for an uploader thread."""

    def __init__(self, site_id: str, retention_s: int = RETENTION_S) -> None:
        self.site_id = site_id
        self.retention_s = retention_s
        self._records: deque[MinuteRecord] = deque()
        self._lock = threading.Lock()
        self.dropped = 0
        #: Records that can never be uploaded (a NaN or infinite value), newest last.
        self.quarantine: deque[MinuteRecord] = deque(maxlen=QUARANTINE_MAX)
        self.quarantined = 0

    def __len__(self) -> int:
        return len(self._records)

    def append(self, record: MinuteRecord) -> None:
        """Add a record and drop those older than the retention window."""
        with self._lock:
            self._records.append(record)
            while self._records and self._records[0].t < record.t - self.retention_s:
                self._records.popleft()
                self.dropped += 1

    def pending(self) -> list[MinuteRecord]:
        """Copy of all records not yet accepted by a sink, oldest first."""
        with self._lock:
            return list(self._records)

    def flush(self, sink: BacklogSink, batch_size: int = 360) -> int:
        """Upload oldest first until empty or the sink fails; returns records delivered.

        A failing sink leaves the buffer unchanged from that batch on (the exception is
        swallowed: the box simply tries again later).
        """
        sent = 0
        while True:
            with self._lock:
                self._quarantine_bad_head(batch_size)
                batch = [self._records[i] for i in range(min(batch_size, len(self._records)))]
            if not batch:
                return sent
            try:
                sink.send(batch, idempotency_key(self.site_id, batch))
            except Exception:
                return sent
            with self._lock:
                # only remove what is still at the head (retention may have dropped some)
                while self._records and self._records[0].t <= batch[-1].t:
                    self._records.popleft()
            sent += len(batch)

    def _quarantine_bad_head(self, batch_size: int) -> None:
        """Move unsendable records of the next batch aside, so they cannot block the rest
        (JSON has no NaN: the whole batch would fail on every retry)."""
        head = [self._records.popleft() for _ in range(min(batch_size, len(self._records)))]
        good = [r for r in head if record_is_finite(r)]
        bad = [r for r in head if not record_is_finite(r)]
        self.quarantine.extend(bad)
        self.quarantined += len(bad)
        self._records.extendleft(reversed(good))


def record_is_finite(record: MinuteRecord) -> bool:
    """True if every value of ``record`` is a finite number."""
    return all(math.isfinite(value) for value in astuple(record))


class InMemorySink:
    """A sink for tests and demos: stores batches by key, can be switched to fail."""

    def __init__(self) -> None:
        self.batches: dict[str, list[MinuteRecord]] = {}
        self.calls = 0
        self.failing = False

    def send(self, batch: Sequence[MinuteRecord], idempotency_key: str) -> None:
        """Store ``batch`` once per key; raise ``ConnectionError`` while ``failing``."""
        self.calls += 1
        if self.failing:
            raise ConnectionError("sink unreachable")
        self.batches.setdefault(idempotency_key, list(batch))

    def records(self) -> list[MinuteRecord]:
        """All stored records ordered by time."""
        return sorted((r for b in self.batches.values() for r in b), key=lambda r: r.t)


def _gateway_sink() -> BacklogSink:
    # imported on use: the HTTP sink depends on this module, not the other way round
    from adapters.heartbeat.gateway_sink import gateway_sink_from_env  # noqa: PLC0415

    return gateway_sink_from_env()


SINKS: dict[str, Callable[[], BacklogSink]] = {"memory": InMemorySink, "gateway": _gateway_sink}


def make_sink(name: str) -> BacklogSink:
    """Construct a registered sink by name: ``memory`` or ``gateway`` (the service's HTTP
    route, :mod:`adapters.heartbeat.gateway_sink`)."""
    try:
        return SINKS[name]()
    except KeyError:
        raise ValueError(f"sink: {name!r} not one of {sorted(SINKS)}") from None
