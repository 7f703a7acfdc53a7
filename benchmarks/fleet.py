"""Fleet throughput: N simulated homes per cycle on the process pool and a 2-worker Dask cluster.

Each home is a different configuration (PV, battery, EV and its mode, heat pump) on the
bundled real prices and weather, 24 h horizon at 15 min; its box is an in-process twin
(:class:`scheduler.fleet_sim.TwinBox`), so the network is not measured. One warm-up
cycle starts the workers; the table reports the cycles after it.

Run: ``.venv/bin/python benchmarks/fleet.py [--sites 100 1000 10000] [--reps 1]
[--backends process dask] [--chunk-size 50] [--schedule-slots 1] [--profile 40]
[--smart-ev-share 0.5]``.
The goal: 100,000 homes per 15-minute cycle (= 111 site cycles/s) on a 2-core machine.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psutil

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


def profile(args: argparse.Namespace) -> None:
    """Where one site's CPU time goes, in this process, over ``--profile`` homes."""
    frame = fleet_frame(periods=args.hours * 4)
    homes = simulated_homes(args.profile, seed=args.seed, smart_ev_share=args.smart_ev_share)
    slots = args.schedule_slots or args.hours * 4
    shared = shared_columns(frame)
    parts: dict[str, list[float]] = {
        k: [] for k in ("problem", "formulate", "solve", "read back", "schedule", "out", "in")
    }
    for home in homes:
        job = home_job(home, TwinBox(home, frame).read_state())
        t0 = time.process_time()
        problem = job.problem(shared)
        t1 = time.process_time()
        plan = optimize(problem)
        t2 = time.process_time()
        s = plan.summary
        report = SiteReport(job.site_id, SiteStatus.OK, "", 0.0, plan.schedule(slots), s.cost_eur)
        t3 = time.process_time()
        blob = pickle.dumps(report)
        t4 = time.process_time()
        pickle.loads(blob)
        t5 = time.process_time()
        parts["problem"].append((t1 - t0) * 1e3)
        parts["formulate"].append(s.build_ms)
        parts["solve"].append(s.solve_ms)
        parts["read back"].append((t2 - t1) * 1e3 - s.build_ms - s.solve_ms)
        parts["schedule"].append((t3 - t2) * 1e3)
        parts["out"].append((t4 - t3) * 1e3)
        parts["in"].append((t5 - t4) * 1e3)
    total = sum(statistics.mean(v) for v in parts.values())
    print(f"\nper-site time, mean over {len(homes)} homes in one process (ms, share):")
    labels = {"out": "pickle the report (worker)", "in": "unpickle it (parent)"}
    for name, values in parts.items():
        mean = statistics.mean(values)
        print(f"  {labels.get(name, name):26} {mean:7.2f} ms  {mean / total:5.0%}")
    print(f"  {'total':26} {total:7.2f} ms")
    print("(build_ms and solve_ms are wall times from the plan's summary, the rest CPU time)")


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
    parser.add_argument("--profile", type=int, default=0, help="also profile this many homes")
    args = parser.parse_args()
    bench(args)
    if args.profile:
        profile(args)


if __name__ == "__main__":
    main()
