"""Secrets: password hashing (argon2id via pwdlib), access JWTs (PyJWT) and opaque tokens.

Passwords and box starter codes are low-entropy and get a slow salted hash (argon2id). Refresh,
email and box tokens are 256-bit random strings, so a fast SHA-256 of them is as safe to store
as a slow hash and keeps per-request authentication of polling boxes cheap.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

JWT_ALGORITHM = "HS256"


def password_hasher(time_cost: int = 3, memory_cost_kib: int = 65536) -> PasswordHash:
    """An argon2id hasher; lower the costs only in tests."""
    return PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost_kib),))


def new_token(prefix: str = "") -> str:
    """A fresh 256-bit URL-safe random token, optionally prefixed (``hbb_`` for boxes)."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 hex digest under which a random token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    role: str
    expires_at: datetime
    #: The account's token epoch at signing; logout and password reset raise the account's,
    #: which voids every access token signed before at once.
    epoch: int = 0


def encode_access_token(
    user_id: str, role: str, now: datetime, ttl: timedelta, secret: str, *, epoch: int = 0
) -> tuple[str, datetime]:
    """A signed HS256 access token for ``user_id`` at token ``epoch``; returns it with its
    expiry."""
    expires_at = now + ttl
    claims = {
        "sub": user_id,
        "role": role,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_hex(8),
        "ep": epoch,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM), expires_at


def decode_access_token(token: str, now: datetime, secret: str) -> AccessClaims | None:
    """The claims of a valid, unexpired access token, else None.

    Expiry is checked against the injected clock ``now`` (not the wall clock) so tests and
    simulations can move time.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "exp", "typ"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access" or int(claims["exp"]) <= now.timestamp():
        return None
    return AccessClaims(
        user_id=str(claims["sub"]),
        role=str(claims.get("role", "")),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
        epoch=int(claims.get("ep", 0)),
    )
