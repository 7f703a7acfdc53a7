"""Operator commands: staff accounts and factory registration of box starter codes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.accounts_store import AccountStore
from api.security import password_hasher
from api.settings import get_settings
from hbopt.cli import main as hbopt_main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "api.sqlite3"
    monkeypatch.setenv("HBOPT_DATABASE_PATH", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_api_account_creates_a_confirmed_staff_account(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HBOPT_NEW_PASSWORD", "trader password 1")
    assert hbopt_main(["api-account", "--email", "t@example.org", "--role", "trader"]) == 0
    user_id = capsys.readouterr().out.strip()
    user = AccountStore(database).get_user(user_id)
    assert user is not None
    assert (user.role, user.confirmed_at is not None) == ("trader", True)
    assert password_hasher().verify("trader password 1", user.password_hash)
    assert hbopt_main(["api-account", "--email", "t@example.org", "--role", "trader"]) == 2
    assert "registered already" in capsys.readouterr().err


def test_api_account_refuses_a_short_password(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HBOPT_NEW_PASSWORD", "short")
    assert hbopt_main(["api-account", "--email", "t@example.org", "--role", "analyst"]) == 2
    assert "HBOPT_NEW_PASSWORD" in capsys.readouterr().err


def test_api_box_prints_a_starter_code_stored_only_hashed(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hbopt_main(["api-box", "--serial", "HB-F-0001"]) == 0
    code = capsys.readouterr().out.strip()
    assert len(code) == 10
    stored = AccountStore(database).unused_starter_code_hash("HB-F-0001")
    assert stored is not None
    assert code not in stored
    assert password_hasher().verify(code, stored)
    assert hbopt_main(["api-box", "--serial", "HB-F-0001"]) == 2
    assert hbopt_main(["api-box", "--serial", "bad serial!"]) == 2


def test_db_upgrade_adopts_a_file_of_the_old_code(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.api.legacy_accounts_sqlite import AccountStore as OldStore

    old = OldStore(database)
    old.register_starter_code("HB-OLD-9", "hash", datetime(2025, 1, 1, tzinfo=UTC))
    old.close()
    assert hbopt_main(["db", "current"]) == 0
    assert capsys.readouterr().out.split() == ["database:", "None", "code:", "0002"]
    assert hbopt_main(["db", "upgrade"]) == 0
    assert "database at revision 0002 (was None)" in capsys.readouterr().out
    assert hbopt_main(["db", "current"]) == 0
    assert capsys.readouterr().out.split()[:2] == ["database:", "0002"]
    assert AccountStore(database).unused_starter_code_hash("HB-OLD-9") == "hash"


def test_db_upgrade_moves_the_plans_out_of_the_telemetry_file(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.store import Setpoint
    from scheduler.plan_store import SqlPlanStore
    from tests.scheduler.legacy_plans_sqlite import write_legacy
    from tests.scheduler.test_plan_store import NOW, make_plan

    telemetry = database.parent / "telemetry.sqlite3"
    monkeypatch.setenv("HBOPT_TELEMETRY_PATH", str(telemetry))
    get_settings.cache_clear()
    plan = make_plan("site-1", 1, 4.5)
    write_legacy(telemetry, [plan], [("site-1", Setpoint("battery", "power_kw", NOW, 2.0))], [])
    assert hbopt_main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"moved 1 plans and 1 setpoints from {telemetry}" in out
    assert hbopt_main(["db", "upgrade"]) == 0
    assert "moved" not in capsys.readouterr().out  # once
    stored = SqlPlanStore.open(f"sqlite:///{database}")
    got = stored.latest_plan("site-1")
    assert got is not None and got.summary.objective_eur == 4.5
    assert stored.setpoints("site-1", NOW, NOW + (NOW - NOW.replace(hour=11)))["sent"].tolist() == [
        2.0
    ]
    stored.close()
