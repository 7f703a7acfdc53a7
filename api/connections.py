"""Connection limits: body size per route, a deadline for the request body, a deadline for the
request head, and the uvicorn settings that go with them.

Body sizes are Starlette's own ``max_body_size`` (stream-checked: a declared Content-Length
over the limit is refused before a byte is read, a chunked body as soon as it passes it);
this module holds the per-route numbers. Uvicorn closes idle keep-alive connections but has
no deadline for a request that arrives byte by byte (slowloris): :class:`HeadTimeoutHttpTools`
adds one for the request head, :class:`BodyDeadline` one for the body.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import uvicorn
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import ErrorBody, ErrorDetail, FieldError
from api.settings import Settings, get_settings

#: Sign-in, registration, refresh, reset: a few short strings.
AUTH_BODY_BYTES = 4 * 1024
#: A telemetry batch: up to 20,000 samples of about 110 bytes each as the box sends them.
TELEMETRY_BODY_BYTES = 4 * 1024 * 1024
#: Every other route (sites, preferences, equipment, trading parameters).
DEFAULT_BODY_BYTES = 256 * 1024


def body_limit(path: str, default: int) -> int:
    """The body limit [bytes] of the route at ``path`` (as the routers declare it)."""
    if path.startswith("/v1/auth/"):
        return AUTH_BODY_BYTES
    if path == "/v1/gateway/telemetry":
        return TELEMETRY_BODY_BYTES
    return default


class BodyDeadline:
    """Answer 408 when a request body is not complete ``timeout_s`` after its first read, and
    give Starlette's plain-text 413 the API's error body with the route's limit in it.

    Only the body is timed: once it is complete, ``receive`` passes through untouched (a
    streaming response waits on it for the client's disconnect).
    """

    def __init__(self, app: ASGIApp, owner: Any) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(self.owner.state, "services", None)
        if scope["type"] != "http" or services is None:
            await self.app(scope, receive, send)
            return
        timeout_s = services.settings.body_timeout_s
        deadline: float | None = None
        complete = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                return await receive()
            if deadline is None:
                deadline = time.monotonic() + timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise HTTPException(
                    408, f"request body not complete within {timeout_s:g} s"
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        started = False
        limit = body_limit(scope["path"], services.settings.max_body_bytes)

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 413:
                    # Starlette's limiter answers in plain text; the API's body names the limit.
                    await _too_large(limit)(scope, _no_body, send)
                    raise _AnsweredError
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except _AnsweredError:
            pass
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await _too_large(limit)(scope, _no_body, send)


class _AnsweredError(Exception):
    """The 413 went out already; the rest of the inner answer is dropped."""


def _too_large(limit: int) -> JSONResponse:
    reason = f"larger than this route's limit of {limit} bytes"
    body = ErrorBody(
        error=ErrorDetail(
            code="body_too_large",
            message=f"request body {reason}",
            fields=[FieldError(field="body", reason=reason)],
        )
    )
    return JSONResponse(body.model_dump(), status_code=413)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class HeadTimeoutHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head.

    The connection is closed when the request line and headers have not arrived
    ``head_timeout_s`` after the connection opened or the previous response ended (uvicorn's
    keep-alive timer covers only an idle connection that sends nothing at all... after its
    first request).
    """

    head_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class SettingsHeadTimeoutHttpTools(HeadTimeoutHttpTools):
    """:class:`HeadTimeoutHttpTools` with the head deadline of the environment's settings.

    A worker process of ``hbopt serve --workers N`` gets its protocol class by import path (its
    configuration crosses a process boundary), so the deadline cannot be baked into a class
    made at run time as in one process.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.head_timeout_s = get_settings().head_timeout_s
        super().__init__(*args, **kwargs)


def uvicorn_config(
    app: Any,
    settings: Settings,
    host: str,
    port: int,
    log_level: str,
    *,
    log_config: dict[str, Any] | None = None,
    workers: int = 1,
) -> uvicorn.Config:
    """The uvicorn configuration of the service: the head deadline, keep-alive and body
    settings of ``settings`` (see docs/security.md for the numbers).

    With ``workers`` > 1, ``app`` is the import path of an app factory that each worker process
    calls, and those processes read ``settings`` from the environment they inherit.
    """
    protocol: Any = (
        type(
            "HeadTimeoutHttpTools",
            (HeadTimeoutHttpTools,),
            {"head_timeout_s": settings.head_timeout_s},
        )
        if workers == 1
        else f"{__name__}:{SettingsHeadTimeoutHttpTools.__name__}"
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config,
        http=protocol,
        timeout_keep_alive=math.ceil(settings.keep_alive_s),
        workers=workers,
        factory=workers > 1,
    )
