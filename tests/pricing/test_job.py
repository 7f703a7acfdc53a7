"""The price job and store: source order over real HTTP servers on 127.0.0.1, restart-safe
storage, the replan hook, and flagged seasonal estimates long after the last known price."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pandas as pd
import pytest

from core.timeindex import local_day
from pricing.bundled import bundled_quarter_hour_prices
from pricing.cache import SeriesCache
from pricing.job import (
    NamedSource,
    PriceJob,
    next_publication,
    published_until,
    zone_sources,
)
from pricing.smard import read_smard_json
from pricing.sources import SmardPriceSource, prices_for, seasonal_price_reference
from pricing.store import PriceStore, StoredPriceSource
from tests.pricing.test_entsoe_http import fake_entsoe  # noqa: F401 - fixture
from tests.pricing.test_smard import QH, smard_server  # noqa: F401 - fixture

TODAY = "2026-12-05"  # a Saturday, 14 months after the bundled prices end


class _Clock:
    def __init__(self, now: str) -> None:
        self.now = pd.Timestamp(now)

    def __call__(self) -> pd.Timestamp:
        return self.now


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens: connection refused, like no network


def test_publication_times() -> None:
    # 12:00 CET: today's prices only; 13:00 CET: tomorrow's too
    assert published_until(pd.Timestamp("2026-12-05T11:00Z")) == pd.Timestamp("2026-12-05T23:00Z")
    assert published_until(pd.Timestamp("2026-12-05T12:00Z")) == pd.Timestamp("2026-12-06T23:00Z")
    assert next_publication(pd.Timestamp("2026-12-05T11:00Z")) == pd.Timestamp("2026-12-05T12:00Z")
    assert next_publication(pd.Timestamp("2026-12-05T12:00Z")) == pd.Timestamp("2026-12-06T12:00Z")
    # summer time: 13:00 CEST is 11:00 UTC
    assert next_publication(pd.Timestamp("2026-07-01T10:59Z")) == pd.Timestamp("2026-07-01T11:00Z")


def test_source_order() -> None:
    names = [s.name for s in zone_sources("DE_LU", entsoe_token="t")]
    assert names == ["entsoe", "smard", "bundled"]
    assert [s.name for s in zone_sources("DE_LU")] == ["smard", "bundled"]
    assert [s.name for s in zone_sources("DE_LU", smard_enabled=False)] == ["bundled"]
    assert [s.name for s in zone_sources("FR", entsoe_token="t")] == ["entsoe"]
    assert zone_sources("FR") == []


def test_store_survives_restart_and_replaces_corrections(tmp_path: Path) -> None:
    path = tmp_path / "prices.sqlite3"
    week = read_smard_json(QH.read_text(), "quarterhour")
    store = PriceStore(path)
    assert store.write("DE_LU", week, "smard") == len(week)
    corrected = week.iloc[:4] + 0.01
    store.write("DE_LU", corrected, "smard")
    store.close()
    reopened = PriceStore(path)
    back = reopened.read("DE_LU", week.index[0], week.index[-1] + pd.Timedelta(minutes=15))
    assert len(back) == len(week)  # no duplicates
    assert back.iloc[:4].tolist() == pytest.approx(corrected.tolist())
    assert back.iloc[4:].tolist() == pytest.approx(week.iloc[4:].tolist())
    assert reopened.known_until("DE_LU") == week.index[-1] + pd.Timedelta(minutes=15)
    assert reopened.read("FR", week.index[0], week.index[-1]).empty


def test_job_fetches_from_smard_stores_and_announces(tmp_path: Path, smard_server: str) -> None:  # noqa: F811
    # 2025-10-25 14:00 CEST: prices to the end of Sunday 26 Oct are published
    clock = _Clock("2025-10-25T12:00Z")
    store = PriceStore(tmp_path / "p.sqlite3")
    announced: list[str] = []
    smard = SmardPriceSource("DE-LU", "quarterhour", 5.0, smard_server, 1)
    job = PriceJob("DE_LU", [NamedSource("smard", smard)], store, announced.append, clock=clock)
    outcome = asyncio.run(job.refresh())
    assert outcome.source == "smard" and outcome.complete
    assert announced == ["DE_LU"]
    # the stored prices are SMARD's, quarter-hour by quarter-hour (100 on the 25-hour Sunday)
    sunday = local_day("2025-10-26")
    expected = read_smard_json(QH.read_text(), "quarterhour")
    stored = store.read("DE_LU", sunday[0], sunday[-1] + pd.Timedelta(minutes=15))
    assert len(stored) == 100
    assert stored.tolist() == pytest.approx(expected.reindex(stored.index).tolist())
    # nothing new on the next attempt: no second replan
    asyncio.run(job.refresh())
    assert announced == ["DE_LU"]
    status = store.status("DE_LU")
    assert status.source == "smard" and status.error == ""


def test_entsoe_first_then_smard_when_entsoe_fails(
    tmp_path: Path,
    smard_server: str,  # noqa: F811
    fake_entsoe: None,  # noqa: F811
) -> None:
    clock = _Clock("2025-10-25T12:00Z")
    store = PriceStore(tmp_path / "p.sqlite3")
    sources = zone_sources("DE_LU", entsoe_token="bad", smard_base_url=smard_server, timeout_s=5)
    job = PriceJob("DE_LU", sources[:2], store, lambda zone: None, clock=clock)
    outcome = job.fetch_once()
    assert outcome.source == "smard"
    assert outcome.errors and outcome.errors[0].startswith("entsoe: EntsoeAuthError")
    # with a good token ENTSO-E answers first (ES file, Spain's zone)
    es = PriceJob("ES", zone_sources("ES", entsoe_token="good"), store, lambda z: None,
                  clock=_Clock("2025-09-30T12:00Z"))  # fmt: skip
    assert es.fetch_once().source == "entsoe"
    assert store.status("ES").source == "entsoe"


def test_no_network_no_data_keeps_running_on_flagged_estimates(tmp_path: Path) -> None:
    clock = _Clock(f"{TODAY}T12:30Z")
    store = PriceStore(tmp_path / "p.sqlite3")
    sources = zone_sources("DE_LU", smard_base_url=_closed_port_url(), timeout_s=2,
                           smard_attempts=1)  # fmt: skip
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    announced: list[str] = []
    job = PriceJob("DE_LU", sources, store, announced.append, clock=clock, sleep=sleep,
                   attempts=3, retry_initial_s=60, retry_max_s=600)  # fmt: skip
    outcome = asyncio.run(job.refresh_until_complete())
    assert outcome.source is None and not outcome.complete
    assert len(slept) == 2  # three attempts, back-off between them
    assert announced == []
    assert "smard: ConnectError" in store.status("DE_LU").error
    assert "bundled: no prices" in store.status("DE_LU").error
    # the sites' cache still answers: every slot a flagged seasonal estimate
    cache = SeriesCache.for_prices(StoredPriceSource(store, "DE_LU"), pd.Timedelta(hours=2), clock,
                                   reference=seasonal_price_reference())  # fmt: skip
    frame, fetched_at, stale = cache.get(local_day(TODAY))
    assert frame["is_estimate"].all() and stale and fetched_at is None
    assert frame["spot_eur_per_kwh"].notna().all()


def test_seasonal_estimate_by_hand() -> None:
    """A December Saturday 2026 is the mean of the bundled Saturdays within 14 days of its day
    of the year, at the same local time."""
    day = local_day(TODAY)
    frame = prices_for(day, reference=seasonal_price_reference())
    assert frame["is_estimate"].all() and len(frame) == 96
    ref = bundled_quarter_hour_prices()
    local = ref.index.tz_convert("Europe/Berlin")
    doy = pd.Timestamp(TODAY).dayofyear
    near = (abs(local.dayofyear - doy) <= 14) & (local.weekday == 5)
    saturdays = sorted({str(d.date()) for d in local[near]})
    assert saturdays == ["2024-11-23", "2024-11-30", "2024-12-07", "2024-12-14"]
    at_18 = ref[near & (local.hour == 18) & (local.minute == 0)]
    expected = at_18.mean()
    got = frame["spot_eur_per_kwh"].loc[pd.Timestamp(f"{TODAY}T17:00Z")]
    assert got == pytest.approx(expected)
    # the shape survives: the evening peak is dearer than the night
    assert got > frame["spot_eur_per_kwh"].loc[pd.Timestamp(f"{TODAY}T02:00Z")]


def test_recent_known_prices_win_over_the_season(tmp_path: Path) -> None:
    """Once live prices were stored, the estimate for tomorrow comes from them, not 2024."""
    store = PriceStore(tmp_path / "p.sqlite3")
    days = pd.date_range("2026-11-21T23:00Z", f"{TODAY}T23:00Z", freq="15min", inclusive="left")
    store.write("DE_LU", pd.Series(0.25, index=days), "smard")
    tomorrow = local_day("2026-12-06")
    frame = prices_for(tomorrow, StoredPriceSource(store, "DE_LU"), seasonal_price_reference())
    assert frame["is_estimate"].all()
    assert frame["spot_eur_per_kwh"].tolist() == pytest.approx([0.25] * 96)
