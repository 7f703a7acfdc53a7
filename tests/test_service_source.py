"""The control loop's view of the service database (``hbopt.service.AccountsSource``) on SQLite
and PostgreSQL: what a site needs before it is controlled, and the change log that tells the
supervisor which sites to look at again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from api.accounts_store import AccountStore, EquipmentDoc
from hbopt.service import AccountsSource, ControlSettings
from scheduler.runtime import Idle, SiteSpec

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
EQUIPMENT = {
    "pv": {"peak_kw": 8.0},
    "battery": {"capacity_kwh": 13.5, "charge_kw": 5.0, "discharge_kw": 5.0},
}


@pytest.fixture
def source(db_url: str) -> Iterator[AccountsSource]:
    accounts = AccountStore(db_url)
    yield AccountsSource(accounts, ControlSettings())
    accounts.close()


def test_a_site_is_controlled_once_paired_and_equipped(source: AccountsSource) -> None:
    accounts = source.accounts
    seen = source.last_change_id()
    owner = accounts.create_user("o@example.org", "h", "customer", T0)
    site = accounts.create_site(owner.id, "Home", "Europe/Berlin", "default", T0)
    accounts.register_starter_code("HB-S-1", "c", T0)
    assert isinstance(source.desired(site.id), Idle)  # no box
    assert accounts.pair_box("HB-S-1", site.id, "tok", T0) is not None
    assert isinstance(source.desired(site.id), Idle)  # no equipment
    accounts.set_equipment(EquipmentDoc(site.id, json.dumps(EQUIPMENT), T0, owner.id))
    accounts.set_box_link("HB-S-1", "127.0.0.1", 1502, 2, T0)
    spec = source.desired(site.id)
    assert isinstance(spec, SiteSpec)
    assert (spec.link.kind, spec.link.host, spec.link.port, spec.link.unit) == (
        "modbus", "127.0.0.1", 1502, 2,
    )  # fmt: skip
    built = spec.config.home.site  # from the stored equipment, not the default home
    assert built.battery is not None and built.battery.capacity_kwh == 13.5
    changes = source.changes_since(seen)
    assert [(s, w) for _, s, w in changes] == [
        (site.id, "sites"),
        (site.id, "boxes"),
        (site.id, "site_equipment"),
        (None, "box_links"),
    ]
    accounts.set_optimization(site.id, False, owner.id, T0)
    off = source.desired(site.id)
    assert isinstance(off, Idle) and off.state == "off"
    seen = source.last_change_id()
    accounts.delete_user(owner.id)
    gone = source.desired(site.id)
    assert isinstance(gone, Idle) and not gone.exists
    changed = [(s, w) for _, s, w in source.changes_since(seen)]
    assert changed == [(None, "box_links"), (None, "sites")]  # the box's address went too
    assert source.site_ids() == []
