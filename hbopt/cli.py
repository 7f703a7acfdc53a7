"""The ``hbopt`` command line.

Each package contributes its sub-commands through a ``register(subparsers)`` function in the
module named in :data:`COMMANDS`; a sub-command sets ``func`` on its parser, which gets the
parsed arguments and returns an exit code.

Start-up stays fast because only the module of the command being run is imported: ``hbopt
--help`` lists the commands from :data:`COMMANDS` alone, and the command modules import
pandas, the solver, FastAPI or Dask inside their ``run`` functions.

Errors the user can fix (a bad flag value, a missing directory) are raised as
:class:`~core.errors.CliError` (exit code 2) or ``ValueError``; runtime failures (a server
that does not answer, a port in use) as ``CliError(..., exit_code=1)``. Each is printed as one
``hbopt: ...`` line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from core.errors import CliError


class Command(NamedTuple):
    """A sub-command: its name, the module that registers it, and its one-line help."""

    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command(
        "plan",
        "scheduler.plan_cli",
        "solve the bundled one-day scenario and print the schedule and cost",
    ),
    Command(
        "backtest",
        "scheduler.backtest_cli",
        "run the controller over historical days against the simulated box",
    ),
    Command(
        "demo",
        "hbopt.demo_cli",
        "run one simulated day of the whole service (box, store, scheduler) and plot it",
    ),
    Command(
        "fleet",
        "scheduler.fleet_cli",
        "run one control cycle for N simulated homes and print a per-status summary",
    ),
    Command(
        "prices", "pricing.cli", "print one day's spot, retail import/export price and CO2 per slot"
    ),
    Command("store", "hbopt.store_cli", "maintain, export or delete stored telemetry"),
    Command(
        "box-sim",
        "simulation.cli",
        "run a simulated Heartbeat box (Modbus TCP server with a physical twin)",
    ),
    Command(
        "serve",
        "hbopt.service_cli",
        "run the service: HTTP API and the control loop of every paired site",
    ),
    Command(
        "control",
        "hbopt.service_cli",
        "run only the control loop, sharing the database with an API process",
    ),
    Command("api-account", "api.cli", "create a staff account for the API"),
    Command("api-box", "api.cli", "register a box serial; prints its starter code"),
    Command("db", "api.db_cli", "upgrade or inspect the service database's schema"),
)


def build_parser(load: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the commands in ``load`` (default: all) get their full arguments.

    The others are listed with their help line only, so that listing them imports nothing.
    """
    names = {c.name for c in COMMANDS} if load is None else set(load)
    parser = argparse.ArgumentParser(
        prog="hbopt", description="Heartbeat Optimizer: plan and run a home's energy devices."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = dict.fromkeys(c.module for c in COMMANDS if c.name in names)
    for module_name in modules:
        importlib.import_module(module_name).register(sub)
    for command in COMMANDS:
        if command.name not in sub.choices:
            sub.add_parser(command.name, help=command.help)
    return parser


def command_name(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (its first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(load=[command_name(argv) or ""]).parse_args(argv)
    # every command plans sites, and numpy's BLAS threads would only compete with them;
    # imported here, after the arguments: --help loads no numpy (core.blas loads it)
    importlib.import_module("core.blas").one_blas_thread()
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"hbopt: {exc}", file=sys.stderr)
        return exc.exit_code
    except (ValueError, FileNotFoundError) as exc:
        print(f"hbopt: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``hbopt prices | head``): stop quietly, as a Unix filter does.
        # Later flushes of stdout would fail again, so point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
