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
from typing import Any

from api.accounts_sqlite import AccountStore, DuplicateError
from api.control_schemas import ModbusAddress
from api.schemas import BoxPairRequest, RegisterRequest
from api.security import password_hasher
from api.settings import get_settings
from core.errors import CliError


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
    if args.modbus is not None:
        accounts = _accounts()
        try:
            accounts.set_box_link(args.serial, *ModbusAddress.parse(args.modbus), datetime.now(UTC))
        finally:
            accounts.close()
    print(code)
    return 0


def _register_serial(serial: str) -> str:
    # 10 characters from an alphabet without look-alikes, ~50 bits, printed on the label.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    code = "".join(secrets.choice(alphabet) for _ in range(10))
    try:
        BoxPairRequest(serial=serial, starter_code=code)
    except ValueError as exc:
        raise CliError(f"--serial invalid: {exc}") from None
    accounts = _accounts()
    try:
        accounts.register_starter_code(serial, password_hasher().hash(code), datetime.now(UTC))
    except DuplicateError as exc:
        raise CliError(str(exc)) from None
    finally:
        accounts.close()
    return code
