"""``hbopt demo``: the command line of :mod:`hbopt.demo` (checks every flag before it starts)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core import cli_args
from core.errors import CliError
from scheduler.plan_cli import CHARGING_MODES, SITE_TZ

DEFAULT_START = "2024-06-12T10:00Z"  # noon in Berlin; a measured, partly sunny June day


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = subparsers.add_parser(
        "demo",
        help="run one simulated day of the whole service (box, store, scheduler) and plot it",
        description="Start the simulated box on 127.0.0.1, a SQLite store and the scheduler, "
        "run 24 h closed-loop in accelerated time, compare with no control, write a PNG.",
    )
    p.add_argument(
        "--start",
        default=DEFAULT_START,
        help=f"start; without an offset it is local time in {SITE_TZ} (default %(default)s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="directory for the PNG (made if its parent exists; default: a temp dir)",
    )
    p.add_argument("--mode", default="smart", choices=CHARGING_MODES)
    p.add_argument("--hours", type=int, default=24, help="simulated hours (default 24)")
    p.add_argument(
        "--serve",
        action="store_true",
        help="afterwards serve the API and dashboard on the demo's data (prints URL and sign-in)",
    )
    p.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.hours <= 48:
        raise CliError(f"--hours: must be in 1..48, got {args.hours}")
    cli_args.tcp_port("--port", args.port)
    start = cli_args.start_time("--start", args.start, SITE_TZ)
    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="hbopt-demo-"))
    else:
        out = cli_args.output_dir("--out", args.out)
    from hbopt import demo

    return demo.run(args, start, out)
