"""One error body for every error: 401, 403, 404, 405, 422 (naming field and reason)."""

from __future__ import annotations

from typing import Any

from api.errors import ErrorBody
from tests.api.conftest import Api, World


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = ErrorBody.model_validate(response.json())
    assert set(response.json()) == {"error"}
    return body.error.model_dump()


def test_validation_errors_name_each_field_and_reason(api: Api) -> None:
    response = api.client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": "short"}
    )
    error = _error(response, 422)
    reasons = {f["field"]: f["reason"] for f in error["fields"]}
    assert set(reasons) == {"body.email", "body.password"}
    assert "at least 10 characters" in reasons["body.password"]


def test_missing_body_field_and_bad_query_parameter(world: World) -> None:
    client = world.api.client
    missing = client.post("/v1/app/sites", json={}, headers=world.headers("owner"))
    assert [f["field"] for f in _error(missing, 422)["fields"]] == ["body.name"]
    bad_query = client.get("/v1/trading/audit?limit=0", headers=world.headers("trader"))
    assert [f["field"] for f in _error(bad_query, 422)["fields"]] == ["query.limit"]
    naive = client.post(
        "/v1/gateway/acks",
        json={"etag": "e", "applied_at": "2026-03-29T00:30:00", "setpoints": {}},
        headers=world.headers("box"),
    )
    assert [f["field"] for f in _error(naive, 422)["fields"]] == ["body.applied_at"]


def test_malformed_json_is_422(api: Api) -> None:
    response = api.client.post(
        "/v1/auth/token", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert _error(response, 422)["code"] == "validation_error"


def test_not_found_and_method_not_allowed_use_the_error_body(api: Api) -> None:
    assert _error(api.client.get("/v1/nothing-here"), 404)["code"] == "not_found"
    assert _error(api.client.delete("/healthz"), 405)["code"] == "method_not_allowed"


def test_openapi_documents_the_error_body_and_roles(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/app/sites/{site_id}"]["get"]
    assert operation["x-roles"] == ["owner", "supporter", "factory_service"]
    assert operation["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert {"UserToken", "BoxToken"} <= set(schema["components"]["securitySchemes"])
    assert api.client.get("/docs").status_code == 200
