"""Fetched day-ahead prices per bidding zone in one SQLite file, so they survive a restart.

The price job writes what a source delivered (:meth:`PriceStore.write`) and records every
attempt (:meth:`PriceStore.record_attempt`); the sites' price caches read from here
(:class:`StoredPriceSource`), never from the network. One row per (zone, quarter-hour): a later
fetch of the same quarter-hour replaces the value (sources publish corrections), so re-fetching
after an outage creates no duplicates. SQLite from the standard library, WAL journal, one
connection behind a lock (the job writes from a worker thread, caches read from others).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pricing.series import QUARTER
from pricing.sources import PriceSource

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spot_prices (
    zone TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    eur_per_kwh REAL NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (zone, start_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS price_fetches (
    zone TEXT PRIMARY KEY,
    attempted_at TEXT NOT NULL,
    source TEXT,
    fetched_at TEXT,
    error TEXT
);
"""


@dataclass(frozen=True)
class ZoneStatus:
    """What the price job last did for a zone (for the site status and the plan's flags).

    Attributes
    ----------
    zone : str
        Bidding zone (entsoe-py area name, e.g. ``DE_LU``).
    attempted_at : pandas.Timestamp or None
        Last attempt (UTC).
    source : str or None
        Source of the last successful fetch (``entsoe``, ``smard``, ``bundled``).
    fetched_at : pandas.Timestamp or None
        Last successful fetch (UTC).
    error : str
        Why the last attempt got nothing (empty when it succeeded).
    known_until : pandas.Timestamp or None
        End of the last stored quarter-hour (UTC).
    """

    zone: str
    attempted_at: pd.Timestamp | None
    source: str | None
    fetched_at: pd.Timestamp | None
    error: str
    known_until: pd.Timestamp | None


def _ms(ts: pd.Timestamp) -> int:
    return int(pd.Timestamp(ts).tz_convert("UTC").value // 1_000_000)


def _ts(text: str | None) -> pd.Timestamp | None:
    return None if text is None else pd.Timestamp(text)


class PriceStore:
    """Spot prices [EUR/kWh] per zone and quarter-hour, and the last fetch per zone.

    Parameters
    ----------
    path : str or pathlib.Path
        SQLite file (created with its folder); ``":memory:"`` for a throw-away store.
    """

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def write(self, zone: str, prices: pd.Series, source: str) -> int:
        """Insert or replace ``prices`` (UTC 15-minute series [EUR/kWh]); returns rows written."""
        valid = prices.dropna()
        rows = [
            (zone, _ms(ts), float(v), source)
            for ts, v in zip(pd.DatetimeIndex(valid.index), valid.to_numpy(float), strict=True)
        ]
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR REPLACE INTO spot_prices VALUES (?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")
        return len(rows)

    def read(self, zone: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        """Stored prices of ``zone`` in ``[start, end)`` on a UTC 15-minute grid (gaps allowed)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT start_ms, eur_per_kwh FROM spot_prices "
                "WHERE zone = ? AND start_ms >= ? AND start_ms < ? ORDER BY start_ms",
                (zone, _ms(start), _ms(end)),
            ).fetchall()
        index = pd.to_datetime([r[0] for r in rows], unit="ms", utc=True)
        return pd.Series([r[1] for r in rows], index=index, dtype=float, name="spot_eur_per_kwh")

    def known_until(self, zone: str) -> pd.Timestamp | None:
        """End of the last stored quarter-hour of ``zone`` (UTC), None if nothing is stored."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MAX(start_ms) FROM spot_prices WHERE zone = ?", (zone,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return pd.Timestamp(row[0], unit="ms", tz="UTC") + QUARTER

    def record_attempt(
        self, zone: str, at: pd.Timestamp, source: str | None, error: str = ""
    ) -> None:
        """Note an attempt; ``source`` is the one that delivered (None: none did)."""
        with self._lock:
            if source is None:
                self._conn.execute(
                    "INSERT INTO price_fetches (zone, attempted_at, error) VALUES (?, ?, ?) "
                    "ON CONFLICT (zone) DO UPDATE SET attempted_at = excluded.attempted_at, "
                    "error = excluded.error",
                    (zone, at.isoformat(), error),
                )
            else:
                self._conn.execute(
                    "INSERT OR REPLACE INTO price_fetches VALUES (?, ?, ?, ?, ?)",
                    (zone, at.isoformat(), source, at.isoformat(), error),
                )

    def status(self, zone: str) -> ZoneStatus:
        """The zone's last attempt, last success and how far its prices reach."""
        with self._lock:
            row = self._conn.execute(
                "SELECT attempted_at, source, fetched_at, error FROM price_fetches WHERE zone = ?",
                (zone,),
            ).fetchone()
        until = self.known_until(zone)
        if row is None:
            return ZoneStatus(zone, None, None, None, "never fetched", until)
        return ZoneStatus(zone, _ts(row[0]), row[1], _ts(row[2]), row[3] or "", until)


@dataclass(frozen=True)
class StoredPriceSource:
    """A :class:`~pricing.PriceSource` over the store, filled by ``fallback`` where it is empty.

    Parameters
    ----------
    store : PriceStore
    zone : str
        Bidding zone.
    fallback : PriceSource, optional
        Asked for the quarter-hours the store lacks (e.g. the bundled history for backtests).
    """

    store: PriceStore
    zone: str
    fallback: PriceSource | None = None

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        stored = self.store.read(self.zone, start, end)
        if self.fallback is None:
            return stored
        extra = self.fallback.spot_prices(start, end)
        extra = extra[~extra.index.isin(stored.index)]
        if extra.empty:
            return stored
        if stored.empty:
            return extra.rename("spot_eur_per_kwh")
        return pd.concat([stored, extra]).sort_index().rename("spot_eur_per_kwh")
