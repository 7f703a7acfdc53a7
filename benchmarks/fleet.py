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

import numpy as np

from optimizer import optimize
from optimizer.formulate import formulate
from scheduler.fleet import FleetConfig, FleetRunner, SiteStatus
from scheduler.fleet_sim import (
    TwinBox,
    fleet_frame,
    home_job,
    run_simulated_cycle,
    simulated_homes,
)

GOAL_SITES = 100_000
GOAL_PERIOD_S = 900.0


def bench(args: argparse.Namespace) -> None:
    frame = fleet_frame(periods=args.hours * 4)
    header = (
        f"{'backend':8} {'N':>6} {'reps':>4} {'wall s':>8} {'cycles/s':>9} {'median ms':>9} "
        f"{'p99 ms':>8} {'box I/O s':>9} {'100k min':>8} {'not ok':>6}"
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
            with FleetRunner(config) as runner:
                warm = [TwinBox(h, frame) for h in homes[: 2 * args.workers * args.chunk_size]]
                run_simulated_cycle(runner, warm, frame)
                walls, rates, ms, io, bad = [], [], [], [], 0
                for _ in range(args.reps):
                    cycle = run_simulated_cycle(runner, boxes, frame)
                    report = cycle.report
                    walls.append(report.wall_s + cycle.box_io_s)
                    rates.append(sum(r.status == SiteStatus.OK for r in report.sites) / walls[-1])
                    ms += [r.cycle_ms for r in report.sites if r.status == SiteStatus.OK]
                    io.append(cycle.box_io_s)
                    bad += sum(r.status != SiteStatus.OK for r in report.sites)
            rate = statistics.mean(rates)
            median, p99 = np.quantile(ms, [0.5, 0.99])
            print(
                f"{backend:8} {n:6d} {args.reps:4d} {statistics.mean(walls):8.1f} {rate:9.1f} "
                f"{median:9.1f} {p99:8.1f} {statistics.mean(io):9.2f} "
                f"{GOAL_SITES / rate / 60:8.1f} {bad:6d}",
                flush=True,
            )
    print(
        f"\ngoal: {GOAL_SITES:,} homes per {GOAL_PERIOD_S / 60:.0f} min = "
        f"{GOAL_SITES / GOAL_PERIOD_S:.0f} site cycles/s; '100k min' = minutes one cycle of "
        f"{GOAL_SITES:,} homes would take at the measured rate"
    )


def profile(args: argparse.Namespace) -> None:
    """Where one site's cycle time goes, in this process, over ``--profile`` homes."""
    frame = fleet_frame(periods=args.hours * 4)
    homes = simulated_homes(args.profile, seed=args.seed, smart_ev_share=args.smart_ev_share)
    parts: dict[str, list[float]] = {
        k: [] for k in ("problem", "formulate", "solve", "read back", "setpoints")
    }
    sizes: dict[str, list[float]] = {k: [] for k in ("job B", "problem B", "job rt", "prob rt")}
    for home in homes:
        job = home_job(home, TwinBox(home, frame).read_state())
        t0 = time.perf_counter()
        problem = job.problem(frame)
        t1 = time.perf_counter()
        formulate(problem)
        t2 = time.perf_counter()
        plan = optimize(problem)
        t3 = time.perf_counter()
        plan.schedule()
        t4 = time.perf_counter()
        s = plan.summary
        parts["problem"].append((t1 - t0) * 1e3)
        parts["formulate"].append((t2 - t1) * 1e3)
        parts["solve"].append(s.solve_ms)
        parts["read back"].append((t3 - t2) * 1e3 - s.build_ms - s.solve_ms)
        parts["setpoints"].append((t4 - t3) * 1e3)
        for name, obj in (("job", job), ("prob", problem)):
            t = time.perf_counter()
            blob = pickle.dumps(obj)
            pickle.loads(blob)
            sizes[f"{name} rt"].append((time.perf_counter() - t) * 1e3)
            sizes["job B" if name == "job" else "problem B"].append(len(blob))
    total = sum(statistics.mean(v) for v in parts.values())
    print(f"\nper-site time in one worker, mean over {len(homes)} homes (ms, share):")
    for name, values in parts.items():
        mean = statistics.mean(values)
        print(f"  {name:10} {mean:7.2f} ms  {mean / total:5.0%}")
    print(f"  {'total':10} {total:7.2f} ms")
    print(
        f"payload per site: SiteJob {statistics.mean(sizes['job B']):,.0f} B "
        f"(pickle round trip {statistics.mean(sizes['job rt']):.2f} ms) vs Problem "
        f"{statistics.mean(sizes['problem B']):,.0f} B ({statistics.mean(sizes['prob rt']):.2f} ms)"
    )


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
