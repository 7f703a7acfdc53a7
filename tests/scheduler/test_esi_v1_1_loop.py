"""The controller uses what an ESI v1.1 box measures (store temperature, the car's SOC and
session energy) and keeps its estimates on a v1.0 box."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from scheduler.controller import SiteConfig, SiteController
from scheduler.simulate import scripted_twin

from .closed_loop import Rig

START = "2024-06-12T10:00Z"
WRONG_START_C = 50.0  # what the controller assumes before it knows better [degC]


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=1) as executor:
        yield executor


def _run(minor: int, tmp: Path, pool: ProcessPoolExecutor) -> tuple[SiteController, Rig]:
    """Half an hour of control; the car plugs in at the start wanting 20 kWh."""
    twin = scripted_twin("2024-06-12T00:00Z", 1, [(START, "2024-06-12T16:00Z", 20.0)])
    config = SiteConfig("test-site", hp_temp_init_c=WRONG_START_C, learn_ev_sessions=False)

    async def scenario() -> tuple[SiteController, Rig]:
        rig = await Rig.start(twin, START, tmp, pool)
        rig.box.config = replace(rig.box.config, esi_minor=minor)
        ctl = rig.controller(config)
        await ctl.start()
        await rig.run_until("2024-06-12T10:30Z")
        await ctl.stop()
        await rig.close()
        assert all(r.ok for r in ctl.reports), [r.error for r in ctl.reports if not r.ok]
        return ctl, rig

    return asyncio.run(scenario())


def test_v1_1_box_measurements_replace_the_estimates(
    tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    ctl, rig = _run(1, tmp_path, pool)
    t_store = rig.box.steps[-1].t_store_c
    assert abs(t_store - WRONG_START_C) > 5  # the assumption was far off
    assert ctl.hp_temp_c == pytest.approx(t_store, abs=1e-3)  # mdegC on the wire
    assert ctl.last_problem is not None
    assert abs(ctl.last_problem.state.hp_temp_c["hp"] - t_store) < 0.5  # the plan starts there
    # the battery's end energy is valued by the next day (scheduler.end_value): 4 segments
    # over the 9.5 kWh between the SOC limits, worth at most the dearest import
    segments = ctl.last_problem.battery_end_value
    assert sum(w for w, _ in segments) == pytest.approx(9.5)
    values = [v for _, v in segments]
    assert values == sorted(values, reverse=True)
    assert 0 <= values[-1] <= values[0] <= ctl.last_problem.inputs.import_eur_per_kwh.max()
    steps = rig.steps()
    charged = float((steps["ev_kw"] * steps["dt_s"] / 3600).sum())
    assert charged > 1.0
    assert ctl._ev is not None
    assert ctl._ev.delivered_kwh == pytest.approx(charged, abs=0.01)  # the box's own count
    # the twin's car arrives at 30 % of 60 kWh; the configured guess is 20 kWh
    assert ctl._arrival_kwh() == pytest.approx(0.3 * 60.0, abs=0.2)


def test_v1_0_box_keeps_the_estimates(tmp_path: Path, pool: ProcessPoolExecutor) -> None:
    ctl, rig = _run(0, tmp_path, pool)
    t_store = rig.box.steps[-1].t_store_c
    assert abs(ctl.hp_temp_c - t_store) > 5  # the observer started from the assumption
    assert ctl._arrival_kwh() == ctl.config.departure.arrival_kwh
    assert ctl._ev is not None and ctl._ev.delivered_kwh > 1.0  # integrated from power
