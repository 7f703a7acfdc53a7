"""``hbopt box-sim``: run the Heartbeat box simulator (ESI v1 over Modbus TCP) in the foreground."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from typing import TYPE_CHECKING, Any

from core import cli_args
from core.errors import CliError

if TYPE_CHECKING:
    from simulation.box import HeartbeatBox


def register(subparsers: Any) -> None:
    """Add the ``box-sim`` sub-command."""
    p = subparsers.add_parser(
        "box-sim",
        help="run a simulated Heartbeat box (Modbus TCP server with a physical twin)",
        description="Serve the ESI v1 register map on HOST:PORT. The twin follows bundled real "
        "weather, BDEW or measured load and Norwegian EV sessions from --start on.",
    )
    p.add_argument("--port", type=int, required=True, help="TCP port (0 = pick a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
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
        raise CliError(f"--speed: must be > 0, got {args.speed}")
    if args.days < 1:
        raise CliError(f"--days: must be >= 1, got {args.days}")
    cli_args.tcp_port("--port", args.port)
    check_listen(args.host, args.port)
    import pandas as pd

    now = pd.Timestamp.now(tz="UTC")
    start = now if args.start is None else cli_args.start_time("--start", args.start, "UTC")
    _say(f"building the physical twin from the bundled data ({args.days} days from {start:%F})")
    from adapters.clock import ScaledClock
    from simulation.box import BoxConfig, HeartbeatBox
    from simulation.twin import Twin

    twin = Twin.from_bundled_data(start.floor("D"), days=args.days, load=args.load)
    clock = ScaledClock(start, args.speed)
    box = HeartbeatBox(twin, clock, BoxConfig(site_id=args.site_id))
    _say(f"starting the Modbus TCP server on {args.host}:{args.port}")
    import asyncio
    import contextlib

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(box, args))
    return 0


def _say(text: str) -> None:
    print(f"box-sim: {text} ...", file=sys.stderr, flush=True)


def check_listen(host: str, port: int) -> None:
    """Fail in a second, not after building the twin, when ``host:port`` cannot be served."""
    cli_args.resolve_host("--host", host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise _listen_error(host, port, exc) from None


def _listen_error(host: str, port: int, exc: OSError) -> CliError:
    if exc.errno == errno.EADDRINUSE:
        return CliError(
            f"--port {port}: already in use on {host}; pick another port, or --port 0 for a "
            "free one (printed at start)",
            exit_code=1,
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return CliError(f"--port {port}: needs root (ports below 1024); use 1024..65535")
    return CliError(
        f"--host {host}: cannot listen there ({exc.strerror}); give an address of this machine "
        "such as 127.0.0.1 or 0.0.0.0"
    )


async def _serve(box: HeartbeatBox, args: argparse.Namespace) -> None:
    import asyncio

    from simulation.box_sim import start_box_simulator

    try:
        sim = await start_box_simulator(
            box, args.host, args.port, args.device_id, tick_interval_s=min(1.0, 1.0 / args.speed)
        )
    except (OSError, RuntimeError) as exc:
        # the port was taken between the check and now
        raise CliError(
            f"--host {args.host} --port {args.port}: cannot listen ({exc})", exit_code=1
        ) from None
    print(f"box-sim: ESI v1 on {sim.host}:{sim.port} (device id {sim.device_id}), "
          f"clock x{args.speed}", flush=True)  # fmt: skip
    try:
        if args.run_for is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(args.run_for)
    finally:
        await sim.stop()
