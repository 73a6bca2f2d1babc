"""Wiring of the status service: the projection consumer and the jobs endpoint in one process."""

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from services.status.adapters.outbox import Outbox
from services.status.adapters.outcomes import OutcomePublisher
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries
from services.status.relay import OutboxRelay
from services.status.routes import database_unavailable, router
from services.status.routes_changes import router as changes_router
from services.status.routes_internal import internal
from services.status.settings import StatusSettings
from services.status.subscribers import GROUP, subscribe_read_model
from shared.broker import EventBus, make_broker
from shared.db import make_engine
from shared.http import install_request_ids
from shared.ratelimit import RateLimiter
from shared.service import consumer_stage_app, make_redis

SERVICE = "status"


def create_app(
    settings: StatusSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    engine: Engine | None = None,
) -> FastAPI:
    """The status service; every argument left out is the production one its settings name."""
    settings = settings or StatusSettings()
    redis = redis or make_redis(settings)
    broker = broker or make_broker(settings, SERVICE)
    engine = engine or make_engine(settings.status_database_url)
    projection, queries = Projection(engine), JobQueries(engine)  # the projection migrates the tables
    outcomes = OutcomePublisher(redis, settings.outcome_ttl_seconds)
    bus = EventBus(broker, SERVICE)
    relay = OutboxRelay(Outbox(engine), bus, idle_s=settings.outbox_poll_seconds)
    subscribe_read_model(broker, bus, projection, queries, outcomes, settings.projection_batch_size, relay.poke)

    async def start_relay() -> None:
        relay.start()

    async def stop_relay() -> None:
        await relay.stop()
        await redis.aclose()

    app = consumer_stage_app(SERVICE, settings, broker, GROUP, stop_relay, start_relay)
    app.state.redis, app.state.bus = redis, bus
    app.state.queries, app.state.relay = queries, relay
    app.state.limiters = {
        "read": RateLimiter(redis, settings.job_reads_per_second, settings.job_read_burst, "rm:rl:read:"),
        "update": RateLimiter(redis, settings.stop_updates_per_second, settings.stop_update_burst, "rm:rl:update:"),
    }
    install_request_ids(app)
    app.add_exception_handler(OperationalError, database_unavailable)
    app.include_router(router)
    app.include_router(changes_router)
    app.include_router(internal)  # the console's reads: INTERNAL_TOKEN, not routed by the edge
    return app
