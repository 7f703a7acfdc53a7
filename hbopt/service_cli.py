"""``hbopt serve`` and ``hbopt control``: the command line of :mod:`hbopt.service`.

Registering the commands imports nothing heavy; the service module (FastAPI, pandas, the
solver pool) is imported when one of them runs.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the service: HTTP API and the control loop of every paired site"
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address [127.0.0.1]")
    serve.add_argument("--port", type=int, default=8000, help="TCP port [8000]")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--no-api", action="store_true", help="run only the control loop (same as `control`)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="API worker processes [1]; N > 1 needs HBOPT_RATE_LIMIT_STORAGE=redis://... "
        "(the control loop still runs once, in the parent process)",
    )
    serve.add_argument(
        "--no-control", action="store_true", help="run only the API (a control process elsewhere)"
    )
    serve.set_defaults(func=_serve)
    control = subparsers.add_parser(
        "control", help="run only the control loop, sharing the database with an API process"
    )
    control.add_argument("--log-level", default="info")
    control.set_defaults(func=_control)


def _serve(args: argparse.Namespace) -> int:
    from hbopt import service

    return service.run_serve(args)


def _control(args: argparse.Namespace) -> int:
    from hbopt import service

    return service.run_control(args)
