"""The account store on SQLite and PostgreSQL (``db_url``): every kind of row round-trips, the
change log the control loop polls sees what it must, and deletion leaves no row behind."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from api.accounts_store import (
    AccountStore,
    DevicePreferences,
    DuplicateError,
    EquipmentDoc,
    RequestLogEntry,
    TariffDoc,
)
from api.migrations import SchemaTooNewError
from tests.pg_server import database_text

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[AccountStore]:
    accounts = AccountStore(db_url)
    yield accounts
    accounts.close()


def _owner_with_site(store: AccountStore, email: str = "ann@example.org") -> tuple[str, str]:
    user = store.create_user(email, "argon2-hash", "customer", T0, confirmed=True)
    site = store.create_site(user.id, "Home", "Europe/Berlin", "default", T0)
    return user.id, site.id


def test_emails_are_unique_and_found_ignoring_case(store: AccountStore) -> None:
    user = store.create_user("Ann@Example.org", "h", "customer", T0)
    with pytest.raises(DuplicateError):
        store.create_user("ann@example.ORG", "h", "customer", T0)
    found = store.get_user_by_email("ANN@example.org")
    assert found is not None and found.id == user.id
    assert found.email == "Ann@Example.org"  # kept as typed
    assert store.get_user_by_email("bob@example.org") is None


def test_times_come_back_as_the_same_utc_instant(store: AccountStore) -> None:
    berlin = timezone(timedelta(hours=2))
    local = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=berlin)
    user = store.create_user("t@example.org", "h", "customer", local)
    read = store.get_user(user.id)
    assert read is not None
    assert read.created_at == local and read.created_at.tzinfo == UTC
    with pytest.raises(sa.exc.StatementError, match="naive"):
        store.create_user("n@example.org", "h", "customer", datetime(2026, 1, 1))


def test_email_token_is_single_use_and_expires(store: AccountStore) -> None:
    user_id, _ = _owner_with_site(store)
    store.add_email_token("t1", user_id, "reset", T0 + timedelta(hours=1))
    assert store.consume_email_token("t1", "confirm", T0) is None  # other purpose
    assert store.consume_email_token("t1", "reset", T0) == user_id
    assert store.consume_email_token("t1", "reset", T0) is None  # used
    store.add_email_token("t2", user_id, "reset", T0 + timedelta(hours=1))
    assert store.consume_email_token("t2", "reset", T0 + timedelta(hours=1)) is None  # expired


def test_refresh_reuse_revokes_the_family(store: AccountStore) -> None:
    user_id, _ = _owner_with_site(store)
    later = T0 + timedelta(days=30)
    store.add_refresh_token("r1", user_id, "fam", T0, later)
    assert store.rotate_refresh_token("r1", "r2", T0, later) == user_id
    assert store.rotate_refresh_token("r1", "r3", T0, later) is None  # replayed: family revoked
    assert store.rotate_refresh_token("r2", "r4", T0, later) is None
    assert store.rotate_refresh_token("r9", "r5", T0, later) is None
    store.add_refresh_token("x1", user_id, "fam2", T0, T0 + timedelta(minutes=1))
    assert store.rotate_refresh_token("x1", "x2", T0 + timedelta(minutes=1), later) is None


def test_pairing_uses_the_starter_code_once(store: AccountStore) -> None:
    _, site_id = _owner_with_site(store)
    store.register_starter_code("HB-1", "code-hash", T0)
    with pytest.raises(DuplicateError):
        store.register_starter_code("HB-1", "other", T0)
    assert store.unused_starter_code_hash("HB-1") == "code-hash"
    box = store.pair_box("HB-1", site_id, "token-hash", T0)
    assert box is not None and store.pair_box("HB-1", site_id, "token-2", T0) is None
    assert store.unused_starter_code_hash("HB-1") is None
    assert store.box_by_token("token-hash") == box
    store.revoke_box(box.id, T0 + timedelta(minutes=5))
    store.revoke_box(box.id, T0 + timedelta(minutes=9))  # the first revocation time stays
    assert store.box_by_token("token-hash") is None
    (revoked,) = store.boxes_of_site(site_id)
    assert revoked.revoked_at == T0 + timedelta(minutes=5)


def test_sites_grants_and_fleet_groups(store: AccountStore) -> None:
    owner, site_id = _owner_with_site(store)
    other = store.create_site(owner, "Cabin", "Europe/Berlin", "north", T0 + timedelta(hours=1))
    helper = store.create_user("tech@example.org", "h", "customer", T0)
    store.add_grant(site_id, helper.id, T0)
    store.add_grant(site_id, helper.id, T0 + timedelta(hours=1))  # no second row, time kept
    assert [g.created_at for g in store.grants_of_site(site_id)] == [T0]
    assert [s.id for s in store.sites_owned(owner)] == [site_id, other.id]
    assert [s.id for s in store.sites_granted(helper.id)] == [site_id]
    store.update_site(site_id, factory_service=True, name="Home 2")
    assert [s.name for s in store.sites_in_factory_service()] == ["Home 2"]
    store.assign_fleet_group(site_id, "south", "trader-1", T0)
    assert store.fleet_groups() == ["north", "south"]
    (moved,) = store.audit_trail("site", site_id)
    assert (moved.old_value, moved.new_value) == ('"default"', '"south"')
    assert store.remove_grant(site_id, helper.id) and not store.remove_grant(site_id, helper.id)


def test_parameters_are_written_with_their_audit_atomically(store: AccountStore) -> None:
    _, site_id = _owner_with_site(store)
    doc = json.dumps({"battery_cycle_cost_eur_per_kwh": 0.05})
    change = [("battery_cycle_cost_eur_per_kwh", None, "0.05")]
    store.set_parameters(
        scope="site", key=site_id, parameters_json=doc, changes=change, actor_id="tr", now=T0
    )
    store.set_parameters(
        scope="group", key="default", parameters_json="{}", changes=[], actor_id="tr", now=T0
    )
    stored = store.get_site_parameters(site_id)
    assert stored is not None and (stored.parameters_json, stored.updated_at) == (doc, T0)
    assert store.get_group_parameters("default") is not None
    store.set_parameters(
        scope="site", key=site_id, parameters_json=None, changes=[], actor_id="tr", now=T0
    )
    assert store.get_site_parameters(site_id) is None
    assert [a.field for a in store.audit_trail(key=site_id)] == ["battery_cycle_cost_eur_per_kwh"]


def test_a_resent_ack_is_recorded_once(store: AccountStore) -> None:
    _, site_id = _owner_with_site(store)
    first = store.add_ack(
        site_id=site_id, box_id="box_1", etag='"e"', applied_at=T0, setpoints={"p": 1.0}, now=T0
    )
    again = store.add_ack(
        site_id=site_id,
        box_id="box_1",
        etag='"e"',
        applied_at=T0,
        setpoints={"p": 1.0},
        now=T0 + timedelta(seconds=30),
    )
    assert again == first
    assert store.acks_of_site(site_id) == [first]


def _changes(store: AccountStore, after: int) -> list[tuple[str | None, str]]:
    return [(site, what) for _, site, what in store.changes_since(after)]


def test_every_write_the_control_loop_reads_is_logged(store: AccountStore) -> None:
    start = store.last_change_id()
    owner, site_id = _owner_with_site(store)
    store.register_starter_code("HB-2", "c", T0)
    box = store.pair_box("HB-2", site_id, "tok", T0)
    assert box is not None
    store.set_equipment(EquipmentDoc(site_id, "{}", T0, owner))
    store.set_device_preferences(DevicePreferences(site_id, "wallbox", "ev", "{}", T0, owner))
    store.set_optimization(site_id, False, owner, T0)
    store.set_tariff(TariffDoc(site_id, "flat", None, T0, owner))
    store.set_box_link("HB-2", "10.0.0.7", 502, 1, T0)
    store.set_parameters(
        scope="group", key="default", parameters_json="{}", changes=[], actor_id="t", now=T0
    )
    store.set_site_status(site_id, '{"state": "ok"}', T0)  # an output: not logged
    assert _changes(store, start) == [
        (site_id, "sites"),
        (site_id, "boxes"),
        (site_id, "site_equipment"),
        (site_id, "device_preferences"),
        (site_id, "site_control"),
        (site_id, "site_tariffs"),
        (None, "box_links"),
        (None, "group_parameters"),
    ]
    assert not store.optimization_enabled(site_id)
    assert store.site_status(site_id) == ('{"state": "ok"}', T0)
    # A deleted site leaves one "every site" entry and no trace of its id.
    before_delete = store.last_change_id()
    store.delete_site(site_id)
    # the box's recorded address goes with the site
    assert _changes(store, before_delete) == [(None, "box_links"), (None, "sites")]
    assert all(site != site_id for _, site, _ in store.changes_since(0))
    assert store.purge_control_changes(keep_last=1) >= 1
    assert len(store.changes_since(0)) == 1


def test_delete_user_leaves_no_row_of_the_person(store: AccountStore) -> None:
    keeper, _ = _owner_with_site(store, "keeper@example.org")
    user_id, site_id = _owner_with_site(store, "gone.person@example.org")
    store.register_starter_code("HB-3", "c", T0)
    box = store.pair_box("HB-3", site_id, "tok3", T0)
    assert box is not None
    store.add_grant(site_id, keeper, T0)
    store.add_refresh_token("rt", user_id, "f", T0, T0 + timedelta(days=1))
    store.add_email_token("et", user_id, "confirm", T0 + timedelta(days=1))
    store.set_equipment(EquipmentDoc(site_id, '{"pv": 1}', T0, user_id))
    store.add_ack(site_id=site_id, box_id=box.id, etag="e", applied_at=T0, setpoints={}, now=T0)
    store.set_parameters(
        scope="site", key=site_id, parameters_json="{}", changes=[("f", None, "1")],
        actor_id=user_id, now=T0,
    )  # fmt: skip
    store.log_requests(
        [RequestLogEntry(T0, "203.0.113.9", "GET", "/v1/app/me", 200, who, 1.0)
         for who in (user_id, box.id, keeper)]
    )  # fmt: skip
    assert store.personal_data(user_id)["request_log"][0]["ip"] == "203.0.113.9"
    assert store.delete_user(user_id) == [site_id]
    dump = database_text(store.engine)
    for trace in (user_id, site_id, box.id, "gone.person@example.org", "tok3"):
        assert trace not in dump, trace
    assert "keeper@example.org" in dump and keeper in dump
    assert len(store.request_log()) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_change_ids_follow_commit_order_on_postgresql(store: AccountStore) -> None:
    """A poller that has seen id n never gets a smaller id later: the writer that began first
    but commits last gets the larger id (ids are drawn at commit under one lock)."""
    start = store.last_change_id()
    with store.engine.connect() as slow:
        slow.execute(sa.text("INSERT INTO box_links VALUES ('A', 'h', 502, 1, now())"))
        done = threading.Event()

        def quick() -> None:
            store.set_box_link("B", "h", 502, 1, T0)
            done.set()

        thread = threading.Thread(target=quick)
        thread.start()
        assert done.wait(10)
        seen = store.changes_since(start)
        slow.commit()
        thread.join()
    later = store.changes_since(start)
    assert len(seen) == 1 and len(later) == 2
    assert later[0] == seen[0] and later[1][0] > seen[0][0]


def test_a_database_of_a_newer_release_is_refused_by_name(db_url: str) -> None:
    AccountStore(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaTooNewError, match=r"revision 9999.*newest: 0002"):
        AccountStore(db_url)
