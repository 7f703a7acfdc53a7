"""The operator commands of the API (``hbopt serve`` itself is :mod:`hbopt.service`).

``hbopt api-account --email E --role trader``
    Create a confirmed staff account (trader, analyst, factory_service); prints its ID. The
    password is read from ``HBOPT_NEW_PASSWORD`` so it never lands in the shell history.
``hbopt api-box --serial S [--modbus HOST:PORT[/UNIT]]``
    Register a box at the factory: generates its starter code, stores the hash, prints the
    code to go on the box's label. With ``--modbus`` (also for a registered serial): record the
    address the service reaches the box at over Modbus TCP; without one the box pulls its
    schedule over ``/v1/gateway``.
"""

from __future__ import annotations

import argparse
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import cli_args
from core.errors import CliError

if TYPE_CHECKING:
    from api.accounts_store import AccountStore
    from api.settings import Settings

#: The documented default data folder; the only one the commands create when it is missing.
DEFAULT_DATA_DIR = Path("var")

# FastAPI, uvicorn and the argon2 hasher are imported in the command functions: the command
# line lists and parses its commands without them.


def register(subparsers: Any) -> None:
    account = subparsers.add_parser("api-account", help="create a staff account for the API")
    account.add_argument("--email", required=True)
    account.add_argument(
        "--role", required=True, choices=("trader", "analyst", "factory_service", "customer")
    )
    account.set_defaults(func=run_account)

    box = subparsers.add_parser("api-box", help="register a box serial; prints its starter code")
    box.add_argument("--serial", required=True)
    box.add_argument(
        "--modbus",
        metavar="HOST:PORT[/UNIT]",
        help="Modbus TCP address the service reaches the box at (default: the box pulls)",
    )
    box.set_defaults(func=run_box)


def check_data_dirs(settings: Settings) -> None:
    """The folders of the configured files exist, or are the default one (made on first use)."""
    files = [] if settings.database_url else [("HBOPT_DATABASE_PATH", settings.database_path)]
    if settings.telemetry_backend != "none":
        files.append(("HBOPT_TELEMETRY_PATH", settings.telemetry_path))
    for variable, path in files:
        folder = path.parent
        if not folder.is_dir() and folder != DEFAULT_DATA_DIR:
            raise CliError(
                f"{variable}: folder {folder} does not exist; create it first (only the default "
                f"folder {DEFAULT_DATA_DIR}/ is made when missing)"
            )


def _accounts() -> AccountStore:
    from api.accounts_store import AccountStore
    from api.settings import get_settings

    settings = get_settings()
    check_data_dirs(settings)
    return AccountStore(settings.accounts_url())


def run_account(args: argparse.Namespace) -> int:
    from api.accounts_store import DuplicateError
    from api.schemas import RegisterRequest
    from api.security import password_hasher

    password = os.environ.get("HBOPT_NEW_PASSWORD", "")
    try:
        RegisterRequest(email=args.email, password=password)
    except ValueError as exc:
        flags = {"email": "--email", "password": "HBOPT_NEW_PASSWORD"}
        raise CliError(cli_args.pydantic_one_line(exc, flags)) from None
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
    from api.control_schemas import ModbusAddress

    address = None
    if args.modbus is not None:
        try:
            address = ModbusAddress.parse(args.modbus)
        except ValueError as exc:
            raise CliError(f"--modbus: {exc}") from None
        accounts = _accounts()
        try:
            if accounts.starter_code_registered(args.serial):
                accounts.set_box_link(args.serial, *address, datetime.now(UTC))
                print(f"box {args.serial}: Modbus TCP at {args.modbus}")
                return 0
        finally:
            accounts.close()
    code = _register_serial(args.serial)
    if address is not None:
        accounts = _accounts()
        try:
            accounts.set_box_link(args.serial, *address, datetime.now(UTC))
        finally:
            accounts.close()
    print(code)
    return 0


def _register_serial(serial: str) -> str:
    from api.accounts_store import DuplicateError
    from api.schemas import BoxPairRequest
    from api.security import password_hasher

    # 10 characters from an alphabet without look-alikes, ~50 bits, printed on the label.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code = "".join(secrets.choice(alphabet) for _ in range(10))
    try:
        BoxPairRequest(serial=serial, starter_code=code)
    except ValueError as exc:
        raise CliError(cli_args.pydantic_one_line(exc, {"serial": "--serial"})) from None
    accounts = _accounts()
    try:
        accounts.register_starter_code(serial, password_hasher().hash(code), datetime.now(UTC))
    except DuplicateError as exc:
        raise CliError(str(exc)) from None
    finally:
        accounts.close()
    return code
