"""How releases before the plan store wrote plans and setpoints: into the telemetry SQLite file.

The SQL below is that of ``SqliteStore.save_plan / save_setpoints / save_applied`` as they
were, on a file whose schema the telemetry store's own migrations create (the ``plans`` and
``setpoints`` tables are still part of them), so the upgrade test reads a file as an existing
deployment has it.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from adapters.store import Plan, Setpoint, StoreSettings
from adapters.store.sqlite import SqliteStore, to_ms
from adapters.store.telemetry import utc_now


def write_legacy(path: Path, plans: Sequence[Plan], sent: Sequence[tuple[str, Setpoint]],
                 applied: Sequence[tuple[str, Setpoint]]) -> None:  # fmt: skip
    """Create the telemetry file at ``path`` (if new) and store plans and setpoints in it."""
    SqliteStore(StoreSettings(data_dir=path.parent, sqlite_file=path.name), utc_now).close()
    with sqlite3.connect(path) as conn:
        for plan in plans:
            buffer = io.BytesIO()
            plan.slots.to_parquet(buffer)
            conn.execute(
                "INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, ?)",
                (
                    plan.site_id,
                    to_ms(plan.created_at),
                    plan.summary.model_dump_json(),
                    json.dumps(dict(plan.inputs_versions), sort_keys=True),
                    buffer.getvalue(),
                ),
            )
        for column, points in (("sent", sent), ("applied", applied)):
            conn.executemany(
                f"INSERT INTO setpoints (site, device, quantity, ts, {column}) "
                f"VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, device, quantity, ts) "
                f"DO UPDATE SET {column} = excluded.{column}",
                [(s, p.device, p.quantity, to_ms(p.ts), float(p.value)) for s, p in points],
            )
