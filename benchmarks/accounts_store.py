"""Account store benchmark: per-call time of typical reads and a write, printed as a table.

Compares the pre-SQLAlchemy sqlite3 store (kept as ``tests/api/legacy_accounts_sqlite.py``)
with ``api.accounts_store.AccountStore`` on a temporary SQLite file, and optionally on any other
database URL (an empty PostgreSQL database, say). CPU time per call is given besides wall time
because the machine may be shared.

    python -m benchmarks.accounts_store
    python -m benchmarks.accounts_store --url postgresql+psycopg://u@127.0.0.1/empty
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.accounts_store import AccountStore
from tests.api import legacy_accounts_sqlite

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _operations(store: Any) -> dict[str, Callable[[], object]]:
    user = store.create_user(f"bench-{time.time_ns()}@example.org", "h", "customer", NOW)
    site = store.create_site(user.id, "Home", "Europe/Berlin", "default", NOW)
    store.register_starter_code(f"HB-{time.time_ns()}", "c", NOW)
    return {
        "get_user": lambda: store.get_user(user.id),
        "boxes_of_site": lambda: store.boxes_of_site(site.id),
        "set_optimization (write)": lambda: store.set_optimization(site.id, True, user.id, NOW),
    }


def per_call(
    call: Callable[[], object], calls: int, rounds: int, unit_s: float
) -> tuple[float, float, float]:
    """Median and p90 over ``rounds`` of the wall time per call, and the CPU time per call
    over all rounds, in units of ``unit_s`` [s] (1e-6: microseconds)."""
    walls, cpu0 = [], time.process_time()
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        walls.append((time.perf_counter() - start) / calls / unit_s)
    cpu = (time.process_time() - cpu0) / (calls * rounds) / unit_s
    return statistics.median(walls), statistics.quantiles(walls, n=10)[-1], cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="also time the store on this database URL")
    parser.add_argument("--calls", type=int, default=500, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hbopt-accounts-bench-"))
    stores: dict[str, Any] = {
        "sqlite3 (old)": legacy_accounts_sqlite.AccountStore(folder / "old.sqlite3"),
        "SQLAlchemy, SQLite": AccountStore(folder / "new.sqlite3"),
    }
    if args.url:
        stores["SQLAlchemy, " + args.url.split(":")[0]] = AccountStore(args.url)
    print(f"{'store':24} {'operation':26} {'median us':>10} {'p90 us':>8} {'CPU us':>8}")
    for name, store in stores.items():
        for operation, call in _operations(store).items():
            median, p90, cpu = per_call(call, args.calls, args.rounds, 1e-6)
            print(f"{name:24} {operation:26} {median:10.0f} {p90:8.0f} {cpu:8.0f}")
        store.close()


if __name__ == "__main__":
    main()
