"""The price cache: fetch time, staleness with an injected clock, nothing lost on failure."""

from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import local_day
from pricing.cache import SeriesCache
from pricing.errors import PricingError
from pricing.sources import BundledPriceSource


class _Clock:
    def __init__(self, now: str) -> None:
        self.now = pd.Timestamp(now)

    def __call__(self) -> pd.Timestamp:
        return self.now


class _Flaky:
    """Bundled prices until ``fail`` is set, then a network error."""

    fail = False

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        if self.fail:
            raise ConnectionError("network down")
        return BundledPriceSource().spot_prices(start, end)


def test_fetch_time_and_staleness() -> None:
    clock = _Clock("2024-06-15T10:00Z")
    cache = SeriesCache.for_prices(BundledPriceSource(), pd.Timedelta(hours=1), clock)
    index = local_day("2024-06-15")
    with pytest.raises(PricingError, match="empty"):
        cache.get(index)
    fetched = cache.refresh(index[0], index[-1] + pd.Timedelta(minutes=15))
    first = cache.get(index)
    assert first.fetched_at == fetched == clock.now
    assert not first.is_stale and not first.frame["is_estimate"].any()
    clock.now += pd.Timedelta(minutes=61)
    frame, fetched_at, is_stale = cache.get(index)
    assert is_stale and fetched_at == fetched and len(frame) == 96


def test_failed_refresh_keeps_what_was_fetched() -> None:
    clock = _Clock("2024-06-15T10:00Z")
    source = _Flaky()
    cache = SeriesCache.for_prices(source, pd.Timedelta(hours=1), clock)
    index = local_day("2024-06-15")
    cache.refresh(index[0], index[-1])
    before = cache.get(index).frame
    source.fail = True
    clock.now += pd.Timedelta(hours=3)
    with pytest.raises(ConnectionError):
        cache.refresh(index[0], index[-1])
    after = cache.get(index)
    assert after.frame.equals(before)
    assert after.fetched_at == pd.Timestamp("2024-06-15T10:00Z") and after.is_stale


def test_get_beyond_the_fetched_range_is_flagged_estimate() -> None:
    cache = SeriesCache.for_prices(
        BundledPriceSource(), pd.Timedelta(hours=1), _Clock("2024-06-15T10:00Z")
    )
    today = local_day("2024-06-15")
    cache.refresh(today[0], today[-1] + pd.Timedelta(minutes=15))
    tomorrow = local_day("2024-06-16")
    frame = cache.get(tomorrow).frame
    assert frame["is_estimate"].all() and frame["spot_eur_per_kwh"].notna().all()
