"""``hbopt fleet``: one control cycle for N simulated homes, on a process pool or Dask."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core import cli_args
from core.errors import CliError

if TYPE_CHECKING:
    from scheduler.fleet import FleetConfig, FleetRunner
    from scheduler.fleet_sim import SimulatedCycle

DEFAULT_START = "2024-06-12T22:00Z"  # as scheduler.fleet_sim.DEFAULT_START (a test checks)
SITE_TZ = "Europe/Berlin"
#: How long to wait for a Dask scheduler named by --scheduler [s] (Dask's own default is 30 s).
DASK_CONNECT_TIMEOUT_S = 5.0


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
    p.add_argument(
        "--scheduler",
        help="Dask scheduler address, tcp://HOST:PORT (default: a LocalCluster); only with "
        "--backend dask",
    )
    p.add_argument(
        "--start",
        default=DEFAULT_START,
        help=f"cycle start; without an offset it is local time in {SITE_TZ} (default %(default)s)",
    )
    p.add_argument("--hours", type=int, default=24, help="horizon [h] (default 24)")
    p.add_argument("--seed", type=int, default=0, help="seed of the homes' variation")
    p.add_argument("--timeout", type=float, help="cycle budget [s]; later sites: timeout")
    p.add_argument(
        "--unreachable", type=int, default=0, help="make this many boxes not answer (a drill)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    """Every flag, named as typed, before anything starts."""
    for flag, value in (("--sites", args.sites), ("--workers", args.workers)):
        if value < 1:
            raise CliError(f"{flag}: must be >= 1, got {value}")
    if args.chunk_size < 1:
        raise CliError(f"--chunk-size: must be >= 1, got {args.chunk_size}")
    if not 0 < args.hours <= 48:
        raise CliError(f"--hours: must be in 1..48, got {args.hours}")
    if not 0 <= args.unreachable <= args.sites:
        raise CliError("--unreachable: must be between 0 and --sites")
    if args.timeout is not None and not args.timeout > 0:
        raise CliError(f"--timeout: must be > 0 seconds, got {args.timeout}")
    if args.scheduler is not None:
        if args.backend != "dask":
            raise CliError("--scheduler: only with --backend dask")
        parts = urlsplit(args.scheduler)
        if parts.scheme not in ("tcp", "tls") or not parts.hostname or parts.port is None:
            raise CliError(
                f"--scheduler: {args.scheduler!r} is not a Dask address; use tcp://HOST:PORT "
                "(a scheduler started with `dask scheduler` listens on 8786)"
            )


def run(args: argparse.Namespace) -> int:
    check_args(args)
    start = cli_args.start_time("--start", args.start, SITE_TZ)
    from tqdm import tqdm

    from scheduler.fleet import FleetConfig, FleetRunner
    from scheduler.fleet_sim import TwinBox, fleet_frame, run_simulated_cycle, simulated_homes

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
    with (
        _connected(FleetRunner(config)) as runner,
        tqdm(total=args.sites, desc="fleet cycle", unit="site", disable=args.quiet) as bar,
    ):
        cycle = run_simulated_cycle(runner, boxes, frame, bar.update)
    print(format_cycle(cycle, config))
    return 0


def _connected(runner: FleetRunner) -> FleetRunner:
    """The runner, opened; a Dask scheduler that does not answer is a one-line error."""
    address = runner.config.scheduler_address
    if address is None:
        runner.open()
        return runner
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": f"{DASK_CONNECT_TIMEOUT_S}s"}):
        try:
            runner.open()
        except (OSError, TimeoutError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CliError(
                f"--scheduler {address}: no Dask scheduler answers there ({reason}); start one "
                "with `dask scheduler`, or leave out --scheduler for a local cluster",
                exit_code=1,
            ) from None
    print(f"fleet: connected to the Dask scheduler at {address}", file=sys.stderr)
    return runner


def format_cycle(cycle: SimulatedCycle, config: FleetConfig) -> str:
    """Per-status counts, throughput, per-site time and the first reasons of failures."""
    from scheduler.fleet import SiteStatus

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
