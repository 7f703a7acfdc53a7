"""Retention: unconfirmed accounts go after 24 h, request-log rows (IP addresses) after 4 weeks."""

from __future__ import annotations

from datetime import timedelta

from api.maintenance import purge_request_log, purge_unconfirmed_accounts, run_maintenance
from tests.api.conftest import PASSWORD, Api, register_and_confirm


def test_unconfirmed_accounts_are_removed_after_24_hours(api: Api) -> None:
    accounts = api.services.accounts
    api.client.post("/v1/auth/register", json={"email": "late@example.org", "password": PASSWORD})
    register_and_confirm(api, "prompt@example.org")
    api.clock.advance(hours=23, minutes=59)
    assert purge_unconfirmed_accounts(accounts, api.clock()) == []
    assert accounts.get_user_by_email("late@example.org") is not None
    api.clock.advance(minutes=2)
    removed = purge_unconfirmed_accounts(accounts, api.clock())
    assert len(removed) == 1
    assert accounts.get_user_by_email("late@example.org") is None
    assert accounts.get_user_by_email("prompt@example.org") is not None
    # The address is free again for a new registration.
    again = api.client.post(
        "/v1/auth/register", json={"email": "late@example.org", "password": PASSWORD}
    )
    assert again.status_code == 202
    assert api.mailer.outbox[-1].to == "late@example.org"


def test_request_log_keeps_ip_addresses_at_most_4_weeks(api: Api) -> None:
    accounts = api.services.accounts
    api.client.get("/healthz")
    api.services.request_log.flush()
    old = accounts.request_log()
    assert len(old) == 1
    assert old[0].ip == "testclient"
    assert old[0].path == "/healthz"
    api.clock.advance(days=27)
    api.client.get("/healthz")
    api.services.request_log.flush()
    api.clock.advance(days=1, seconds=1)
    assert purge_request_log(accounts, api.clock(), timedelta(days=28)) == 1
    kept = accounts.request_log()
    assert [entry.at for entry in kept] == [api.clock() - timedelta(days=1, seconds=1)]


def test_run_maintenance_uses_the_configured_retention(api: Api) -> None:
    api.client.post("/v1/auth/register", json={"email": "late@example.org", "password": PASSWORD})
    api.client.get("/healthz")
    api.clock.advance(days=29)
    report = run_maintenance(api.services)
    assert report.unconfirmed_accounts_deleted == 1
    # the registration's row (with the address) went with the account; the retention took the
    # /healthz row
    assert report.request_log_rows_deleted == 1
    assert api.services.accounts.request_log() == []
