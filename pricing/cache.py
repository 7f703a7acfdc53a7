"""In-memory price cache with fetch time and a staleness flag, for background fetching.

The scheduler's cycle must never wait on the network: a background job calls
:meth:`SeriesCache.refresh` (which fetches from a source), the cycle calls
:meth:`SeriesCache.get` (which never fetches). Known values are merged, never dropped: a failed
or shorter refresh leaves everything fetched before in place. In memory by design: prices are
cheap to re-fetch after a restart, and the bundled source always answers offline.
Thread-safe (one lock), because refresh and get run on different threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

import pandas as pd

from core.timeindex import shareable
from pricing.errors import PricingError
from pricing.estimate import prices_on_index
from pricing.sources import HISTORY, CarbonSource, PriceSource


class CachedFrame(NamedTuple):
    """What :meth:`SeriesCache.get` returns; unpacks as ``frame, fetched_at, is_stale``.

    Attributes
    ----------
    frame : pandas.DataFrame
        Values on the requested index plus ``is_estimate`` (see ``prices_for``).
    fetched_at : pandas.Timestamp or None
        UTC time of the last successful refresh; None if none succeeded yet.
    is_stale : bool
        ``now - fetched_at`` exceeds the cache's ``max_age``.
    """

    frame: pd.DataFrame
    fetched_at: pd.Timestamp | None
    is_stale: bool


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class SeriesCache:
    """Cache of one price or carbon source.

    Parameters
    ----------
    fetch : callable
        ``fetch(start, end) -> pandas.Series`` on a UTC 15-minute grid, e.g.
        ``source.spot_prices`` or ``source.carbon_intensity``.
    column : str
        Value column of the frames ``get`` returns.
    max_age : pandas.Timedelta
        Older data is reported stale.
    clock : callable
        Returns the current UTC time; injected so tests and backtests control it.
    reference : pandas.Series, optional
        Long history for the seasonal estimate (see :mod:`pricing.estimate`); with it,
        :meth:`get` answers (with flagged estimates) even before the first refresh succeeded.
    """

    def __init__(
        self,
        fetch: Callable[[pd.Timestamp, pd.Timestamp], pd.Series],
        column: str,
        max_age: pd.Timedelta,
        clock: Callable[[], pd.Timestamp] = _utc_now,
        reference: pd.Series | None = None,
    ) -> None:
        self._fetch = fetch
        self._reference = None if reference is None else shareable(reference)
        self._column = column
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._known = pd.Series(dtype=float)
        self._fetched_at: pd.Timestamp | None = None

    @classmethod
    def for_prices(
        cls,
        source: PriceSource,
        max_age: pd.Timedelta,
        clock: Callable[[], pd.Timestamp] = _utc_now,
        reference: pd.Series | None = None,
    ) -> SeriesCache:
        return cls(source.spot_prices, "spot_eur_per_kwh", max_age, clock, reference)

    @classmethod
    def for_carbon(
        cls,
        source: CarbonSource,
        max_age: pd.Timedelta,
        clock: Callable[[], pd.Timestamp] = _utc_now,
        reference: pd.Series | None = None,
    ) -> SeriesCache:
        return cls(source.carbon_intensity, "co2_g_per_kwh", max_age, clock, reference)

    def refresh(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Timestamp:
        """Fetch ``[start - 35 d, end)`` and merge it in; returns the fetch time.

        Errors from the source propagate and leave the cache unchanged.
        """
        fetched = self._fetch(start - HISTORY, end)
        now = self._clock()
        with self._lock:
            merged = pd.concat([self._known, fetched]) if len(self._known) else fetched
            # read by every site's cycle thread of the zone: warmed (see shareable)
            self._known = shareable(merged[~merged.index.duplicated(keep="last")].sort_index())
            self._fetched_at = now
        return now

    def get(self, index: pd.DatetimeIndex) -> CachedFrame:
        """Cached values on ``index`` (estimates flagged); never touches the network.

        Without a successful refresh the frame is all estimate, ``fetched_at`` is None and
        ``is_stale`` is true.

        Raises
        ------
        PricingError
            Nothing was ever fetched and there is no reference to estimate from.
        """
        with self._lock:
            known, fetched_at = self._known, self._fetched_at
        if fetched_at is None and self._reference is None:
            raise PricingError("cache is empty: no successful refresh yet")
        frame = prices_on_index(known, index, column=self._column, reference=self._reference)
        if fetched_at is None:
            return CachedFrame(frame, None, True)
        return CachedFrame(frame, fetched_at, self._clock() - fetched_at > self._max_age)
