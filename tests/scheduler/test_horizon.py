"""The plan's horizon reaches to the end of the published day-ahead prices."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from adapters.clock import SimClock
from adapters.store import StoreSettings, make_store
from pricing import load_tariff
from scheduler.clock import SteppedClock
from scheduler.controller import SiteConfig, SiteController, store_clock
from scheduler.feeds import PriceFeed


def _horizon(now: str, tmp: Path, **config: int) -> pd.DatetimeIndex:
    clock = SteppedClock(SimClock(now))
    cfg = SiteConfig("test-site", **config)  # type: ignore[arg-type]
    feed = PriceFeed.bundled(
        load_tariff(cfg.home.tariff_path),
        cfg.home.export_rules(),
        lambda: pd.Timestamp(clock.now(), unit="s", tz="UTC"),
    )
    start = pd.Timestamp(now).floor("15min")
    feed.refresh(start, start + pd.Timedelta(days=2))
    store = make_store(
        StoreSettings(data_dir=tmp, sqlite_file="t.sqlite3"), clock=store_clock(clock)
    )
    with ThreadPoolExecutor(1) as pool:
        ctl = SiteController(cfg, clock, store, feed, pool)
        index = ctl._horizon()
        frame = feed.frame(index)
    store.close()
    assert not frame["price_is_estimate"].iloc[-1] or len(index) == cfg.horizon_slots
    return index


@pytest.mark.parametrize(
    ("now", "slots", "end"),
    [
        # 12:00 CEST: today's prices only (to 22:00 UTC); the shortest horizon, 24 h
        ("2024-09-03T10:00Z", 96, "2024-09-04T09:45Z"),
        # 13:15 CEST: tomorrow's are out; the plan runs to tomorrow's last slot
        ("2024-09-03T11:15Z", 139, "2024-09-04T21:45Z"),
        # 23:30 CEST: to the end of tomorrow, 24.5 h
        ("2024-09-03T21:30Z", 98, "2024-09-04T21:45Z"),
        # 01:30 CEST: the prices end in 20.5 h; the 24 h minimum applies
        ("2024-09-03T23:30Z", 96, "2024-09-04T23:15Z"),
    ],
)
def test_horizon_reaches_the_published_prices(
    now: str, slots: int, end: str, tmp_path: Path
) -> None:
    index = _horizon(now, tmp_path, horizon_slots=96)
    assert len(index) == slots
    assert index[-1] == pd.Timestamp(end)


def test_fixed_horizon_when_the_longest_is_the_shortest(tmp_path: Path) -> None:
    at_1315 = "2024-09-03T11:15Z"
    assert len(_horizon(at_1315, tmp_path, horizon_slots=96, max_horizon_slots=96)) == 96
    assert len(_horizon(at_1315, tmp_path, horizon_slots=96, max_horizon_slots=120)) == 120
    # the default: 36 h always, beyond the published prices on their estimate
    assert len(_horizon("2024-09-03T10:00Z", tmp_path)) == 144
