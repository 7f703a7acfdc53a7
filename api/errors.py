"""One error body for every error the API answers, and the handlers that produce it.

Every 4xx/5xx response is ``{"error": {"code": ..., "message": ..., "fields": [...]}}``;
``fields`` names each offending input as a dotted location (``body.password``,
``query.limit``, ``body.samples.3.time``) with the reason, and is empty for errors that are
not about one input.
"""

from __future__ import annotations

import sqlite3
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY


class FieldError(BaseModel):
    """One invalid input."""

    field: str = Field(description="Dotted location, e.g. body.password or query.limit")
    reason: str = Field(description="Why the value was rejected")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found, validation_error")
    message: str = Field(description="Human-readable explanation")
    fields: list[FieldError] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """Raised by handlers and dependencies; turned into an :class:`ErrorBody` response."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers


def not_found(what: str = "resource") -> ApiError:
    """The one answer for ids that do not exist *or* belong to someone else."""
    return ApiError(404, "not_found", f"{what} not found")


def unauthorized(message: str = "missing or invalid credentials") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "your role may not do this") -> ApiError:
    return ApiError(403, "forbidden", message)


def field_error(field: str, reason: str, status_code: int = 422) -> ApiError:
    return ApiError(
        status_code,
        "validation_error",
        f"{field}: {reason}",
        fields=[FieldError(field=field, reason=reason)],
    )


def _response(
    status_code: int,
    code: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, fields=fields or []))
    return JSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def _code_for(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validation_error(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> ApiError:
    """A 422 naming every field a pydantic model rejected, located under ``prefix``."""
    fields = [
        FieldError(field=location((*prefix, *err["loc"])), reason=err["msg"])
        for err in exc.errors()
    ]
    message = "; ".join(f"{f.field}: {f.reason}" for f in fields)
    return ApiError(422, "validation_error", message, fields=fields)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _response(exc.status_code, exc.code, exc.message, exc.fields, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else None
    limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    if exc.status_code == 413 and limit is not None:
        reason = f"larger than this route's limit of {limit} bytes"
        fields = [FieldError(field="body", reason=reason)]
        return _response(413, "body_too_large", f"request body {reason}", fields, headers)
    return _response(exc.status_code, _code_for(exc.status_code), str(exc.detail), headers=headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, sqlite3.OperationalError | sa.exc.OperationalError)
    cause = exc.orig if isinstance(exc, sa.exc.OperationalError) else exc
    if isinstance(cause, sqlite3.OperationalError) and (
        "locked" in str(cause) or "busy" in str(cause)
    ):
        # Another process holds the database: a short wait, then this answer, never a hang.
        message = "the account database is busy; try again shortly"
        return _response(503, "database_busy", message, headers={"Retry-After": "1"})
    return await _unhandled(request, exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        FieldError(field=location(err.get("loc", ())), reason=str(err.get("msg", "invalid")))
        for err in exc.errors()
    ]
    message = "; ".join(f"{f.field}: {f.reason}" for f in fields[:5]) or "invalid request"
    return _response(422, "validation_error", message, fields)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    return _response(500, "internal_error", "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sqlite3.OperationalError, _database_error)
    app.add_exception_handler(sa.exc.OperationalError, _database_error)
    app.add_exception_handler(Exception, _unhandled)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed request body (not parseable) or an invalid one-time token"),
        (401, "Missing, expired or revoked credentials"),
        (403, "Signed in, but the role may not do this"),
        (404, "Not found, or not yours (ids of other tenants are answered the same way)"),
        (413, "Request body over the route's size limit (the limit is in the message)"),
        (422, "Invalid input; `fields` names each offending field and why"),
        (429, "Too many requests; wait the seconds in Retry-After"),
        (503, "Busy or unavailable; nothing was changed, retry after Retry-After"),
    )
}
