"""The fleet runner: every site gets a report, failures stay with their site, backends agree."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import dask
import numpy as np
import pandas as pd
import pytest

from optimizer import ChargingMode, Problem, Tuning, optimize
from scheduler.fleet import (
    FleetConfig,
    FleetReport,
    FleetRunner,
    SiteForecast,
    SiteJob,
    SiteStatus,
    shared_columns,
)
from scheduler.fleet_sim import (
    TwinBox,
    fleet_frame,
    home_job,
    run_simulated_cycle,
    simulated_homes,
)

PERIODS = 32  # 8 h: small problems keep the suite fast


class ExplodingProblem(Problem):
    """A problem whose solve raises inside the optimizer."""

    def session(self, wallbox: str) -> None:  # type: ignore[override]
        raise RuntimeError("solver blew up")


class ExplodingJob(SiteJob):
    def problem(self, shared: pd.DataFrame) -> Problem:
        p = super().problem(shared)
        return ExplodingProblem(p.site, p.inputs, p.state, p.tuning)


class KillerJob(SiteJob):
    """Kills the worker process that builds it (a segfaulting solver, an OOM kill)."""

    def problem(self, shared: pd.DataFrame) -> Problem:
        os._exit(13)


class SleeperJob(SiteJob):
    """Hangs in the worker (a stuck solver that ignores its time limit)."""

    def problem(self, shared: pd.DataFrame) -> Problem:
        time.sleep(6)
        return super().problem(shared)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return fleet_frame(periods=PERIODS)


@pytest.fixture(scope="module")
def jobs(frame: pd.DataFrame) -> list[SiteJob]:
    homes = simulated_homes(8, seed=3)
    return [home_job(h, TwinBox(h, frame).read_state()) for h in homes]


@pytest.fixture(scope="module")
def process_runner() -> Iterator[FleetRunner]:
    with FleetRunner(FleetConfig(workers=2, chunk_size=2, schedule_slots=PERIODS)) as runner:
        yield runner


@pytest.fixture(scope="module")
def dask_runner() -> Iterator[FleetRunner]:
    config = FleetConfig(backend="dask", workers=2, chunk_size=2, schedule_slots=PERIODS)
    # give up on a task after the first worker it kills (the default retries it 3 times)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        FleetRunner(config) as runner,
    ):
        yield runner


@pytest.fixture(scope="module")
def clean(process_runner: FleetRunner, jobs: list[SiteJob], frame: pd.DataFrame) -> FleetReport:
    return process_runner.run(jobs, frame)


def test_every_site_is_planned_within_its_devices(clean: FleetReport, jobs: list[SiteJob]) -> None:
    assert [r.site_id for r in clean.sites] == [j.site_id for j in jobs]
    assert clean.counts() == {"ok": len(jobs)}
    for job, report in zip(jobs, clean.sites, strict=True):
        assert len(report.setpoints) == PERIODS and report.cycle_ms > 0
        battery = job.site.battery
        for sp in report.setpoints:
            if battery is None:
                assert sp.battery_kw is None
            else:
                assert sp.battery_kw is not None
                assert -battery.charge_kw - 1e-6 <= sp.battery_kw <= battery.discharge_kw + 1e-6
            assert set(sp.wallboxes) == {w.name for w in job.site.wallboxes}
    median, p99 = clean.cycle_ms_quantiles()
    assert 0 < median <= p99


def test_dask_gives_the_same_plans_as_the_process_pool(
    dask_runner: FleetRunner, clean: FleetReport, jobs: list[SiteJob], frame: pd.DataFrame
) -> None:
    report = dask_runner.run(jobs, frame)
    assert report.counts() == {"ok": len(jobs)}
    for a, b in zip(clean.sites, report.sites, strict=True):
        assert (a.site_id, a.cost_eur, a.setpoints) == (b.site_id, b.cost_eur, b.setpoints)


def test_fleet_plans_are_the_single_site_plans(
    process_runner: FleetRunner, frame: pd.DataFrame
) -> None:
    homes = simulated_homes(6, seed=21, smart_ev_share=0.5)
    jobs = [home_job(h, TwinBox(h, frame).read_state()) for h in homes]
    assert any(j.state.ev_sessions for j in jobs) and any(j.site.heat_pumps for j in jobs)
    report = process_runner.run(jobs, frame)
    for job, site in zip(jobs, report.sites, strict=True):
        plan = optimize(job.problem(shared_columns(frame)))
        slots = plan.slots
        assert site.status == SiteStatus.OK
        assert (site.cost_eur, site.setpoints) == (plan.summary.cost_eur, plan.schedule(PERIODS))
        # money: the cost is the bill of the planned grid flows at the slot prices
        bill = (slots.grid_import_kw * slots.import_eur_per_kwh) - (
            slots.grid_export_kw * slots.export_eur_per_kwh
        )
        assert site.cost_eur == pytest.approx(bill.sum() * 0.25, abs=1e-9)
        # physics: with the powers the box is sent, every slot balances
        for k, sp in enumerate(site.setpoints):
            devices = sum(w.power_kw for w in sp.wallboxes.values())
            devices += sum(h.power_kw for h in sp.heat_pumps.values())
            supply = slots.grid_kw.iloc[k] + slots.pv_kw.iloc[k] + (sp.battery_kw or 0.0)
            demand = slots.load_kw.iloc[k] - slots.grid_unserved_kw.iloc[k] + devices
            assert supply == pytest.approx(demand, abs=1e-6)
            for w in sp.wallboxes.values():
                assert (w.current_a is None) == (w.phases == 0)
                if w.current_a is not None:
                    assert w.current_a * w.phases * 230 == pytest.approx(w.power_kw * 1000)
        if job.site.battery is not None:
            b = job.site.battery
            assert slots.battery_soc.between(b.soc_min - 1e-9, b.soc_max + 1e-9).all()


def _faulty_jobs(jobs: list[SiteJob]) -> list[SiteJob]:
    nan_pv = np.full(PERIODS, 0.5)
    nan_pv[5] = np.nan
    faulty = list(jobs)
    bad = jobs[1]
    faulty[1] = SiteJob(bad.site_id, bad.site, bad.state, SiteForecast(pv_kw=nan_pv))
    k = next(i for i, j in enumerate(jobs) if i > 1 and j.site.wallboxes)
    ev = jobs[k]
    faulty[k] = ExplodingJob(ev.site_id, ev.site, ev.state, ev.forecast)
    return faulty


@pytest.mark.parametrize("backend", ["process", "dask"])
def test_a_bad_site_fails_alone(
    backend: str,
    request: pytest.FixtureRequest,
    clean: FleetReport,
    jobs: list[SiteJob],
    frame: pd.DataFrame,
) -> None:
    runner: FleetRunner = request.getfixturevalue(f"{backend}_runner")
    faulty = _faulty_jobs(jobs)
    report = runner.run(faulty, frame)
    by_id = {r.site_id: r for r in report.sites}
    assert len(by_id) == len(jobs)
    exploding_id = next(j.site_id for j in faulty if isinstance(j, ExplodingJob))
    nan_site, exploding = by_id[faulty[1].site_id], by_id[exploding_id]
    assert nan_site.status == SiteStatus.ERROR and "pv_kw" in nan_site.error
    assert exploding.status == SiteStatus.ERROR and "solver blew up" in exploding.error
    # its chunk-mate and every other site get exactly the plan they get in a clean cycle
    for ref in clean.sites:
        if ref.site_id not in (nan_site.site_id, exploding.site_id):
            got = by_id[ref.site_id]
            assert (got.status, got.cost_eur, got.setpoints) == (
                SiteStatus.OK,
                ref.cost_eur,
                ref.setpoints,
            )


def test_a_solver_time_limit_bounds_one_site(
    process_runner: FleetRunner, clean: FleetReport, jobs: list[SiteJob], frame: pd.DataFrame
) -> None:
    slow = jobs[0]
    rushed = SiteJob(slow.site_id, slow.site, slow.state, slow.forecast, Tuning(time_limit_s=1e-6))
    report = process_runner.run([rushed, *jobs[1:]], frame)
    first = report.sites[0]
    # either the best plan found so far, or a clear error; never a hang or a lost fleet
    assert first.status == SiteStatus.ERROR or first.solver_status in ("time_limit", "optimal")
    assert [r.cost_eur for r in report.sites[1:]] == [r.cost_eur for r in clean.sites[1:]]


@pytest.mark.parametrize("backend", ["process", "dask"])
def test_a_killed_worker_loses_only_its_chunk(
    backend: str,
    request: pytest.FixtureRequest,
    clean: FleetReport,
    jobs: list[SiteJob],
    frame: pd.DataFrame,
) -> None:
    runner: FleetRunner = request.getfixturevalue(f"{backend}_runner")
    victim = jobs[2]
    killer = KillerJob(victim.site_id, victim.site, victim.state, victim.forecast)
    report = runner.run([*jobs[:2], killer, *jobs[3:]], frame)
    statuses = [r.status for r in report.sites]
    # chunk_size 2: the killer shares its chunk with jobs[3]
    assert statuses[2:4] == [SiteStatus.WORKER_LOST] * 2
    assert ("BrokenProcessPool" if backend == "process" else "KilledWorker") in report.sites[
        2
    ].error
    for i in (0, 1, 4, 5, 6, 7):
        assert report.sites[i].status == SiteStatus.OK
        assert report.sites[i].setpoints == clean.sites[i].setpoints
    # the runner is usable again afterwards
    assert runner.run(jobs[:2], frame).counts() == {"ok": 2}


def test_a_hung_chunk_is_reported_at_the_cycle_budget(
    clean: FleetReport, jobs: list[SiteJob], frame: pd.DataFrame
) -> None:
    config = FleetConfig(chunk_size=2, schedule_slots=PERIODS, cycle_timeout_s=4.0)
    stuck = jobs[0]
    sleeper = SleeperJob(stuck.site_id, stuck.site, stuck.state, stuck.forecast)
    with FleetRunner(config) as runner:
        report = runner.run([sleeper, *jobs[1:]], frame)
    assert [r.status for r in report.sites[:2]] == [SiteStatus.TIMEOUT] * 2
    # the other worker solved every other chunk meanwhile
    assert [r.setpoints for r in report.sites[2:]] == [r.setpoints for r in clean.sites[2:]]


def test_twin_boxes_apply_the_live_setpoint_and_unreachable_boxes_are_reported(
    process_runner: FleetRunner, frame: pd.DataFrame
) -> None:
    homes = simulated_homes(4, seed=11)
    boxes = [TwinBox(h, frame, reachable=k != 1) for k, h in enumerate(homes)]
    cycle = run_simulated_cycle(process_runner, boxes, frame)
    statuses = [r.status for r in cycle.report.sites]
    assert statuses == [SiteStatus.OK, SiteStatus.UNREACHABLE, SiteStatus.OK, SiteStatus.OK]
    for box, report in zip(boxes, cycle.report.sites, strict=True):
        if report.status != SiteStatus.OK:
            assert box.twin.last is None  # nothing was sent
            continue
        step = box.twin.last
        assert step is not None and step.dt_s == 900
        sp = report.setpoints[0]
        if box.home.battery_kwh > 0:
            # the twin runs the planned battery power; SOC moves by its energy
            assert sp.battery_kw is not None
            assert step.battery_kw == pytest.approx(sp.battery_kw, abs=1e-6)
            b = box.twin.site.battery
            energy = step.charge_kw * b.eta_charge - step.discharge_kw / b.eta_discharge
            assert step.soc_end - step.soc_start == pytest.approx(energy * 0.25 / b.capacity_kwh)
        assert step.grid_kw == pytest.approx(
            step.load_kw + step.ev_kw + step.hp_kw - step.pv_kw - step.battery_kw
        )


def test_homes_vary_reproducibly() -> None:
    homes = simulated_homes(200, seed=5)
    assert homes == simulated_homes(200, seed=5)
    assert len({h.pv_kwp for h in homes}) > 3 and len({h.battery_kwh for h in homes}) > 2
    assert {h.ev_mode for h in homes} >= {None, ChargingMode.SMART, ChargingMode.SOLAR}
    assert any(h.heat_pump for h in homes) and not all(h.heat_pump for h in homes)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"backend": "spark"}, "backend"),
        ({"workers": 0}, "workers"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"cycle_timeout_s": 0}, "cycle_timeout_s"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"FleetConfig.{field}"):
        FleetConfig(**kwargs)  # type: ignore[arg-type]
