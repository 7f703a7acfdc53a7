"""Per-request observability: Prometheus metrics and the request log (IP addresses, 4 weeks)."""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.accounts_store import AccountStore, RequestLogEntry


@dataclass
class Metrics:
    """The app's own registry, so several apps (tests) in one process do not collide."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "hbopt_http_requests",
            "HTTP requests by route template, method and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "hbopt_http_request_duration_seconds",
            "Time from request start to the last body byte [s]",
            ("method", "route"),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )


class RequestLog:
    """Request-log rows buffered in memory and written in batches by :meth:`flush`.

    Writing each row from the event loop would stall every request whenever SQLite
    checkpoints its WAL (an fsync); the app flushes from a worker thread every second instead,
    and before anything that must see the log complete (account deletion, retention purge).
    """

    def __init__(self, accounts: AccountStore) -> None:
        self._accounts = accounts
        self._entries: deque[RequestLogEntry] = deque()

    def add(self, entry: RequestLogEntry) -> None:
        self._entries.append(entry)

    def flush(self) -> int:
        """Write every buffered row; return how many."""
        batch: list[RequestLogEntry] = []
        while self._entries:
            batch.append(self._entries.popleft())
        if batch:
            self._accounts.log_requests(batch)
        return len(batch)


class ObservabilityMiddleware:
    """Counts and times every HTTP request and appends it to the request log.

    The log row holds the client IP, the route template, the status and the principal (user
    or box id) a guard recorded in ``request.state``; a maintenance job deletes rows older than
    the retention.
    """

    def __init__(self, app: ASGIApp, owner: Any) -> None:
        self.app = app
        self.owner = owner  # the FastAPI app, whose state holds the services after startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        services = getattr(self.owner.state, "services", None)
        if services is None:
            return
        route = scope.get("route")
        template = getattr(route, "path", "unmatched")
        method = scope.get("method", "")
        services.metrics.requests.labels(method, template, str(status)).inc()
        services.metrics.latency.labels(method, template).observe(seconds)
        if not services.settings.log_requests:
            return
        client = scope.get("client")
        state = scope.get("state") or {}
        entry = RequestLogEntry(
            at=services.now(),
            ip=client[0] if client else None,
            method=method,
            path=template,
            status=status,
            principal=state.get("principal"),
            duration_ms=seconds * 1000.0,
        )
        services.request_log.add(entry)


class WorkerPid:
    """Adds ``X-Worker-Pid`` (the answering process) to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-worker-pid", self.pid)]
            await send(message)

        await self.app(scope, receive, send_with_pid)
