"""The ``hbopt`` command line.

Each package contributes its sub-commands through a ``register(subparsers)`` function listed in
:data:`COMMAND_MODULES`; a sub-command sets ``func`` on its parser, which gets the parsed
arguments and returns an exit code. User errors (bad dates, missing files, invalid
configuration) are raised as :class:`CliError` or ``ValueError`` and printed as one line,
never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from core.errors import CliError

COMMAND_MODULES: tuple[str, ...] = (
    "scheduler.plan_cli",
    "scheduler.backtest",
    "hbopt.demo",
    "scheduler.fleet_cli",
    "pricing.cli",
    "adapters.store.cli",
    "simulation.cli",
    "api.cli",
    "hbopt.service",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hbopt", description="Heartbeat Optimizer: plan and run a home's energy devices."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, ValueError, FileNotFoundError) as exc:
        print(f"hbopt: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
