"""Fleet throughput: N simulated homes per cycle on the process pool and a 2-worker Dask cluster.

Each home is a different configuration (PV, battery, EV and its mode, heat pump) on the
bundled real prices and weather, 24 h horizon at 15 min (``--hours 36``: the service's); its
box is an in-process twin (:class:`scheduler.fleet_sim.TwinBox`), so the network is not
measured. One warm-up cycle starts the workers; the table reports the cycles after it, with the
CPU time of all processes per site cycle (the rate on a shared machine says little).

Run: ``.venv/bin/python benchmarks/fleet.py [--sites 100 1000 10000] [--reps 1]
[--backends process dask] [--chunk-size 50] [--schedule-slots 1] [--hours 24]
[--smart-ev-share 0.5]``; ``--profile 200`` instead splits one site's time into its parts.
The goal: 100,000 homes per 15-minute cycle (= 111 site cycles/s) on a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import psutil

import optimizer.plan as plan_module
from core.blas import one_blas_thread
from optimizer import optimize
from scheduler.fleet import FleetConfig, FleetRunner, SiteReport, SiteStatus, shared_columns
from scheduler.fleet_sim import (
    TwinBox,
    fleet_frame,
    home_job,
    run_simulated_cycle,
    simulated_homes,
)

GOAL_SITES = 100_000
GOAL_PERIOD_S = 900.0


def cpu_seconds() -> dict[int, float]:
    """CPU time [s] so far of this process and every process below it (pool workers, the
    forkserver, a LocalCluster's nannies and workers), by process id."""
    me = psutil.Process()
    out = {}
    for proc in (me, *me.children(recursive=True)):
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[proc.pid] = t.user + t.system
    return out


@dataclass
class Row:
    """One benchmark row, collected over the repetitions."""

    walls: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    io: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    parent_ms: list[float] = field(default_factory=list)
    bad: int = 0


def measure(runner: FleetRunner, boxes: list[TwinBox], frame: pd.DataFrame, row: Row) -> None:
    """One cycle; its wall time, rate, per-site times and CPU time per site cycle."""
    before, parent = cpu_seconds(), time.process_time()
    cycle = run_simulated_cycle(runner, boxes, frame)
    parent = time.process_time() - parent
    after = cpu_seconds()
    cpu = sum(t - before.get(pid, 0.0) for pid, t in after.items())
    report = cycle.report
    ok = [r for r in report.sites if r.status == SiteStatus.OK]
    row.walls.append(report.wall_s + cycle.box_io_s)
    row.rates.append(len(ok) / row.walls[-1])
    row.ms += [r.cycle_ms for r in ok]
    row.io.append(cycle.box_io_s)
    row.cpu_ms.append(cpu / max(len(ok), 1) * 1e3)
    row.parent_ms.append(parent / max(len(ok), 1) * 1e3)
    row.bad += len(report.sites) - len(ok)


def bench(args: argparse.Namespace) -> None:
    frame = fleet_frame(periods=args.hours * 4)
    header = (
        f"{'backend':8} {'N':>6} {'reps':>4} {'wall s':>7} {'cycles/s':>8} {'median ms':>9} "
        f"{'mean ms':>7} {'p99 ms':>7} {'CPU ms':>6} {'parent':>6} {'2 cores/s':>9} "
        f"{'box I/O s':>9} {'100k min':>8} {'not ok':>6}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sites:
        homes = simulated_homes(n, seed=args.seed, smart_ev_share=args.smart_ev_share)
        for backend in args.backends:
            boxes = [TwinBox(h, frame) for h in homes]
            config = FleetConfig(
                backend=backend,
                workers=args.workers,
                chunk_size=args.chunk_size,
                schedule_slots=args.schedule_slots or args.hours * 4,
            )
            row = Row()
            with FleetRunner(config) as runner:
                warm = [TwinBox(h, frame) for h in homes[: 2 * args.workers * args.chunk_size]]
                run_simulated_cycle(runner, warm, frame)
                for _ in range(args.reps):
                    measure(runner, boxes, frame, row)
            rate = statistics.mean(row.rates)
            median, p99 = np.quantile(row.ms, [0.5, 0.99])
            cpu_ms = statistics.mean(row.cpu_ms)
            print(
                f"{backend:8} {n:6d} {args.reps:4d} {statistics.mean(row.walls):7.1f} "
                f"{rate:8.1f} {median:9.1f} {statistics.mean(row.ms):7.1f} {p99:7.1f} "
                f"{cpu_ms:6.2f} {statistics.mean(row.parent_ms):6.2f} "
                f"{args.workers * 1e3 / cpu_ms:9.1f} {statistics.mean(row.io):9.2f} "
                f"{GOAL_SITES / rate / 60:8.1f} {row.bad:6d}",
                flush=True,
            )
    print(
        f"\ngoal: {GOAL_SITES:,} homes per {GOAL_PERIOD_S / 60:.0f} min = "
        f"{GOAL_SITES / GOAL_PERIOD_S:.0f} site cycles/s; '100k min' = minutes one cycle of "
        f"{GOAL_SITES:,} homes would take at the measured rate; 'CPU ms' = CPU time of all "
        "processes (workers and this one) per site cycle, 'parent' = this process's share; "
        "'2 cores/s' = the rate if the workers' cores did nothing else (workers x 1000 / CPU ms)"
    )


@contextlib.contextmanager
def cpu_timers(names: Sequence[str]) -> Iterator[dict[str, float]]:
    """CPU time [s] spent in the named functions of :mod:`optimizer.plan` while inside.

    The steps inside :func:`optimizer.optimize` are timed by wrapping the module's functions
    (its summary reports wall times, which a shared machine inflates).
    """
    spent = dict.fromkeys(names, 0.0)
    originals = {name: getattr(plan_module, name) for name in names}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - t

        return wrapper

    for name, fn in originals.items():
        setattr(plan_module, name, timed(name, fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(plan_module, name, fn)


def profile(args: argparse.Namespace) -> None:
    """Where one site's CPU time goes, in this process, over ``--profile`` homes."""
    frame = fleet_frame(periods=args.hours * 4)
    homes = simulated_homes(args.profile, seed=args.seed, smart_ev_share=args.smart_ev_share)
    slots = args.schedule_slots or args.hours * 4
    shared = shared_columns(frame)
    steps = ("formulate", "_solve", "read_slots", "summarize")
    parts = dict.fromkeys(("problem", "optimize", "schedule", "out", "in"), 0.0)
    jobs = [home_job(home, TwinBox(home, frame).read_state()) for home in homes]
    with cpu_timers(steps) as spent:
        for job in jobs:
            t0 = time.process_time()
            problem = job.problem(shared)
            t1 = time.process_time()
            plan = optimize(problem)
            t2 = time.process_time()
            s = plan.summary
            report = SiteReport(job.site_id, SiteStatus.OK, "", 0, plan.schedule(slots), s.cost_eur)
            t3 = time.process_time()
            blob = pickle.dumps(report)
            t4 = time.process_time()
            pickle.loads(blob)
            t5 = time.process_time()
            for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                parts[name] += dt
    parts["optimize"] -= sum(spent.values())  # what optimize does besides the timed steps
    rows = {
        "problem from the job": parts["problem"],
        "formulate": spent["formulate"],
        "solve sequence": spent["_solve"],
        "read back (slots, summary)": spent["read_slots"] + spent["summarize"],
        "rest of optimize": parts["optimize"],
        "schedule": parts["schedule"],
        "pickle the report (worker)": parts["out"],
        "unpickle it (parent)": parts["in"],
    }
    total = sum(rows.values())
    print(f"per-site CPU time, mean over {len(jobs)} homes in one process (ms, share):")
    for name, value in rows.items():
        print(f"  {name:28} {value / len(jobs) * 1e3:7.2f} ms  {value / total:5.0%}")
    print(f"  {'total':28} {total / len(jobs) * 1e3:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--backends", nargs="+", default=["process", "dask"])
    parser.add_argument("--reps", type=int, default=1, help="cycles per row after a warm-up")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=50)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--smart-ev-share",
        type=float,
        default=None,
        help="share of homes with a car plugged in smart mode with a target to reach "
        "(default: 60 %% with a car in a random mode)",
    )
    parser.add_argument(
        "--schedule-slots", type=int, default=0, help="setpoints per plan (default: all slots)"
    )
    parser.add_argument(
        "--profile", type=int, default=0, help="instead: where the time goes, over this many homes"
    )
    args = parser.parse_args()
    one_blas_thread()  # as the service plans (core.blas); the workers do it themselves
    if args.profile:
        profile(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
