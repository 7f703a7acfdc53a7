"""Property-based tests from the OpenAPI schema: no input makes the API answer 5xx.

Schemathesis generates requests for every operation (valid and invalid bodies, queries and
paths). Each call carries the token of a principal the operation admits and, for most
operations, the real ids of that principal's site, so the handlers behind the guards are
reached, not only the 401/404 paths. Few examples per operation keep the run short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from tests.api.conftest import Api, World, build_world, make_settings, start_api

#: The principal whose token a call carries, by the first role an operation admits.
PRINCIPAL_FOR_ROLE = {
    "public": "anonymous",
    "customer": "owner",
    "owner": "owner",
    "supporter": "supporter",
    "factory_service": "factory_service",
    "trader": "trader",
    "analyst": "analyst",
    "box": "box",
}


def _schema() -> Any:
    app = create_app(make_settings(Path("/nonexistent")))
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.app = app  # selects the in-process ASGI transport; each call names its own app
    return loaded


schema = _schema()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    apis: Iterator[Api] = start_api(tmp_path)
    yield build_world(next(apis))
    next(apis, None)


#: Deleting the account would leave nothing for the later examples to reach.
EXCLUDED = {("DELETE", "/v1/app/me")}
covered = schema.exclude(method="DELETE", path="/v1/app/me")


def test_every_operation_but_account_deletion_is_generated() -> None:
    operations = {
        (method.upper(), path)
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    }
    generated = {
        (result.ok().method.upper(), result.ok().path) for result in covered.get_all_operations()
    }
    assert generated == operations - EXCLUDED


@covered.parametrize()
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_makes_a_server_error(case: Any, world: World) -> None:
    roles = case.operation.definition.raw.get("x-roles", ["public"])
    principal = PRINCIPAL_FOR_ROLE[roles[0]]
    # Real ids for every operation, deletions included, so each reaches its handler with a
    # real owner's (or the admitted principal's) token rather than stopping at a 404.
    real = {
        "site_id": world.site_a,
        "box_id": world.box_a,
        "supporter_id": world.user_ids["supporter"],
        "name": "ev",
        "group": "default",
    }
    for name in set(case.path_parameters or {}) & set(real):
        case.path_parameters[name] = real[name]
    case.call_and_validate(
        app=world.api.app,
        headers=world.headers(principal),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
