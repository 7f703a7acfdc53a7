"""The application factory: :func:`create_app` builds the FastAPI app for one set of settings.

Resources (the account database, the telemetry store, the maintenance task) are opened in the
lifespan and closed after it, so importing this module opens nothing and every test gets its
own app on its own files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import fastapi.routing
import pandas as pd
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

import core
from adapters.store import StoreSettings, TelemetryStore, make_store
from api.accounts_store import AccountStore
from api.connections import BodyDeadline
from api.deps import Clock, Services, route_roles
from api.errors import install_error_handlers
from api.mailer import LogMailer, Mailer
from api.mailer_smtp import SmtpConfig, SmtpMailer
from api.maintenance import run_maintenance
from api.notify import make_notifier
from api.observability import Metrics, ObservabilityMiddleware, RequestLog, WorkerPid
from api.routers import (
    analysis,
    auth,
    control,
    dashboard,
    devices,
    docs,
    equipment,
    ev_report,
    gateway,
    insights,
    notifications,
    ops,
    reports,
    tariffs,
    trading,
    views,
)
from api.routers import app as app_routes
from api.schedule import PlanCache
from api.security import password_hasher
from api.settings import Settings, get_settings
from api.throttle import Throttles
from core.errors import CliError
from notifications import NotificationStore
from scheduler.inputs import LiveInputs
from scheduler.plan_store import SqlPlanStore

logger = logging.getLogger("api")

DESCRIPTION = """\
The Heartbeat Optimizer service. Routers per audience:

* `/v1/auth` — registration, email confirmation, sign-in, refresh, password reset (public)
* `/v1/app` — the owner's account and sites; supporters and the factory service use the same
  site routes, scoped by grants and the factory-service switch
* `/v1/gateway` — Heartbeat boxes (box token)
* `/v1/trading` — optimizer parameters per fleet group and site, audit trail (trader; analyst reads)
* `/healthz`, `/metrics` — operations
* `/ui/` — the web dashboard (static pages calling `/v1/app` with the user's token)

Every route lists the roles it admits under `x-roles`. Every error has the body
`{"error": {"code", "message", "fields": [{"field", "reason"}]}}`; ids of objects that belong
to another tenant are answered 404 exactly like ids that do not exist.
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


TelemetryFactory = Callable[[Settings, Clock], TelemetryStore | None]


def store_from_settings(settings: Settings, clock: Clock) -> TelemetryStore | None:
    """The telemetry store the settings name (built by the store package's one factory)."""
    if settings.telemetry_backend == "none":
        return None
    return make_store(
        StoreSettings(
            backend=settings.telemetry_backend,
            data_dir=settings.telemetry_path.parent,
            sqlite_file=settings.telemetry_path.name,
            future_tolerance=timedelta(seconds=settings.telemetry_future_tolerance_s),
            influx_url=settings.influx_url,
            influx_token=settings.influx_token.get_secret_value(),
            influx_org=settings.influx_org,
            influx_bucket=settings.influx_bucket,
        ),
        clock,
    )


def open_plan_store(settings: Settings, engine: Engine) -> SqlPlanStore:
    """The plan store on the service database's (migrated) ``engine``; plans and setpoints an
    earlier release kept in the telemetry SQLite file are moved over first (once)."""
    plans = SqlPlanStore(engine)
    moved = plans.import_legacy(settings.telemetry_path)
    if any(moved):
        logger.info("moved %d plans and %d setpoints from %s into the service database", *moved,
                    settings.telemetry_path)  # fmt: skip
    return plans


def create_app(
    settings: Settings | None = None,
    *,
    mailer: Mailer | None = None,
    clock: Clock | None = None,
    telemetry_factory: TelemetryFactory = store_from_settings,
) -> FastAPI:
    """Build the API for ``settings`` (default: the environment, see :func:`get_settings`).

    Parameters
    ----------
    settings : Settings, optional
        This app's settings (default: :func:`get_settings`, read once from the environment).
    mailer : Mailer, optional
        Delivers confirmation and reset links; default: :func:`mailer_from_settings`.
    clock : callable, optional
        Returns the current tz-aware UTC time; tests inject a movable clock.
    telemetry_factory : callable, optional
        Builds the telemetry store from the settings and clock at start-up (default: the
        backend ``settings.telemetry_backend`` names); may return None for no store.
    """
    settings = settings or get_settings()
    problem = settings.signing_key_problem()
    if problem is not None:
        raise CliError(problem)
    clock = clock or utc_now

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "services", None) is not None:
            # Nested start-up (a test client inside another): share the open resources.
            yield
            return
        own_mailer = mailer or mailer_from_settings(settings)
        services = _open_services(settings, own_mailer, clock, telemetry_factory)
        app.state.services = services
        # the plan watch's starting point, before requests
        await run_in_threadpool(services.plan_cache.watch, services.plans)
        tasks = [
            asyncio.create_task(_maintenance_loop(services)),
            asyncio.create_task(_flush_loop(services)),
            asyncio.create_task(_plan_watch_loop(services)),
        ]
        if settings.input_jobs and services.inputs is not None:
            tasks.append(asyncio.create_task(services.inputs.run()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            services.request_log.flush()
            if mailer is None and isinstance(own_mailer, SmtpMailer):
                # Queued mail is delivered (or given up) in the background; do not hold the
                # shutdown for a retry schedule of minutes.
                own_mailer.close(wait=False)
            if services.notifier is not None:
                services.notifier.close()
            if services.telemetry is not None:
                services.telemetry.close()
            if services.inputs is not None:
                services.inputs.close()
            services.accounts.close()
            app.state.services = None

    app = FastAPI(
        title="Heartbeat Optimizer API",
        version=core.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package by api.routers.docs (works offline)
        redoc_url=None,
    )
    # Handlers read settings from the services this app opened (not through a dependency
    # override: any override makes FastAPI re-analyse every dependency on every request).
    install_error_handlers(app)
    app.add_middleware(BodyDeadline, owner=app)
    app.add_middleware(ObservabilityMiddleware, owner=app)
    if settings.worker_header:
        app.add_middleware(WorkerPid)
    routers = (
        auth, app_routes, devices, views, insights, gateway, trading, ops, dashboard, equipment,
        analysis, docs, notifications, reports, control, tariffs, ev_report,
    )  # fmt: skip
    for module in routers:
        _declare_roles(module.router)
        # The default body limit per router, not per app: Starlette's limiter then runs inside
        # the middleware that gives its 413 the API's error body (api.connections).
        app.include_router(module.router, max_body_size=settings.max_body_bytes)
    dashboard.mount_dashboard(app)
    return app


def mailer_from_settings(settings: Settings) -> Mailer:
    """SMTP delivery when ``smtp_host`` is set, else the links go to the service log."""
    if not settings.smtp_host:
        return LogMailer()
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value(),
            sender=settings.mail_from,
            timeout_s=settings.smtp_timeout_s,
        )
    )


def _open_services(
    settings: Settings,
    mailer: Mailer,
    clock: Clock,
    telemetry_factory: TelemetryFactory,
) -> Services:
    accounts = AccountStore(
        settings.accounts_url(), busy_timeout_ms=settings.accounts_busy_timeout_ms
    )
    hasher = password_hasher(settings.password_time_cost, settings.password_memory_cost_kib)
    mailer = mailer or LogMailer()
    # one engine (one pool) per process for the tables of the service database
    notification_store = NotificationStore(accounts.engine)
    services = Services(
        settings=settings,
        accounts=accounts,
        request_log=RequestLog(accounts),
        hasher=hasher,
        mailer=mailer,
        clock=clock,
        metrics=Metrics(),
        plan_cache=PlanCache(settings.schedule_cache_s),
        throttles=Throttles(settings, hasher),
        plans=open_plan_store(settings, accounts.engine),
        telemetry=telemetry_factory(settings, clock),
        inputs=LiveInputs(settings.input_settings(), clock=lambda: pd.Timestamp(clock())),
        notifications=notification_store,
    )
    services.notifier = make_notifier(services)
    return services


def _declare_roles(router: APIRouter) -> None:
    """Put each route's roles into its OpenAPI operation; refuse routes without a guard."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or "x-roles" in (route.openapi_extra or {}):
            continue
        roles = route_roles(route.dependant)
        if roles is None:
            raise RuntimeError(f"route {route.path} has no access guard")
        route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": list(roles)}
        note = f"Roles: {', '.join(roles)}."
        route.description = f"{route.description}\n\n{note}".strip()


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """Every API route of ``app`` with its full path (prefixes of included routers applied)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:  # FastAPI before routers were included lazily
        return [(r.path, r) for r in app.routes if isinstance(r, APIRoute)]
    return [
        (str(c.path), c.original_route)
        for c in contexts(app.routes)
        if isinstance(c.original_route, APIRoute)
    ]


async def _flush_loop(services: Services, interval_s: float = 1.0) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(services.request_log.flush)
        except Exception:  # the log must never take the service down
            logger.exception("request log flush failed")


async def _plan_watch_loop(services: Services) -> None:
    """Drop cached plans that another process (the control loop, a worker) replaced."""
    while True:
        try:
            await run_in_threadpool(services.plan_cache.watch, services.plans)
        except Exception:  # a busy store: the cache's age limit still bounds staleness
            logger.warning("plan watch failed", exc_info=True)
        await asyncio.sleep(services.settings.plan_watch_s)


async def _maintenance_loop(services: Services) -> None:
    while True:
        try:
            await run_in_threadpool(run_maintenance, services)
        except Exception:
            logger.exception("maintenance failed")
        await asyncio.sleep(services.settings.maintenance_interval_s)
