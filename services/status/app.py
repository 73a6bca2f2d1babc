"""Wiring of the status service: the projection consumer and the jobs endpoint in one process."""

import asyncio
import json
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from services.status.projection import Projection, as_utc
from services.status.queries import JobQueries
from services.status.routes import router
from services.status.settings import StatusSettings
from services.status.views import job_view
from shared.broker import EventBus, TransientError, make_broker, subscribe_batch
from shared.channels import JOB_OUTCOME
from shared.db import make_engine
from shared.errors import Problem, problem_response
from shared.events import (
    AUTH_EVENTS,
    JOBS_FAILED,
    JOBS_GEOCODED,
    JOBS_OPTIMIZED,
    JOBS_REQUESTED,
    STOPS_STATUS,
    Event,
    RouteOptimized,
)
from shared.http import install_request_ids
from shared.metrics import JOB_LATENCY
from shared.service import consumer_stage_app, make_redis

SERVICE = "status"
GROUP = "routemate-status"
log = logging.getLogger(__name__)


async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    log.warning("read model unavailable: %s", exc.orig)
    return problem_response(
        Problem(
            503, "database_unavailable", "The job store is unavailable; retry shortly.", headers={"Retry-After": "5"}
        ),
        request.url.path,
    )


def create_app(
    settings: StatusSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    engine=None,
) -> FastAPI:
    settings = settings or StatusSettings()
    redis = redis or make_redis(settings)
    broker = broker or make_broker(settings, SERVICE)
    engine = engine or make_engine(settings.status_database_url)
    projection, queries = Projection(engine), JobQueries(engine)
    bus = EventBus(broker, SERVICE)

    async def announce(org_id: str, job_id: str, found: tuple | None) -> None:
        """Tell the ingest replicas that a job settled, with its public view."""
        if found is None:
            return
        try:
            await redis.publish(JOB_OUTCOME, json.dumps({"job_id": job_id, "org_id": org_id, "job": job_view(*found)}))
        except (RedisError, OSError):
            log.warning("could not announce the outcome of %s; waiting clients will poll", job_id)

    async def after(event: Event, settled: str | None) -> None:
        """The latency metric for a routed job, and the announcement of a settled one."""
        routed = isinstance(event, RouteOptimized)
        if not (settled or routed):
            return
        job_id = settled or event.job_id  # one read serves both the latency metric and the announcement
        found = await asyncio.to_thread(queries.job, event.org_id, job_id=job_id)
        if routed and found and found[0].accepted_at:
            JOB_LATENCY.observe(max(0.0, (event.occurred_at - as_utc(found[0].accepted_at)).total_seconds()))
        if settled:
            await announce(event.org_id, settled, found)

    async def on_events(events: list[Event]) -> None:
        try:
            settled = await asyncio.to_thread(projection.apply_many, events)
            for event, job_id in zip(events, settled, strict=False):
                await after(event, job_id)
        except OperationalError as exc:  # the database is down or locked: retry, never dead-letter
            raise TransientError(f"database unavailable: {exc.orig}") from exc

    async def on_event(event: Event) -> None:
        await on_events([event])

    # A poll's events in one transaction and one Kafka commit: the projection keeps up with bursts.
    subscribe_batch(
        broker,
        bus,
        [JOBS_REQUESTED, JOBS_GEOCODED, JOBS_OPTIMIZED, JOBS_FAILED, STOPS_STATUS, AUTH_EVENTS],
        GROUP,
        on_events,
        on_event,
        max_records=settings.projection_batch_size,
    )

    app = consumer_stage_app(SERVICE, settings, broker, GROUP, redis.aclose)
    app.state.redis, app.state.bus = redis, bus
    app.state.queries, app.state.projection = queries, projection
    install_request_ids(app)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.include_router(router)
    return app
