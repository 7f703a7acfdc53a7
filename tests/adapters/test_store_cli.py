"""``hbopt store`` on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from adapters.store import Setpoint, StoreSettings, make_store
from adapters.store.telemetry import Sample
from api.accounts_store import AccountStore
from hbopt.cli import main
from scheduler.plan_store import SqlPlanStore
from tests.scheduler.test_plan_store import NOW, make_plan


def test_export_then_delete_a_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "api.sqlite3"
    monkeypatch.setenv("HBOPT_DATABASE_PATH", str(database))
    AccountStore(database).close()  # the service database, migrated
    plans = SqlPlanStore.open(f"sqlite:///{database}")
    plans.save_plan(make_plan("s", 1, 2.5))
    plans.save_applied("s", [Setpoint("battery", "power_kw", NOW, 1.5)])
    store = make_store(StoreSettings(data_dir=tmp_path / "data", sqlite_file="telemetry.sqlite3"))
    start = datetime.now(UTC) - timedelta(hours=1)
    store.write(
        [Sample("s", "pv", start + timedelta(minutes=i), {"power_kw": 2.0}) for i in range(30)]
    )
    store.close()
    base = ["store", "--path", str(tmp_path / "data" / "telemetry.sqlite3")]
    assert main([*base, "maintain"]) == 0
    assert main([*base, "export", "s", str(tmp_path / "out"), "--format", "parquet"]) == 0
    assert pd.read_parquet(tmp_path / "out" / "raw.parquet")["power_kw"].sum() == 60.0
    assert len(pd.read_parquet(tmp_path / "out" / "plan_slots.parquet")) == 96
    assert pd.read_parquet(tmp_path / "out" / "setpoints.parquet")["applied"].tolist() == [1.5]
    assert main([*base, "delete", "s"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main([*base, "delete", "s", "--yes"]) == 0
    # the site is gone: exporting it is an error, and nothing is written
    assert main([*base, "export", "s", str(tmp_path / "after")]) == 2
    assert "no data of site 's'" in capsys.readouterr().err
    assert not (tmp_path / "after").exists()
    assert plans.latest_plan("s") is None
    plans.close()
