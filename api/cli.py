"""``hbopt serve`` (the API under uvicorn) and the operator commands that go with it.

``hbopt serve [--host 127.0.0.1] [--port 8000]``
    Run the API and the web dashboard (``/ui/``, its URL is printed). Settings come from
    ``HBOPT_*`` environment variables.
``hbopt api-account --email E --role trader``
    Create a confirmed staff account (trader, analyst, factory_service); prints its ID. The
    password is read from ``HBOPT_NEW_PASSWORD`` so it never lands in the shell history.
``hbopt api-box --serial S``
    Register a box at the factory: generates its starter code, stores the hash, prints the
    code to go on the box's label.
"""

from __future__ import annotations

import argparse
import os
import secrets
from datetime import UTC, datetime
from typing import Any

import uvicorn

from api.accounts_sqlite import AccountStore, DuplicateError
from api.connections import uvicorn_config
from api.logging_config import service_log_config
from api.main import create_app
from api.routers.dashboard import DASHBOARD_PATH
from api.schemas import BoxPairRequest, RegisterRequest
from api.security import password_hasher
from api.settings import get_settings
from core.errors import CliError


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address [127.0.0.1]")
    serve.add_argument("--port", type=int, default=8000, help="TCP port [8000]")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=run_serve)

    account = subparsers.add_parser("api-account", help="create a staff account for the API")
    account.add_argument("--email", required=True)
    account.add_argument(
        "--role", required=True, choices=("trader", "analyst", "factory_service", "customer")
    )
    account.set_defaults(func=run_account)

    box = subparsers.add_parser("api-box", help="register a box serial; prints its starter code")
    box.add_argument("--serial", required=True)
    box.set_defaults(func=run_box)


def run_serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise CliError(f"--port: {args.port} is not a TCP port")
    host = f"[{args.host}]" if ":" in args.host else args.host
    settings = get_settings()
    app = create_app(settings)  # refuses a weak signing key before anything is bound
    print(f"hbopt: dashboard at http://{host}:{args.port}{DASHBOARD_PATH}", flush=True)
    config = uvicorn_config(
        app,
        settings,
        args.host,
        args.port,
        args.log_level,
        log_config=service_log_config(args.log_level),
    )
    uvicorn.Server(config).run()
    return 0


def _accounts() -> AccountStore:
    return AccountStore(get_settings().database_path)


def run_account(args: argparse.Namespace) -> int:
    password = os.environ.get("HBOPT_NEW_PASSWORD", "")
    try:
        RegisterRequest(email=args.email, password=password)
    except ValueError as exc:
        raise CliError(f"--email or HBOPT_NEW_PASSWORD invalid: {exc}") from None
    accounts = _accounts()
    try:
        user = accounts.create_user(
            args.email,
            password_hasher().hash(password),
            args.role,
            datetime.now(UTC),
            confirmed=True,
        )
    except DuplicateError as exc:
        raise CliError(str(exc)) from None
    finally:
        accounts.close()
    print(user.id)
    return 0


def run_box(args: argparse.Namespace) -> int:
    # 10 characters from an alphabet without look-alikes, ~50 bits, printed on the label.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code = "".join(secrets.choice(alphabet) for _ in range(10))
    try:
        BoxPairRequest(serial=args.serial, starter_code=code)
    except ValueError as exc:
        raise CliError(f"--serial invalid: {exc}") from None
    accounts = _accounts()
    try:
        accounts.register_starter_code(args.serial, password_hasher().hash(code), datetime.now(UTC))
    except DuplicateError as exc:
        raise CliError(str(exc)) from None
    finally:
        accounts.close()
    print(code)
    return 0
