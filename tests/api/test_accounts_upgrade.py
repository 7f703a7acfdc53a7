"""An account file made by the pre-Alembic code upgrades in place with nothing lost.

``tests/api/legacy_accounts_sqlite.py`` is that code, kept verbatim: it fills a file with every
kind of row, and the new store must read back exactly what the old one read.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api import accounts_store as new
from api.migrations import head_revision
from api.migrations.legacy_sqlite import MIGRATIONS, statements
from tests.api import legacy_accounts_sqlite as old

T0 = datetime(2025, 11, 2, 8, 15, 30, 250000, tzinfo=UTC)


@dataclasses.dataclass
class Ids:
    owner: str
    helper: str
    site: str
    box: str


def _fill_with_old_code(path: Path) -> Ids:
    store = old.AccountStore(path)
    owner = store.create_user("Owner@Example.org", "argon2-owner", "customer", T0, confirmed=True)
    helper = store.create_user("tech@example.org", "argon2-tech", "customer", T0)
    site = store.create_site(owner.id, "Haus am See", "Europe/Berlin", "north", T0)
    store.update_site(site.id, factory_service=True)
    store.add_grant(site.id, helper.id, T0 + timedelta(minutes=1))
    store.register_starter_code("HB-OLD-1", "argon2-code", T0)
    store.register_starter_code("HB-OLD-2", "argon2-code-2", T0)
    box = store.pair_box("HB-OLD-1", site.id, "sha256-token", T0 + timedelta(minutes=2))
    assert box is not None
    store.bump_token_epoch(owner.id)
    store.add_refresh_token("rt-1", owner.id, "fam-1", T0, T0 + timedelta(days=30))
    store.add_email_token("et-1", helper.id, "confirm", T0 + timedelta(hours=24))
    store.set_parameters(
        scope="site", key=site.id, parameters_json='{"battery_cycle_cost_eur_per_kwh": 0.04}',
        changes=[("battery_cycle_cost_eur_per_kwh", None, "0.04")], actor_id="trader", now=T0,
    )  # fmt: skip
    store.set_parameters(
        scope="group", key="north", parameters_json="{}", changes=[("x", "1", None)],
        actor_id="trader", now=T0,
    )  # fmt: skip
    store.assign_fleet_group(site.id, "south", "trader", T0 + timedelta(hours=1))
    store.add_ack(
        site_id=site.id, box_id=box.id, etag='"v1"', applied_at=T0,
        setpoints={"battery-power_kw": -2.5}, now=T0 + timedelta(seconds=3),
    )  # fmt: skip
    store.set_device_preferences(
        old.DevicePreferences(site.id, "wallbox", "garage", '{"mode": "smart"}', T0, owner.id)
    )
    store.set_equipment(old.EquipmentDoc(site.id, '{"pv": {"kwp": 9.9}}', T0, owner.id))
    store.set_tariff(old.TariffDoc(site.id, "uploaded", 'name = "mine"', T0, owner.id))
    store.set_box_link("HB-OLD-1", "192.0.2.10", 1502, 3, T0)
    store.set_optimization(site.id, False, owner.id, T0)
    store.set_site_status(site.id, '{"state": "fallback"}', T0)
    store.log_requests(
        [old.RequestLogEntry(T0, "198.51.100.4", "POST", "/v1/auth/token", 200, owner.id, 41.5)]
    )
    store.close()
    return Ids(owner.id, helper.id, site.id, box.id)


def _plain(value: Any) -> Any:
    """Dataclasses of either module as dicts, so old and new reads compare."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _everything(store: Any, ids: Ids) -> dict[str, Any]:
    """What the store's public reads return about the filled file."""
    reads = {
        "owner": store.get_user(ids.owner),
        "by_email": store.get_user_by_email("owner@example.org"),
        "helper": store.get_user(ids.helper),
        "sites_owned": store.sites_owned(ids.owner),
        "sites_granted": store.sites_granted(ids.helper),
        "factory": store.sites_in_factory_service(),
        "grants": store.grants_of_site(ids.site),
        "boxes": store.boxes_of_site(ids.site),
        "box_by_token": store.box_by_token("sha256-token"),
        "unused_code": store.unused_starter_code_hash("HB-OLD-2"),
        "used_code": store.unused_starter_code_hash("HB-OLD-1"),
        "refresh_user": store.user_of_refresh_token("rt-1"),
        "site_parameters": store.get_site_parameters(ids.site),
        "group_parameters": store.get_group_parameters("north"),
        "audit": store.audit_trail(),
        "fleet_groups": store.fleet_groups(),
        "acks": store.acks_of_site(ids.site),
        "preferences": store.device_preferences(ids.site),
        "equipment": store.get_equipment(ids.site),
        "tariff": store.get_tariff(ids.site),
        "box_link": store.box_link("HB-OLD-1"),
        "optimization": store.optimization_enabled(ids.site),
        "status": store.site_status(ids.site),
        "changes": store.changes_since(0),
        "request_log": store.request_log(),
        "personal_owner": store.personal_data(ids.owner),
        "personal_helper": store.personal_data(ids.helper),
    }
    return {name: _plain(value) for name, value in reads.items()}


def _row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] not in ("sqlite_sequence", "alembic_version")
        ]
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def _schema(path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {(name, sql) for name, sql in rows if name != "alembic_version"}


def test_a_schema_7_file_upgrades_in_place_with_every_row_readable(tmp_path: Path) -> None:
    path = tmp_path / "api.sqlite3"
    ids = _fill_with_old_code(path)
    reader = old.AccountStore(path)
    before, counts = _everything(reader, ids), _row_counts(path)
    reader.close()
    assert all(counts[t] > 0 for t in counts), counts  # every table holds something

    store = new.AccountStore(path)
    assert store.schema_revision() == head_revision()
    after = _row_counts(path)
    assert {t: n for t, n in after.items() if t in counts} == counts
    assert all(after[t] == 0 for t in set(after) - set(counts))  # the later revisions' tables
    assert _everything(store, ids) == before
    # still writable, and the change log goes on from where it was
    last = store.last_change_id()
    store.set_box_link("HB-OLD-1", "192.0.2.11", 502, 1, T0)
    assert store.changes_since(last) == [(last + 1, None, "box_links")]
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_fresh_file_has_the_schema_an_upgraded_one_has(tmp_path: Path) -> None:
    upgraded, fresh = tmp_path / "old.sqlite3", tmp_path / "new.sqlite3"
    old.AccountStore(upgraded).close()
    new.AccountStore(upgraded).close()
    new.AccountStore(fresh).close()
    assert _schema(fresh) == _schema(upgraded)
    assert len(_schema(fresh)) > 40  # tables, indexes and the change-log triggers


def test_a_schema_3_file_gets_scripts_4_to_7_then_the_baseline(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    stamp = T0.isoformat()
    with sqlite3.connect(path, isolation_level=None) as conn:
        for script in MIGRATIONS[:3]:
            for statement in statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version=3")
        conn.execute(
            "INSERT INTO users VALUES ('usr_1', 'a@example.org', 'h', 'customer', ?, ?)",
            (stamp, stamp),
        )
        conn.execute(
            "INSERT INTO sites VALUES ('site_1', 'usr_1', 'Home', 'Europe/Berlin', 'g', 0, ?)",
            (stamp,),
        )
        conn.execute("INSERT INTO site_equipment VALUES ('site_1', '{}', ?, 'usr_1')", (stamp,))
    store = new.AccountStore(path)
    user = store.get_user("usr_1")
    assert user is not None and (user.token_epoch, user.confirmed_at) == (0, T0)
    equipment = store.get_equipment("site_1")
    assert equipment is not None and equipment.updated_at == T0
    store.set_optimization("site_1", False, "usr_1", T0)  # table of script 4, trigger too
    assert store.changes_since(0) == [(1, "site_1", "site_control")]
    assert store.schema_revision() == head_revision()
    store.close()
