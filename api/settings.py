"""Service settings from the environment (prefix ``HBOPT_``) through pydantic-settings.

:func:`get_settings` reads them once (cached) and is what :func:`api.main.create_app`
uses by default; tests build a :class:`Settings` directly and pass it to ``create_app``.
Handlers read the settings of their own app from ``services.settings`` (``ServicesDep``), so
several apps with different settings can live in one process.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scheduler.inputs import InputSettings

#: A signing key shorter than this is refused in production (token_urlsafe(32) gives 43).
MIN_KEY_CHARS = 32


class Settings(BaseSettings):
    """Everything the API process is configured with; durations in seconds unless named."""

    model_config = SettingsConfigDict(env_prefix="HBOPT_", env_file=None, extra="ignore")

    database_path: Path = Field(
        default=Path("var/hbopt-api.sqlite3"),
        description="SQLite file for accounts, sites, grants, ... (when database_url is unset)",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the service database, e.g. "
        "postgresql+psycopg://user@host/hbopt; empty: the SQLite file database_path",
    )
    telemetry_backend: Literal["sqlite", "influxdb", "none"] = Field(
        default="sqlite", description="TelemetryStore implementation; none: no telemetry routes"
    )
    telemetry_path: Path = Field(
        default=Path("var/hbopt-telemetry.sqlite3"),
        description="SQLite file of the telemetry store (plans an earlier release kept here "
        "are moved into the service database at start)",
    )
    influx_url: str = Field(default="http://127.0.0.1:8086")
    influx_org: str = Field(default="heartbeat")
    influx_bucket: str = Field(default="telemetry")
    influx_token: SecretStr = Field(default=SecretStr(""))
    schedule_cache_s: float = Field(
        default=60.0,
        ge=0.0,
        le=300.0,
        description="How long a site's latest plan is reused for polling boxes [s]; a new plan "
        "reaches the boxes at most this late (plans change every 15 min)",
    )
    plan_watch_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="How often each API process asks the store which sites got a new plan, to "
        "drop them from its cache [s]: a plan from another process reaches the boxes this late",
    )
    mode: Literal["production", "demo", "test"] = Field(
        default="production",
        description="production refuses to start without a strong jwt_secret; demo and test "
        "make a random one per process when it is unset",
    )
    jwt_secret: SecretStr = Field(
        default=SecretStr(""),
        description="HS256 key for access tokens, at least 32 characters; shared by every "
        "worker so tokens survive restarts",
    )
    access_token_ttl_s: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    confirm_token_ttl_h: int = Field(default=24, ge=1, le=24)
    reset_token_ttl_min: int = Field(default=60, ge=5, le=24 * 60)
    unconfirmed_account_ttl_h: int = Field(default=24, ge=1, le=24)
    request_log_retention_days: int = Field(default=28, ge=1, le=28)
    telemetry_backlog_days: int = Field(default=5, ge=1, le=5)
    telemetry_future_tolerance_s: int = Field(default=300, ge=0, le=3600)
    maintenance_interval_s: int = Field(default=3600, ge=1)
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base of the links put into confirmation and reset mails (the dashboard's "
        "origin as the owner's browser reaches it)",
    )
    smtp_host: str = Field(
        default="", description="SMTP server for account mail; empty: links go to the service log"
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (port 587), tls (implicit, 465) or none"
    )
    smtp_user: str = Field(default="", description="SMTP AUTH user; empty: no AUTH")
    smtp_password: SecretStr = Field(default=SecretStr(""))
    mail_from: str = Field(
        default="Heartbeat <noreply@localhost>", description="From header of account mail"
    )
    smtp_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    # Argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile). Tests lower them.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_cost_kib: int = Field(default=65536, ge=32)
    live_stream_interval_s: float = Field(
        default=2.0,
        gt=0.0,
        le=60.0,
        description="Seconds between events of the live view's server-sent event stream",
    )
    live_stream_max_s: float = Field(
        default=300.0,
        ge=0.0,
        le=3600.0,
        description="A live stream ends after this many seconds (the page reconnects with a "
        "fresh token); 0: one event",
    )
    vapid_private_key: SecretStr = Field(
        default=SecretStr(""),
        description="EC P-256 private key (PEM) that signs Web Push messages; empty: no push. "
        "`hbopt api-vapid-key` prints a new one",
    )
    vapid_subject: str = Field(
        default="mailto:operations@heartbeat.invalid",
        description="Contact the push services see in the VAPID claim (mailto: or https:)",
    )
    notification_attempts: int = Field(
        default=5, ge=1, le=20, description="Delivery attempts per message and channel"
    )
    log_requests: bool = Field(
        default=True, description="Keep a request log (IP addresses, 4 weeks)"
    )
    # Live inputs: prices per bidding zone, weather per site location (see docs/pricing.md).
    price_zones: list[str] = Field(
        default=["DE_LU"], description="Bidding zones with a price job (entsoe-py area names)"
    )
    price_store_path: Path | None = Field(
        default=None,
        description="SQLite file of fetched prices; default hbopt-prices.sqlite3 beside the "
        "account database",
    )
    entsoe_token: SecretStr | None = Field(
        default=None, description="ENTSO-E Transparency token; unset: ENTSO-E is skipped"
    )
    smard_enabled: bool = Field(
        default=True, description="Fetch DE-LU prices from SMARD.de (key-free) without ENTSO-E"
    )
    smard_url: str = Field(default="https://www.smard.de/app/chart_data")
    weather_url: str = Field(
        default="https://api.open-meteo.com",
        description="Open-Meteo base URL (or a self-hosted one); empty: clear-sky fallback only",
    )
    input_http_timeout_s: float = Field(default=20.0, gt=0.0, le=120.0)
    weather_refresh_min: float = Field(default=60.0, ge=5.0, le=24 * 60)
    weather_max_age_h: float = Field(default=12.0, gt=0.0, le=72.0)
    input_jobs: bool = Field(
        default=True,
        description="Run the price jobs and the weather refresh in this process",
    )

    def accounts_url(self) -> str:
        """The service database's SQLAlchemy URL (accounts, sites, notifications, ...)."""
        return self.database_url or f"sqlite:///{self.database_path}"

    def input_settings(self) -> InputSettings:
        """The live-input settings of :class:`scheduler.inputs.LiveInputs`."""
        path = self.price_store_path or self.database_path.parent / "hbopt-prices.sqlite3"
        token = self.entsoe_token.get_secret_value() if self.entsoe_token else ""
        return InputSettings(
            price_store_path=path,
            zones=tuple(self.price_zones),
            entsoe_token=token,
            smard_enabled=self.smard_enabled,
            smard_url=self.smard_url,
            weather_url=self.weather_url,
            http_timeout_s=self.input_http_timeout_s,
            weather_refresh_min=self.weather_refresh_min,
            weather_max_age_h=self.weather_max_age_h,
        )

    # -- limits against abuse (docs/security.md) ---------------------------------------------
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Request body limit of routes without their own"
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0.0, le=600.0, description="A request body must be complete this soon"
    )
    head_timeout_s: float = Field(
        default=10.0, gt=0.0, le=120.0, description="Request line and headers must arrive this soon"
    )
    keep_alive_s: float = Field(
        default=30.0,
        gt=0.0,
        le=600.0,
        description="Idle keep-alive connections close after this; longer than the boxes' poll "
        "interval (10 s, 5 s at the fastest) so a polling box keeps its connection",
    )
    live_streams_per_user: int = Field(
        default=4, ge=1, le=100, description="Open live streams (SSE) per account"
    )
    password_hash_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Argon2 hashes computed at once (each takes 64 MiB and a core; one leaves "
        "the other core of a small machine to the event loop)",
    )
    signin_ip_limit: str = Field(
        default="30/minute;300/hour", description="Sign-in attempts per client IP (limits syntax)"
    )
    signin_free_failures: int = Field(
        default=5, ge=1, le=100, description="Wrong passwords per account before back-off starts"
    )
    signin_backoff_cap_s: float = Field(
        default=300.0,
        gt=0.0,
        le=3600.0,
        description="Longest wait between guesses on one account; the back-off doubles from 1 s",
    )
    reset_mail_limit: str = Field(
        default="3/hour", description="Password-reset mails per account (limits syntax)"
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="limits storage URI for the counters (redis://... to share between workers)",
    )
    worker_header: bool = Field(
        default=False,
        description="Name the answering worker process (X-Worker-Pid) in every response: tests, "
        "benchmarks, and checking that a proxy spreads the load",
    )
    accounts_busy_timeout_ms: int = Field(
        default=250,
        ge=0,
        le=5000,
        description="Wait this long for a lock on the account database, then answer 503",
    )

    @model_validator(mode="after")
    def _random_key_outside_production(self) -> Settings:
        if self.mode != "production" and not self.jwt_secret.get_secret_value():
            self.jwt_secret = SecretStr(secrets.token_urlsafe(32))
        return self

    def signing_key_problem(self) -> str | None:
        """Why the service must not start with this ``jwt_secret`` (None: it may)."""
        key = self.jwt_secret.get_secret_value()
        if self.mode != "production" or len(key) >= MIN_KEY_CHARS:
            return None
        what = "unset" if not key else f"only {len(key)} characters"
        return (
            f"HBOPT_JWT_SECRET is {what} (at least {MIN_KEY_CHARS} needed); make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
