"""``hbopt box-sim``: run the Heartbeat box simulator (ESI v1 over Modbus TCP) in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import pandas as pd

from adapters.clock import ScaledClock
from simulation.box import BoxConfig, HeartbeatBox
from simulation.box_sim import start_box_simulator
from simulation.twin import Twin


def register(subparsers: Any) -> None:
    """Add the ``box-sim`` sub-command."""
    p = subparsers.add_parser(
        "box-sim",
        help="run a simulated Heartbeat box (Modbus TCP server with a physical twin)",
        description="Serve the ESI v1 register map on HOST:PORT. The twin follows bundled real "
        "weather, BDEW or measured load and Norwegian EV sessions from --start on.",
    )
    p.add_argument("--port", type=int, required=True, help="TCP port (0 = pick a free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--speed", type=float, default=1.0, help="box clock speed-up (default 1)")
    p.add_argument("--start", default=None, help="box start time, UTC (default: now)")
    p.add_argument("--days", type=int, default=2, help="days of profiles (repeat after)")
    p.add_argument("--load", choices=("bdew", "uci"), default="bdew")
    p.add_argument("--site-id", default="sim-site")
    p.add_argument("--device-id", type=int, default=1)
    p.add_argument("--run-for", type=float, default=None, help="stop after so many real s")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the twin and serve until Ctrl-C (or ``--run-for`` seconds)."""
    if args.speed <= 0:
        raise ValueError(f"--speed: must be > 0, got {args.speed}")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: {args.port} not in 0..65535")
    start = pd.Timestamp.now(tz="UTC") if args.start is None else pd.Timestamp(args.start)
    if start.tzinfo is None:
        start = start.tz_localize("UTC")
    day0 = start.floor("D")
    twin = Twin.from_bundled_data(day0, days=args.days, load=args.load)
    clock = ScaledClock(start, args.speed)
    box = HeartbeatBox(twin, clock, BoxConfig(site_id=args.site_id))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(box, args))
    return 0


async def _serve(box: HeartbeatBox, args: argparse.Namespace) -> None:
    sim = await start_box_simulator(
        box, args.host, args.port, args.device_id, tick_interval_s=min(1.0, 1.0 / args.speed)
    )
    print(f"box-sim: ESI v1 on {sim.host}:{sim.port} (device id {sim.device_id}), "
          f"clock x{args.speed}", flush=True)  # fmt: skip
    try:
        if args.run_for is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(args.run_for)
    finally:
        await sim.stop()
