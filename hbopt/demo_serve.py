"""Serve the demo's own data through the API and dashboard (``hbopt demo --serve``).

The demo's scheduler writes telemetry to a SQLite store and plans to the account database (a
SQLite file) next to it, with one confirmed demo owner and one site (whose id the scheduler
uses); the API runs on both with its clock held at the end of the simulated day, so the
dashboard shows the day as if it were now.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import uvicorn

from api.accounts_store import AccountStore
from api.main import create_app
from api.security import password_hasher
from api.settings import Settings

DEMO_EMAIL = "demo@heartbeat.example"
SCHEDULER_DB = "scheduler.sqlite3"


@dataclass(frozen=True)
class DemoAccount:
    """Sign-in of the demo owner and the site the scheduler plans for."""

    email: str
    password: str
    site_id: str
    accounts_path: Path


def create_demo_account(data_dir: Path, now: datetime) -> DemoAccount:
    """A confirmed owner with a random password and one site, in ``data_dir``."""
    path = data_dir / "accounts.sqlite3"
    accounts = AccountStore(path)
    try:
        password = secrets.token_urlsafe(9)
        user = accounts.create_user(
            DEMO_EMAIL, password_hasher().hash(password), "customer", now, confirmed=True
        )
        site = accounts.create_site(user.id, "Demo home", "Europe/Berlin", "demo", now)
    finally:
        accounts.close()
    return DemoAccount(DEMO_EMAIL, password, site.id, path)


def serve_demo(
    account: DemoAccount, store_dir: Path, at: pd.Timestamp, host: str, port: int
) -> None:
    """Run the API and dashboard on the demo data until interrupted; the clock reads ``at``."""
    settings = Settings(
        mode="demo",
        database_path=account.accounts_path,
        telemetry_path=store_dir / SCHEDULER_DB,
        public_base_url=f"http://{host}:{port}",
    )
    frozen = at.to_pydatetime().astimezone(UTC)
    app = create_app(settings, clock=lambda: frozen)
    print(f"dashboard             http://{host}:{port}/ui/  (Ctrl-C to stop)")
    print(f"sign in               {account.email} / {account.password}")
    uvicorn.run(app, host=host, port=port, log_level="warning")
