"""Accounts: registration, email confirmation, sign-in, token refresh, password reset.

Sign-in returns a short-lived access JWT and an opaque refresh token. Refresh tokens are single
use: each refresh returns a new pair, and presenting a used one revokes its whole family (a
copied token is then worthless). Registration and reset requests answer the same whether or not
the email is known, so the API does not tell who has an account.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request, Response

from api.accounts_store import DuplicateError, User, new_id
from api.connections import AUTH_BODY_BYTES
from api.deps import Services, ServicesDep, public
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody, unauthorized
from api.mailer import Message
from api.routers.dashboard import DASHBOARD_PATH
from api.schemas import (
    Accepted,
    ConfirmRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    SignInRequest,
    TokenPair,
    UserPublic,
)
from api.security import encode_access_token, new_token, token_digest

router = APIRouter(
    prefix="/v1/auth",
    tags=["auth"],
    dependencies=[Depends(public)],
    responses=ERROR_RESPONSES,
    max_body_size=AUTH_BODY_BYTES,
)


def user_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        role=user.role,
        email_confirmed=user.confirmed_at is not None,
        created_at=user.created_at,
    )


def _invalid_token() -> ApiError:
    return ApiError(400, "invalid_token", "token unknown, used or expired")


def _mail_token(services: Services, user: User, purpose: str, link_path: str) -> None:
    settings = services.settings
    now = services.now()
    token = new_token()
    if purpose == "confirm":
        expires = now + timedelta(hours=settings.confirm_token_ttl_h)
        services.accounts.add_email_token(token_digest(token), user.id, "confirm", expires)
        subject = "Confirm your Heartbeat account"
    else:
        expires = now + timedelta(minutes=settings.reset_token_ttl_min)
        services.accounts.add_email_token(token_digest(token), user.id, "reset", expires)
        subject = "Reset your Heartbeat password"
    # The token rides in the fragment, which browsers never send: it cannot reach an access log.
    base = settings.public_base_url.rstrip("/")
    link = f"{base}{DASHBOARD_PATH}{link_path}#token={token}"
    body = f"{subject}: open {link} (valid until {expires.isoformat()})."
    services.mailer.send(Message(to=user.email, subject=subject, body=body, link=link))


def token_pair(services: Services, user: User, refresh: str) -> TokenPair:
    """A fresh access token for ``user`` next to the refresh token ``refresh``."""
    settings = services.settings
    access, _ = encode_access_token(
        user.id,
        user.role,
        services.now(),
        timedelta(seconds=settings.access_token_ttl_s),
        settings.jwt_secret.get_secret_value(),
        epoch=user.token_epoch,
    )
    return TokenPair(
        access_token=access, expires_in=settings.access_token_ttl_s, refresh_token=refresh
    )


def issue_tokens(services: Services, user: User, family_id: str | None = None) -> TokenPair:
    settings = services.settings
    now = services.now()
    refresh = new_token()
    services.accounts.add_refresh_token(
        token_digest(refresh),
        user.id,
        family_id or new_id("fam"),
        now,
        now + timedelta(days=settings.refresh_token_ttl_days),
    )
    return token_pair(services, user, refresh)


@router.post("/register", status_code=202, response_model=Accepted)
async def register(body: RegisterRequest, request: Request, services: ServicesDep) -> Accepted:
    """Create a customer account and mail a confirmation link (valid 24 h).

    Accounts not confirmed within 24 hours are deleted. The answer is the same when the email
    is registered already (that address gets no second account).
    """
    password_hash = await services.throttles.hash_work(services.hasher.hash, body.password)
    try:
        user = services.accounts.create_user(body.email, password_hash, "customer", services.now())
    except DuplicateError:
        return Accepted(detail="check your mailbox to confirm the address")
    request.state.principal = user.id  # the log row (with the address) goes with the account
    _mail_token(services, user, "confirm", "confirm-email")
    return Accepted(detail="check your mailbox to confirm the address")


@router.post("/confirm", response_model=UserPublic)
def confirm(body: ConfirmRequest, services: ServicesDep) -> UserPublic:
    """Confirm the email address with the token from the confirmation mail (single use)."""
    now = services.now()
    user_id = services.accounts.consume_email_token(token_digest(body.token), "confirm", now)
    if user_id is None:
        raise _invalid_token()
    services.accounts.confirm_user(user_id, now)
    user = services.accounts.get_user(user_id)
    if user is None:
        raise _invalid_token()
    return user_public(user)


@router.post(
    "/token",
    response_model=TokenPair,
    responses={429: {"model": ErrorBody, "description": "Too many attempts; see Retry-After"}},
)
async def sign_in(body: SignInRequest, request: Request, services: ServicesDep) -> TokenPair:
    """Sign in with email and password: an access token (15 min) and a refresh token.

    Attempts are limited per client address, and per account after a few wrong passwords
    (the wait doubles up to a cap; a 429 says how long in Retry-After).
    """
    ip = request.client.host if request.client else "unknown"
    admission = services.throttles.signin.admit(body.email, ip)
    user = services.accounts.get_user_by_email(body.email)
    if user is not None:
        # The sign-in's log row (with the address) belongs to the account and goes with it.
        request.state.principal = user.id
    # Unknown emails are hashed too, so both take the same time.
    stored = user.password_hash if user is not None else services.throttles.dummy_hash
    valid, new_hash = await services.throttles.hash_work(
        services.hasher.verify_and_update, body.password, stored
    )
    if user is None or not valid:
        services.throttles.signin.failed(admission)
        raise unauthorized("wrong email or password")
    services.throttles.signin.succeeded(admission)
    if new_hash is not None:
        services.accounts.set_password_hash(user.id, new_hash)
    if user.confirmed_at is None:
        raise ApiError(403, "email_not_confirmed", "confirm your email address first")
    return issue_tokens(services, user)


@router.post("/refresh", response_model=TokenPair)
def refresh(body: RefreshRequest, services: ServicesDep) -> TokenPair:
    """Swap a refresh token for a new pair; the old one is used up."""
    settings = services.settings
    now = services.now()
    new_refresh = new_token()
    user_id = services.accounts.rotate_refresh_token(
        token_digest(body.refresh_token),
        token_digest(new_refresh),
        now,
        now + timedelta(days=settings.refresh_token_ttl_days),
    )
    user = None if user_id is None else services.accounts.get_user(user_id)
    if user is None:
        raise unauthorized("refresh token invalid, used or revoked")
    return token_pair(services, user, new_refresh)


@router.post("/logout", status_code=204, response_class=Response)
def logout(body: RefreshRequest, services: ServicesDep) -> Response:
    """Revoke a refresh token and every token refreshed from the same sign-in; the account's
    access tokens stop working at once (other sessions refresh theirs)."""
    digest = token_digest(body.refresh_token)
    services.accounts.revoke_refresh_family(digest, services.now())
    user_id = services.accounts.user_of_refresh_token(digest)
    if user_id is not None:
        services.accounts.bump_token_epoch(user_id)
    return Response(status_code=204)


@router.post("/password-reset", status_code=202, response_model=Accepted)
def request_password_reset(body: PasswordResetRequest, services: ServicesDep) -> Accepted:
    """Mail a single-use reset link (valid 60 min) if the address has an account."""
    user = services.accounts.get_user_by_email(body.email)
    # Over the mail limit the answer stays the same: it must not tell who has an account.
    if user is not None and services.throttles.reset_mail.allow(user.id):
        _mail_token(services, user, "reset", "reset-password")
    return Accepted(detail="if the address has an account, a reset link was sent")


@router.post("/password-reset/confirm", status_code=204, response_class=Response)
async def confirm_password_reset(body: PasswordResetConfirm, services: ServicesDep) -> Response:
    """Set a new password with the reset token; signs out every session of the account."""
    now = services.now()
    user_id = services.accounts.consume_email_token(token_digest(body.token), "reset", now)
    if user_id is None:
        raise _invalid_token()
    new_hash = await services.throttles.hash_work(services.hasher.hash, body.new_password)
    services.accounts.set_password_hash(user_id, new_hash)
    services.accounts.revoke_user_refresh_tokens(user_id, now)
    services.accounts.bump_token_epoch(user_id)
    user = services.accounts.get_user(user_id)
    if user is not None:
        services.throttles.signin.clear(user.email)
    # Following the mailed link proves the address, as the confirmation link would.
    services.accounts.confirm_user(user_id, now)
    return Response(status_code=204)
