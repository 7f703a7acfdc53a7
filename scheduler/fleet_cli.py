"""``hbopt fleet``: one control cycle for N simulated homes, on a process pool or Dask."""

from __future__ import annotations

import argparse

import pandas as pd

from core.errors import CliError
from scheduler.fleet import FleetConfig, FleetRunner, SiteStatus
from scheduler.fleet_sim import (
    DEFAULT_START,
    SimulatedCycle,
    TwinBox,
    fleet_frame,
    run_simulated_cycle,
    simulated_homes,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = subparsers.add_parser(
        "fleet",
        help="run one control cycle for N simulated homes and print a per-status summary",
        description="Plan N different homes (PV, battery, EV, heat pump, seeded) on the bundled "
        "real prices and weather; each box is stubbed by an in-process twin.",
    )
    p.add_argument("--sites", type=int, default=100, help="number of homes (default 100)")
    p.add_argument("--backend", default="process", choices=("process", "dask"))
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--chunk-size", type=int, default=25, help="sites per task (default 25)")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")
    p.add_argument("--start", default=DEFAULT_START, help="cycle start, UTC")
    p.add_argument("--hours", type=int, default=24, help="horizon [h] (default 24)")
    p.add_argument("--seed", type=int, default=0, help="seed of the homes' variation")
    p.add_argument("--timeout", type=float, help="cycle budget [s]; later sites: timeout")
    p.add_argument(
        "--unreachable", type=int, default=0, help="make this many boxes not answer (a drill)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.sites < 1:
        raise CliError("--sites must be >= 1")
    if not 0 < args.hours <= 48:
        raise CliError("--hours must be in 1..48")
    if not 0 <= args.unreachable <= args.sites:
        raise CliError("--unreachable must be between 0 and --sites")
    try:
        start = pd.Timestamp(args.start)
    except ValueError as exc:
        raise CliError(f"--start: {exc}") from None
    config = FleetConfig(
        backend=args.backend,
        workers=args.workers,
        chunk_size=args.chunk_size,
        scheduler_address=args.scheduler,
        schedule_slots=args.hours * 4,
        cycle_timeout_s=args.timeout,
    )
    frame = fleet_frame(start, args.hours * 4)
    homes = simulated_homes(args.sites, args.seed)
    boxes = [TwinBox(h, frame, reachable=k >= args.unreachable) for k, h in enumerate(homes)]
    with FleetRunner(config) as runner:
        cycle = run_simulated_cycle(runner, boxes, frame)
    print(format_cycle(cycle, config))
    return 0


def format_cycle(cycle: SimulatedCycle, config: FleetConfig) -> str:
    """Per-status counts, throughput, per-site time and the first reasons of failures."""
    report = cycle.report
    median, p99 = report.cycle_ms_quantiles()
    lines = [
        f"fleet cycle: {len(report.sites)} sites on {config.backend} "
        f"({config.workers} workers, {config.chunk_size} sites per task)",
        f"{'status':<16}{'sites':>7}",
    ]
    counts = report.counts()
    lines += [f"{s.value:<16}{counts.get(s.value, 0):>7}" for s in SiteStatus]
    ok = [r for r in report.sites if r.status == SiteStatus.OK and r.cost_eur is not None]
    lines += [
        f"wall time       {report.wall_s:7.2f} s  (box I/O {cycle.box_io_s:.2f} s)",
        f"throughput      {report.cycles_per_s:7.1f} site cycles/s",
        f"per-site time   median {median:.1f} ms, p99 {p99:.1f} ms",
        f"planned cost    {sum(r.cost_eur or 0.0 for r in ok):7.2f} EUR over {len(ok)} homes",
    ]
    failed = [r for r in report.sites if r.status != SiteStatus.OK]
    for r in failed[:5]:
        lines.append(f"  {r.site_id}: {r.status.value}: {r.error}")
    if len(failed) > 5:
        lines.append(f"  ... and {len(failed) - 5} more")
    return "\n".join(lines)
