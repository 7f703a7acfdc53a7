"""A writer killed mid-stream (SIGKILL) loses nothing it acknowledged and leaves no corruption."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from adapters.store import StoreSettings, make_store

BATCH = 240
WRITER = f"""
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from adapters.store import StoreSettings, make_store
from adapters.store.telemetry import Sample

now = datetime(2030, 1, 1, tzinfo=UTC)
settings = StoreSettings(data_dir=Path(sys.argv[1]), raw_retention=timedelta(days=3650))
store = make_store(settings, clock=lambda: now)
start = datetime(2024, 1, 1, tzinfo=UTC)
for batch in range(100_000):
    samples = [
        Sample("s", "pv", start + timedelta(minutes=batch * {BATCH} + i), {{"power_kw": batch}})
        for i in range({BATCH})
    ]
    result = store.write(samples)
    assert result.accepted == {BATCH}
    print(batch, flush=True)  # the acknowledgement the sender relies on
"""


def test_killed_writer_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) == 40:
            break
    proc.send_signal(signal.SIGKILL)  # mid-stream: the writer is inside its next transaction
    proc.wait(timeout=10)
    acknowledged += [int(line) for line in proc.stdout.read().split()]
    assert proc.returncode == -signal.SIGKILL

    settings = StoreSettings(data_dir=tmp_path)
    with sqlite3.connect(settings.sqlite_path) as conn:
        # Read the WAL as the crashed writer left it, before any reopen checkpoints it.
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = dict(
            conn.execute("SELECT CAST(power_kw AS INTEGER), count(*) FROM raw GROUP BY 1")
        )
    for batch in acknowledged:
        assert counts.get(batch) == BATCH, f"acknowledged batch {batch} lost"
    # A batch is one transaction: it is either complete or absent, never half-written.
    assert set(counts.values()) == {BATCH}
    assert max(counts) <= max(acknowledged) + 1

    store = make_store(settings)  # the store reopens the crashed file and keeps working
    store.close()
