"""Operations: liveness/readiness and Prometheus metrics (no credentials, no personal data)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

import core
from api.deps import ServicesDep, public
from api.schemas import Health

#: The environment variable that puts prometheus_client into multi-process mode.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

router = APIRouter(tags=["ops"], dependencies=[Depends(public)])


@router.get("/healthz", response_model=Health)
def healthz(services: ServicesDep) -> Health:
    """``ok`` when the database answers; ``degraded`` otherwise."""
    try:
        database = services.accounts.ping()
    except Exception:
        database = False
    telemetry = None if services.telemetry is None else True
    return Health(
        status="ok" if database else "degraded",
        database=database,
        telemetry_store=telemetry,
        version=core.__version__,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
def metrics(services: ServicesDep) -> Response:
    """Request counts and latency histograms per route and status, Prometheus text format.

    Under ``hbopt serve --workers N`` the counts are every worker's together, whichever answers.
    """
    registry = services.metrics.registry
    if os.environ.get(MULTIPROCESS_DIR):
        # prometheus_client's multi-process mode: each worker's values are in files in that
        # directory (chosen by the parent before the workers started), summed here
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
