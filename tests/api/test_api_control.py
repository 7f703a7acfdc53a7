"""Control routes without a control loop: status from the database, the switch, box addresses.

The status a running control loop publishes is tested end to end in ``tests/test_service.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from api.accounts_store import AccountStore
from api.settings import get_settings
from hbopt.cli import main as hbopt_main
from scheduler.runtime import SiteStatus
from tests.api.conftest import World


def _status(world: World, principal: str = "owner") -> dict[str, object]:
    r = world.api.client.get(
        f"/v1/app/sites/{world.site_a}/status", headers=world.headers(principal)
    )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_status_says_what_is_missing_until_a_control_loop_reports(world: World) -> None:
    client = world.api.client
    status = _status(world)
    assert status["state"] == "not_configured" and "equipment" in str(status["state_text"])
    assert status["link"] is None and status["reasons"] == [] and status["optimization"] is True
    off = client.put(
        f"/v1/app/sites/{world.site_a}/optimization",
        json={"enabled": False},
        headers=world.headers("owner"),
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert _status(world, "supporter")["state"] == "off"
    # what a control loop publishes is what the route shows
    published = SiteStatus(world.site_a, "remote", "remote control", "modbus", None, None, None)
    world.api.services.accounts.set_site_status(
        world.site_a, published.to_json(), world.api.clock()
    )
    status = _status(world)
    assert (status["state"], status["state_text"], status["link"]) == (
        "remote",
        "remote control",
        "modbus",
    )
    assert status["optimization"] is False


def test_the_switch_is_the_owners_and_rejects_bad_bodies(world: World) -> None:
    path = f"/v1/app/sites/{world.site_a}/optimization"
    client = world.api.client
    denied = client.put(path, json={"enabled": False}, headers=world.headers("supporter"))
    assert denied.status_code == 403
    bad = client.put(path, json={"enabled": "maybe"}, headers=world.headers("owner"))
    assert bad.status_code == 422 and "enabled" in bad.text


def test_operator_records_a_box_address(world: World) -> None:
    client = world.api.client
    body = {"serial": "HB-A-0001", "host": "10.1.2.3", "port": 1502, "unit": 3}
    r = client.put("/v1/ops/box-links", json=body, headers=world.headers("factory_service"))
    assert r.status_code == 200 and r.json()["port"] == 1502, r.text
    link = world.api.services.accounts.box_link("HB-A-0001")
    assert link is not None and (link.host, link.port, link.unit) == ("10.1.2.3", 1502, 3)
    operator = world.headers("factory_service")
    unknown = client.put("/v1/ops/box-links", json=body | {"serial": "NOPE"}, headers=operator)
    assert unknown.status_code == 404
    bad = client.put("/v1/ops/box-links", json=body | {"host": "a b"}, headers=operator)
    assert bad.status_code == 422 and "host" in bad.text


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "api.sqlite3"
    monkeypatch.setenv("HBOPT_DATABASE_PATH", str(path))
    get_settings.cache_clear()
    return path


def test_api_box_records_the_modbus_address(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hbopt_main(["api-box", "--serial", "SN-1", "--modbus", "192.0.2.7:1502/4"]) == 0
    code = capsys.readouterr().out.strip()
    assert len(code) == 10
    link = AccountStore(database).box_link("SN-1")
    assert link is not None and (link.host, link.port, link.unit) == ("192.0.2.7", 1502, 4)
    # a registered serial: only the address changes, no new code
    assert hbopt_main(["api-box", "--serial", "SN-1", "--modbus", "box1.lan:502"]) == 0
    assert "Modbus TCP at box1.lan:502" in capsys.readouterr().out
    assert hbopt_main(["api-box", "--serial", "SN-2", "--modbus", "nohost"]) == 2
    assert capsys.readouterr().err.startswith("hbopt: --modbus:")
    get_settings.cache_clear()
