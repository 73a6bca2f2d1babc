"""Prometheus metrics every service exposes, with bounded label values only."""

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

HTTP_REQUESTS = Counter(
    "routemate_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "routemate_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_CONSUMED = Counter(
    "routemate_events_consumed_total", "Events consumed, by outcome", ["service", "topic", "outcome"]
)
EVENTS_PUBLISHED = Counter(
    "routemate_events_published_total", "Events published and acknowledged", ["service", "topic"]
)
OFFSET_COMMITS = Counter(
    "routemate_offset_commits_total",
    "Offset commits a per-message consumer sent (one per interval, not one per message)",
    ["service"],
)
EVENTS_DEADLETTERED = Counter(
    "routemate_events_deadlettered_total", "Messages sent to the dead-letter topic", ["service", "topic"]
)
BATCH_EVENTS = Histogram(
    "routemate_consumer_batch_events",
    "Events a batch consumer handled together (one transaction, one follow-up pass): how well bursts share their cost",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
STAGE_DURATION = Histogram(
    "routemate_stage_duration_seconds", "Time one stage spent on one job", ["stage"], buckets=LATENCY_BUCKETS
)
LANE_WAIT = Histogram(
    "routemate_lane_wait_seconds",
    "Time a bulk-lane message waited at its stage's lane gate for the normal lane",
    ["service"],
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LANE_WAIT_CAPPED = Counter(
    "routemate_lane_wait_capped_total",
    "Bulk-lane messages that started because they had waited the longest allowed, not on an idle normal lane",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "routemate_consumer_lag_messages", "Messages behind the end of the partition", ["group", "topic", "partition"]
)


class HttpMetrics:
    """Pure ASGI middleware (no per-request task group): count and time every request by route template."""

    def __init__(self, app, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def record_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or _route_of(scope)
            HTTP_REQUESTS.labels(self.service, scope["method"], template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, scope["method"], template).observe(time.perf_counter() - start)


def _route_of(scope) -> str:
    from starlette.routing import Match

    app = scope.get("app")
    for route in getattr(getattr(app, "router", None), "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "path", "other")
    return "unmatched"


def install_http_metrics(app: "FastAPI", service: str) -> None:
    """Request metrics for every route, and the /metrics endpoint itself."""
    from fastapi import Response  # here, not at the top: one-off commands import these metrics without FastAPI

    app.add_middleware(HttpMetrics, service=service)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
