"""``hbopt serve --workers N``: N API worker processes on one socket, the control loop once.

uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``) binds the socket in this
process and starts N workers that accept on it; each builds its app with :func:`worker_app`.
It restarts a worker that dies or stops answering its health check, and stops them all on
SIGINT/SIGTERM. (gunicorn with uvicorn workers does the same with one more dependency and a
second configuration language; uvicorn's supervisor keeps one config path for 1 and N.)

This process runs what must run once: the control loop on its own event loop in a thread (or,
with ``--no-control``, the price and weather jobs), so the workers only answer requests.
What the workers share lives outside them:

* accounts, sessions (JWT signed with one ``HBOPT_JWT_SECRET``, the token epoch in the
  account database), telemetry and plans: the databases;
* rate limits, sign-in back-off, live-stream slots: the ``limits`` storage
  ``HBOPT_RATE_LIMIT_STORAGE``, which must be one they share (``redis://``); ``memory://`` is
  refused with N > 1;
* live data: each stream re-reads the shared telemetry store, so a reading posted through any
  worker (or read from a Modbus box by the control loop) reaches every stream;
* plans: each worker's plan cache forgets the plans the store got since it last asked
  (``HBOPT_PLAN_WATCH_S``);
* ``/metrics``: prometheus_client's multi-process mode, in a directory made here (or the
  operator's ``PROMETHEUS_MULTIPROC_DIR``), so any worker answers with every worker's counts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pandas as pd
from fastapi import FastAPI
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from uvicorn.supervisors import Multiprocess

from api.accounts_store import AccountStore
from api.connections import uvicorn_config
from api.logging_config import service_log_config
from api.main import create_app, open_plan_store, store_from_settings
from api.routers.dashboard import DASHBOARD_PATH
from api.routers.ops import MULTIPROCESS_DIR
from api.settings import Settings
from core.errors import CliError
from hbopt.service import ControlLoop, ControlSettings, LoopThread, loop_clock, utc_clock
from pricing.store import PriceStore
from scheduler.clock import LoopClock
from scheduler.inputs import LiveInputs

#: The app factory each worker process imports and calls.
WORKER_APP = "hbopt.workers:worker_app"


def worker_app() -> FastAPI:
    """The app of one worker: settings and clock from the environment the parent prepared;
    the price and weather jobs run in the parent, not here."""
    settings, control = Settings(), ControlSettings()
    return create_app(
        settings.model_copy(update={"input_jobs": False}), clock=utc_clock(loop_clock(control))
    )


def check_shared_storage(settings: Settings, workers: int) -> None:
    """Refuse ``memory://`` counters for several workers, and a shared storage that does not
    answer (one ``hbopt: ...`` line either way)."""
    uri = settings.rate_limit_storage
    if uri.startswith("memory://"):
        raise CliError(
            f"--workers: {workers} workers would each count rate limits and live streams on "
            "their own with HBOPT_RATE_LIMIT_STORAGE=memory://; set it to a storage they share, "
            "e.g. redis://127.0.0.1:6379"
        )
    try:
        answers = storage_from_string(uri).check()
    except (ConfigurationError, ValueError) as exc:
        raise CliError(f"HBOPT_RATE_LIMIT_STORAGE: {uri!r}: {exc}") from None
    if not answers:
        raise CliError(f"HBOPT_RATE_LIMIT_STORAGE: {uri} does not answer", exit_code=1)


def shared_environment(settings: Settings, control: ControlSettings) -> dict[str, str]:
    """What every worker must agree on with this process, for the environment they inherit:
    the token key (random per process outside production when unset) and an accelerated
    clock's anchor (else each process would start its own clock)."""
    env = {"HBOPT_JWT_SECRET": settings.jwt_secret.get_secret_value()}
    if control.clock_speed != 1.0 or control.clock_start is not None:
        start = control.clock_start or datetime.now(UTC)
        anchor = control.clock_anchor if control.clock_anchor is not None else time.time()
        env |= {"HBOPT_CLOCK_START": start.isoformat(), "HBOPT_CLOCK_ANCHOR": repr(anchor)}
    return env


def migrate_once(settings: Settings, clock: LoopClock) -> None:
    """Create or upgrade every database before N workers open them at the same moment."""
    accounts = AccountStore(settings.accounts_url())  # every table of the service database
    open_plan_store(settings, accounts.engine)  # an earlier release's plans moved over, once
    accounts.close()
    store = store_from_settings(settings, utc_clock(clock))
    if store is not None:
        store.close()
    PriceStore(settings.input_settings().price_store_path).close()


def input_jobs(settings: Settings, clock: LoopClock) -> Callable[[], Awaitable[None]]:
    """The price jobs and the weather refresh, for a parent without a control loop."""

    async def run() -> None:
        inputs = LiveInputs(
            settings.input_settings(),
            clock=lambda: pd.Timestamp(clock.now(), unit="s", tz="UTC"),
            sleep=lambda seconds: clock.sleep_until(clock.now() + seconds),
        )
        try:
            await inputs.run()
        finally:
            inputs.close()

    return run


def serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``args.workers`` API workers and, once, the control loop (or the input jobs)."""
    problem = settings.signing_key_problem()  # else every worker would fail to start
    if problem is not None:
        raise CliError(problem)
    check_shared_storage(settings, args.workers)
    os.environ.update(shared_environment(settings, ControlSettings()))
    control = ControlSettings()  # with the shared clock anchor
    clock = loop_clock(control)
    migrate_once(settings, clock)
    background = None
    if not args.no_control:
        background = LoopThread("hbopt-control", ControlLoop(settings, control, clock).run)
    elif settings.input_jobs:
        background = LoopThread("hbopt-inputs", input_jobs(settings, clock))
    metrics_dir = None
    if not os.environ.get(MULTIPROCESS_DIR):  # an operator's own directory is kept
        metrics_dir = tempfile.mkdtemp(prefix="hbopt-metrics-")
        os.environ[MULTIPROCESS_DIR] = metrics_dir
    config = uvicorn_config(
        WORKER_APP,
        settings,
        args.host,
        args.port,
        args.log_level,
        log_config=service_log_config(args.log_level),
        workers=args.workers,
    )
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn logged why (address in use, not permitted)
        raise CliError(f"--port: cannot listen on {args.host}:{args.port}", exit_code=1) from None
    if background is not None:
        background.start()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"hbopt: dashboard at http://{host}:{args.port}{DASHBOARD_PATH}", flush=True)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        if background is not None:
            background.stop()
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
