"""The closed loop against the real box simulator on 127.0.0.1, in accelerated time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.heartbeat.esi_types import ControlState
from optimizer import ChargingMode
from scheduler.controller import DepartureTarget, SiteConfig
from scheduler.simulate import period_prices
from scheduler.simulate import scripted_twin as twin_with_sessions

from .closed_loop import Rig


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=1) as executor:
        yield executor


def test_smart_mode_reaches_the_target_by_departure_on_cheap_hours(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    # car home 18:00-07:30 local with 20 kWh, wants 45 kWh at 07:00 local (05:00 UTC)
    twin = twin_with_sessions(
        "2024-06-10T00:00Z", 2, [("2024-06-10T16:00Z", "2024-06-11T05:30Z", 40)]
    )
    departure = DepartureTarget("07:00", target_kwh=45, arrival_kwh=20, capacity_kwh=60)
    config = SiteConfig("test-site", charging_mode=ChargingMode.SMART, departure=departure)

    async def scenario() -> Rig:
        rig = await Rig.start(twin, "2024-06-10T15:00Z", tmp_path, pool)
        ctl = rig.controller(config)
        await ctl.start()
        await rig.run_until("2024-06-11T05:00Z")
        await ctl.stop()
        await rig.close()
        assert all(r.ok for r in ctl.reports), [r.error for r in ctl.reports if not r.ok]
        return rig

    rig = asyncio.run(scenario())
    steps = rig.steps()
    h = steps["dt_s"] / 3600
    ev_kwh = float((steps["ev_kw"] * h).sum())
    wanted_grid_kwh = (45 - 20) / 0.92  # the plan's wallbox efficiency
    assert ev_kwh >= wanted_grid_kwh - 0.5
    assert ev_kwh <= wanted_grid_kwh + 3.0  # it did not simply charge the car full
    # physics: the battery stayed inside its window
    assert steps["soc_end"].between(0.05 - 1e-9, 1.0 + 1e-9).all()
    # the box stayed under remote control the whole time
    assert ControlState.FALLBACK not in rig.states and not any(rig.latched)
    # money: the car charged in cheaper slots than the plug-in window's average
    prices = period_prices(config, steps.index[0], steps.index[-1] + pd.Timedelta("1min"))
    price = prices["import_eur_per_kwh"].reindex(steps.index.floor("15min")).to_numpy()
    plugged = (steps.index >= "2024-06-10T16:00Z") & (steps.index < "2024-06-11T05:00Z")
    paid = float((steps["ev_kw"] * h * price).sum()) / ev_kwh
    assert paid < float(np.mean(price[plugged])) - 0.005


def test_solar_mode_takes_no_grid_energy(tmp_path: Path, pool: ProcessPoolExecutor) -> None:
    # the sunniest day of the measured June week
    twin = twin_with_sessions(
        "2024-06-13T00:00Z", 1, [("2024-06-13T07:30Z", "2024-06-13T14:00Z", 40)]
    )
    config = SiteConfig(
        "test-site", charging_mode=ChargingMode.SOLAR, pv_forecast="weather", horizon_slots=64
    )

    async def scenario() -> Rig:
        rig = await Rig.start(twin, "2024-06-13T07:00Z", tmp_path, pool)
        ctl = rig.controller(config)
        await ctl.start()
        await rig.run_until("2024-06-13T14:00Z")
        await ctl.stop()
        await rig.close()
        return rig

    rig = asyncio.run(scenario())
    steps = rig.steps()
    h = steps["dt_s"] / 3600
    ev_kwh = float((steps["ev_kw"] * h).sum())
    from_grid = float((np.minimum(steps["ev_kw"], steps["grid_kw"].clip(lower=0)) * h).sum())
    assert ev_kwh > 5.0  # it did charge from the sun
    assert from_grid <= 0.03 * ev_kwh
    assert steps["soc_end"].between(0.05 - 1e-9, 1.0 + 1e-9).all()
    assert ControlState.FALLBACK not in rig.states


def test_killed_service_falls_back_and_resumes_without_repeating_a_command(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    twin = twin_with_sessions("2024-06-10T00:00Z", 1, [])
    config = SiteConfig("test-site", watchdog_timeout_s=60, schedule_slots=4)

    async def scenario() -> None:
        rig = await Rig.start(twin, "2024-06-10T10:00Z", tmp_path, pool)
        first = rig.controller(config)
        await first.start()
        await rig.run_until("2024-06-10T10:40Z")
        assert ControlState.FALLBACK not in rig.states and not any(rig.latched)
        assert rig.box.control_state(rig.clock.now()) == ControlState.REMOTE_LIVE
        seqs_before = [r.applied_seq for r in first.reports]
        killed_at = rig.clock.now()
        await first.stop()  # a crash: no release, the heartbeat just stops
        n = len(rig.latched)
        await rig.run_until(pd.Timestamp(killed_at + 61, unit="s", tz="UTC"))
        assert rig.latched[-1] and not any(rig.latched[:n])  # the watchdog latched in time
        # the uploaded plan keeps running, then the box's own fallback takes over
        assert rig.states[-1] == ControlState.SCHEDULE
        await rig.run_until("2024-06-10T11:30Z")  # the 4-slot schedule ended at 11:30
        await rig.run_until("2024-06-10T11:31Z")
        assert rig.states[-1] == ControlState.FALLBACK
        applied_in_fallback = rig.box.applied_seq

        second = rig.controller(config)
        await second.start()
        await rig.run_until("2024-06-10T12:00Z")
        await second.stop(release=True)
        await rig.close()
        assert all(r.ok for r in second.reports), [r.error for r in second.reports]
        assert second.reports[0].reasons == ("fallback",)
        assert rig.states[-1] != ControlState.FALLBACK and not rig.latched[-1]
        seqs = seqs_before + [r.applied_seq for r in second.reports]
        # every command took effect exactly once, numbered on from what the box had applied
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert second.reports[0].applied_seq == applied_in_fallback + 1

    asyncio.run(scenario())


def test_grid_operator_limit_replans_at_once_as_a_hard_import_cap(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    twin = twin_with_sessions("2024-06-13T00:00Z", 1, [])
    config = SiteConfig("test-site", horizon_slots=16)

    async def scenario() -> None:
        rig = await Rig.start(twin, "2024-06-13T18:00Z", tmp_path, pool)
        ctl = rig.controller(config)
        await ctl.start()
        await rig.run_until("2024-06-13T18:05Z")
        assert ctl.last_problem is not None and ctl.last_problem.inputs.import_cap_kw is not None
        assert np.isnan(ctl.last_problem.inputs.import_cap_kw).all()
        rig.box.set_external_limits(consumption_limit_kw=4.2)
        await rig.run_until("2024-06-13T18:07Z")  # the next poll sees it; no waiting for :15
        await ctl.stop()
        await rig.close()
        last = ctl.reports[-1]
        assert "grid-operator limit" in last.reasons and last.ok
        assert last.time < pd.Timestamp("2024-06-13T18:15Z")
        np.testing.assert_array_equal(ctl.last_problem.inputs.import_cap_kw, 4.2)

    asyncio.run(scenario())
