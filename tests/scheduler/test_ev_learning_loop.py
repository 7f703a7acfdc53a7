"""The closed loop charges a car by the departure learned from the site's own history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from optimizer import ChargingMode
from scheduler.controller import SiteConfig
from scheduler.ev_sessions import MET_TOLERANCE_KWH, history_samples
from scheduler.simulate import scripted_twin

from .closed_loop import Rig

START = pd.Timestamp("2024-06-12T15:45Z")  # a Wednesday, 17:45 local


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=1) as executor:
        yield executor


def _history() -> pd.DataFrame:
    """Twelve evenings before: plugged in 18:00-19:00 local, 5..6.1 kWh each."""
    days = [START.normalize() - pd.Timedelta(days=k) for k in range(1, 13)]
    return pd.DataFrame(
        {
            "plugin_utc": [d + pd.Timedelta(hours=16) for d in days],
            "plugout_utc": [d + pd.Timedelta(hours=17) for d in days],
            "energy_kwh": [5.0 + 0.1 * k for k in range(12)],
        }
    )


def _delivered(learn: bool, tmp: Path, pool: ProcessPoolExecutor) -> float:
    """AC energy the car got in its hour (16:00-17:00 UTC, 6 kWh wanted) [kWh]."""
    twin = scripted_twin("2024-06-12T00:00Z", 2, [("2024-06-12T16:00Z", "2024-06-12T17:00Z", 6.0)])
    config = SiteConfig("test-site", charging_mode=ChargingMode.SMART, learn_ev_sessions=learn)

    async def scenario() -> Rig:
        rig = await Rig.start(twin, str(START), tmp, pool)
        index = pd.date_range(START - pd.Timedelta(days=14), START, freq="15min")
        rig.store.write(history_samples("test-site", _history(), index, 11.04))
        ctl = rig.controller(config)
        await ctl.start()
        await rig.run_until("2024-06-12T17:00Z")
        await ctl.stop()
        await rig.close()
        assert all(r.ok for r in ctl.reports), [r.error for r in ctl.reports if not r.ok]
        return rig

    steps = asyncio.run(scenario()).steps()
    return float((steps["ev_kw"] * steps["dt_s"] / 3600).sum())


def test_learned_departure_charges_the_car_before_it_leaves(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    # the configured departure (07:00 tomorrow) waits for the night; the learned one is 19:00.
    # Met as the benchmark counts it (short by less than 0.05 kWh): the 6.0 kWh of this
    # Wednesday lie above the 90 % quantile of the similar weekday sessions (5.89 kWh), so a
    # 90 % need leaves the car 0.11 kWh short however well the plan meets it
    assert _delivered(True, tmp_path / "learn", pool) >= 6.0 - MET_TOLERANCE_KWH
    assert _delivered(False, tmp_path / "fixed", pool) < 6.0 - 1.0


def _commuter_history() -> pd.DataFrame:
    """Twelve evenings before: in at 19:00 local, out at 07:00, 8.0..9.1 kWh; two of them
    (5 and 8 days before) were one-hour stays of 2 kWh."""
    rows = []
    for k in range(1, 13):
        day = START.normalize() - pd.Timedelta(days=k)
        plugin = day + pd.Timedelta(hours=17)
        if k in (5, 8):
            rows.append((plugin, plugin + pd.Timedelta(hours=1), 2.0))
        else:
            rows.append((plugin, plugin + pd.Timedelta(hours=12), 8.0 + 0.1 * k))
    return pd.DataFrame(rows, columns=["plugin_utc", "plugout_utc", "energy_kwh"])


def test_short_stays_get_theirs_by_their_time_and_the_rest_waits_for_the_night(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    """The two short stays ask 2 kWh by 20:00 local; the 9.1 kWh need is due by 07:00, so by
    21:00 the car has had what a short stay would need, and not the whole need (which the
    earliest-departure rule put in by 20:44: all at the evening's prices)."""
    twin = scripted_twin("2024-06-12T00:00Z", 2, [("2024-06-12T17:00Z", "2024-06-13T05:00Z", 10.0)])
    config = SiteConfig("test-site", charging_mode=ChargingMode.SMART)

    async def scenario() -> Rig:
        rig = await Rig.start(twin, "2024-06-12T16:45Z", tmp_path, pool)
        index = pd.date_range(START - pd.Timedelta(days=14), START, freq="15min")
        rig.store.write(history_samples("test-site", _commuter_history(), index, 11.04))
        ctl = rig.controller(config)
        await ctl.start()
        await rig.run_until("2024-06-12T19:00Z")
        await ctl.stop()
        await rig.close()
        return rig

    steps = asyncio.run(scenario()).steps()
    kwh = steps["ev_kw"] * steps["dt_s"] / 3600
    assert kwh[kwh.index < pd.Timestamp("2024-06-12T18:00Z")].sum() >= 2.0 - MET_TOLERANCE_KWH
    assert kwh.sum() < 9.1 - 2.0
