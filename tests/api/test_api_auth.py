"""Accounts: registration, confirmation, sign-in, refresh rotation, reset, hashing."""

from __future__ import annotations

import sqlite3

from tests.api.conftest import PASSWORD, Api, bearer, register_and_confirm, sign_in


def test_register_confirm_sign_in_and_me(api: Api) -> None:
    user = register_and_confirm(api, "ada@example.org")
    assert user["email_confirmed"] is True
    assert user["role"] == "customer"
    tokens = sign_in(api, "ada@example.org")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    me = api.client.get("/v1/app/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


def test_password_is_stored_as_argon2id_never_plain(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    dump = "\n".join(sqlite3.connect(api.services.settings.database_path).iterdump())
    assert PASSWORD not in dump
    stored = api.services.accounts.get_user_by_email("ada@example.org")
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")


def test_unconfirmed_account_cannot_sign_in(api: Api) -> None:
    api.client.post("/v1/auth/register", json={"email": "bo@example.org", "password": PASSWORD})
    response = api.client.post(
        "/v1/auth/token", json={"email": "bo@example.org", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "email_not_confirmed"


def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    wrong = api.client.post(
        "/v1/auth/token", json={"email": "ada@example.org", "password": "not the password"}
    )
    unknown = api.client.post(
        "/v1/auth/token", json={"email": "nobody@example.org", "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_duplicate_registration_answers_the_same_and_keeps_one_account(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    mails = len(api.mailer.outbox)
    again = api.client.post(
        "/v1/auth/register", json={"email": "ADA@example.org", "password": "another password"}
    )
    assert again.status_code == 202
    assert len(api.mailer.outbox) == mails
    sign_in(api, "ada@example.org")  # the original password still works


def test_confirmation_token_is_single_use(api: Api) -> None:
    api.client.post("/v1/auth/register", json={"email": "ada@example.org", "password": PASSWORD})
    token = api.mailer.outbox[-1].link.split("token=")[1]
    assert api.client.post("/v1/auth/confirm", json={"token": token}).status_code == 200
    second = api.client.post("/v1/auth/confirm", json={"token": token})
    assert second.status_code == 400
    assert second.json()["error"]["code"] == "invalid_token"


def test_access_token_expires_after_15_minutes(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    tokens = sign_in(api, "ada@example.org")
    api.clock.advance(minutes=14, seconds=59)
    assert api.client.get("/v1/app/me", headers=bearer(tokens["access_token"])).status_code == 200
    api.clock.advance(seconds=1)
    expired = api.client.get("/v1/app/me", headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == "Bearer"


def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    first = sign_in(api, "ada@example.org")
    api.clock.advance(minutes=20)
    second = api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"]
    assert api.client.get("/v1/app/me", headers=bearer(new["access_token"])).status_code == 200
    # The old refresh token presented again (stolen copy): refused, and the family is revoked.
    replay = api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    after = api.client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert after.status_code == 401


def test_logout_revokes_refresh_token(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    tokens = sign_in(api, "ada@example.org")
    body = {"refresh_token": tokens["refresh_token"]}
    assert api.client.post("/v1/auth/logout", json=body).status_code == 204
    assert api.client.post("/v1/auth/refresh", json=body).status_code == 401


def test_refresh_token_expires_after_30_days(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    tokens = sign_in(api, "ada@example.org")
    api.clock.advance(days=30)
    body = {"refresh_token": tokens["refresh_token"]}
    assert api.client.post("/v1/auth/refresh", json=body).status_code == 401


def test_password_reset_is_single_use_and_expires(api: Api) -> None:
    register_and_confirm(api, "ada@example.org")
    old_session = sign_in(api, "ada@example.org")
    unknown = api.client.post("/v1/auth/password-reset", json={"email": "nobody@example.org"})
    assert unknown.status_code == 202
    mails = len(api.mailer.outbox)
    reset = api.client.post("/v1/auth/password-reset", json={"email": "ada@example.org"})
    assert reset.status_code == 202
    assert len(api.mailer.outbox) == mails + 1
    message = api.mailer.outbox[-1]
    assert message.to == "ada@example.org"
    token = message.link.split("token=")[1]
    body = {"token": token, "new_password": "a brand new password"}
    assert api.client.post("/v1/auth/password-reset/confirm", json=body).status_code == 204
    assert api.client.post("/v1/auth/password-reset/confirm", json=body).status_code == 400
    sign_in(api, "ada@example.org", "a brand new password")
    old = api.client.post("/v1/auth/token", json={"email": "ada@example.org", "password": PASSWORD})
    assert old.status_code == 401
    # Every earlier session is signed out.
    refresh = {"refresh_token": old_session["refresh_token"]}
    assert api.client.post("/v1/auth/refresh", json=refresh).status_code == 401
    # A second reset link is dead after its 60 minutes.
    api.client.post("/v1/auth/password-reset", json={"email": "ada@example.org"})
    late = api.mailer.outbox[-1].link.split("token=")[1]
    api.clock.advance(minutes=61)
    body = {"token": late, "new_password": "yet another password"}
    assert api.client.post("/v1/auth/password-reset/confirm", json=body).status_code == 400


def test_deleted_account_token_stops_working(api_db: Api) -> None:
    api = api_db
    register_and_confirm(api, "ada@example.org")
    tokens = sign_in(api, "ada@example.org")
    headers = bearer(tokens["access_token"])
    assert api.client.delete("/v1/app/me", headers=headers).status_code == 204
    assert api.client.get("/v1/app/me", headers=headers).status_code == 401
