"""Throttles against guessing and flooding: sign-in per IP and per account, reset mails per
account, argon2 hashes at once, and live streams per account.

Counters live in a `limits <https://limits.readthedocs.io>`_ storage (the library slowapi and
Flask-Limiter build on): ``memory://`` in one process, ``redis://...`` when several workers
must share them; nothing here depends on which.

Sign-in per account: the first ``free_failures`` wrong passwords cost nothing extra; from then
on each failure closes the account for a back-off that doubles from 1 s up to ``cap_s``, and
only one guess per back-off period is let through (the rest are answered 429 before any
password is hashed, so they cost the server nothing). A correct password clears the count,
and a password reset clears it too, so the owner is never locked out for longer than
``cap_s``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from pwdlib import PasswordHash

from api.errors import ApiError
from api.settings import Settings

T = TypeVar("T")
#: How long a failure count is remembered without new failures [s].
FAILURE_MEMORY_S = 24 * 3600
#: How long one admitted guess may take before its slot is free again [s].
GUESS_SLOT_S = 30


def too_many(retry_after_s: float, what: str) -> ApiError:
    """A 429 with Retry-After in whole seconds (at least 1)."""
    seconds = max(1, int(retry_after_s + 0.999))
    return ApiError(
        429,
        "too_many_requests",
        f"{what}; try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


@dataclass(frozen=True)
class Admission:
    """A sign-in attempt let through: the account key and the failure level it was taken at."""

    account: str
    level: int


class SignInThrottle:
    """Per-IP windows and per-account exponential back-off for password guesses."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.windows = MovingWindowRateLimiter(storage)
        self.ip_limits: list[RateLimitItem] = parse_many(settings.signin_ip_limit)
        self.free_failures = settings.signin_free_failures
        self.cap_s = settings.signin_backoff_cap_s

    def admit(self, email: str, ip: str) -> Admission:
        """Let one attempt through or raise 429 with Retry-After (no password is hashed)."""
        for limit in self.ip_limits:
            if not self.windows.hit(limit, "signin-ip", ip):
                reset = self.windows.get_window_stats(limit, "signin-ip", ip).reset_time
                raise too_many(reset - time.time(), "too many sign-in attempts from this address")
        account = email.strip().lower()
        level = self.storage.get(f"signin-fail/{account}")
        gate = f"signin-gate/{account}/{level}"
        if self.storage.get(gate) > 0:
            raise too_many(self.storage.get_expiry(gate) - time.time(), _BACKED_OFF)
        # One guess per level: parallel guessers at the same level wait for its outcome.
        if self.storage.incr(f"signin-slot/{account}/{level}", GUESS_SLOT_S) > 1:
            raise too_many(1.0, _BACKED_OFF)
        return Admission(account, level)

    def failed(self, admission: Admission) -> None:
        """Count a wrong password; from ``free_failures`` on, close the account for a while."""
        failures = self.storage.incr(f"signin-fail/{admission.account}", FAILURE_MEMORY_S)
        if failures >= self.free_failures:
            backoff = backoff_s(failures - self.free_failures, self.cap_s)
            self.storage.incr(f"signin-gate/{admission.account}/{failures}", backoff)
        # The guess is decided: its slot is free (the count has moved on past its level).
        self.storage.clear(f"signin-slot/{admission.account}/{admission.level}")

    def succeeded(self, admission: Admission) -> None:
        """The password was right: forget the failures."""
        self.clear(admission.account, admission.level)

    def clear(self, email: str, level: int | None = None) -> None:
        """Forget an account's failures (after a password reset, or a correct password)."""
        account = email.strip().lower()
        if level is None:
            level = self.storage.get(f"signin-fail/{account}")
        self.storage.clear(f"signin-fail/{account}")
        self.storage.clear(f"signin-slot/{account}/{level}")


_BACKED_OFF = "too many wrong passwords for this account"


class MailThrottle:
    """At most ``reset_mail_limit`` reset mails per account (moving window)."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.windows = MovingWindowRateLimiter(storage)
        self.limits = parse_many(settings.reset_mail_limit)

    def allow(self, user_id: str) -> bool:
        """True (and counted) if another mail may go to this account now."""
        return all(self.windows.hit(limit, "reset-mail", user_id) for limit in self.limits)


class StreamSlots:
    """Open live streams per account, capped across every worker that shares the storage.

    The count is a counter in the storage, taken when a stream opens and given back when it
    ends; it expires ``max_s`` after the account's first open stream, so slots held by a
    worker that was killed mid-stream come free by themselves.
    """

    def __init__(self, storage: Storage, per_user: int, max_s: float) -> None:
        self.storage = storage
        self.per_user = per_user
        self.expiry_s = int(max_s) + 60

    def guard(self, user_id: str, events: AsyncIterator[str]) -> AsyncIterator[str]:
        """Take a slot now (429 if none is free); give it back when ``events`` ends."""
        key = f"live-streams/{user_id}"
        if self.storage.incr(key, self.expiry_s) > self.per_user:
            self._give_back(key)
            raise too_many(5.0, f"{self.per_user} live streams open for this account already")
        return self._release_after(key, events)

    def open_streams(self, user_id: str) -> int:
        return max(0, self.storage.get(f"live-streams/{user_id}"))

    def _give_back(self, key: str) -> None:
        # incr by -1: redis storage has no decr; a count the expiry already dropped is cleared
        if self.storage.incr(key, self.expiry_s, -1) <= 0:
            self.storage.clear(key)

    async def _release_after(self, key: str, events: AsyncIterator[str]) -> AsyncIterator[str]:
        try:
            async for event in events:
                yield event
        finally:
            self._give_back(key)


class Throttles:
    """Every throttle of one app, over one counter storage."""

    def __init__(self, settings: Settings, hasher: PasswordHash) -> None:
        storage = storage_from_string(settings.rate_limit_storage)
        if not isinstance(storage, Storage):
            raise ValueError(f"rate_limit_storage: {settings.rate_limit_storage!r} is async-only")
        self.storage = storage
        #: A hash of a random secret with this app's parameters: what an unknown email or an
        #: unknown box serial is checked against, so it costs as much as a known one.
        self.dummy_hash = hasher.hash(secrets.token_urlsafe(16))
        self.signin = SignInThrottle(self.storage, settings)
        self.reset_mail = MailThrottle(self.storage, settings)
        self.streams = StreamSlots(
            self.storage, settings.live_streams_per_user, settings.live_stream_max_s
        )
        # Waiting for a slot holds no worker thread (anyio queues the caller).
        self.hashing = anyio.CapacityLimiter(settings.password_hash_concurrency)

    async def hash_work(self, fn: Callable[..., T], *args: object) -> T:
        """Run a password hash or verify in a worker thread, at most N at once."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.hashing)


def backoff_s(step: int, cap_s: float) -> int:
    """Seconds an account stays closed after failure number ``free + step`` [s]: 1, 2, 4, ...

    Parameters
    ----------
    step : int
        Failures beyond the free ones (0 for the first closing failure).
    cap_s : float
        The longest back-off [s].
    """
    return max(1, int(min(cap_s, 2.0 ** min(step, 30))))
