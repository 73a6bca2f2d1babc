"""Wiring of the status service: the projection consumer and the jobs endpoint in one process."""

from functools import partial

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from services.status.adapters.erasure import Erasure
from services.status.adapters.outbox import Outbox
from services.status.adapters.outcomes import OutcomePublisher
from services.status.adapters.projection import Projection
from services.status.adapters.queries import JobQueries
from services.status.erasing import Eraser, RetentionPolicy, RetentionTask, forget_erased
from services.status.handlers import ReadModel
from services.status.rebuild import SnapshotTask
from services.status.relay import OutboxRelay
from services.status.routes import database_unavailable, router
from services.status.routes_changes import router as changes_router
from services.status.routes_internal import internal
from services.status.settings import StatusSettings
from services.status.subscribers import subscribe_read_model
from shared.broker import EventBus, make_broker
from shared.db import make_json_engine
from shared.http import install_request_ids, publish_or_unavailable
from shared.pii import DataKeys, SealingBus
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
    # JSON columns by orjson, as the rebuild writes them: json.dumps of the stops and job views was
    # about 5 % of the projection's CPU in a burst (py-spy); the service reads either as JSON.
    engine = engine or make_json_engine(settings.status_database_url)
    projection, queries = Projection(engine), JobQueries(engine)  # the projection migrates the tables
    keys = DataKeys.from_settings(redis, settings)  # one Redis read per job, not per sealed change
    outcomes = OutcomePublisher(redis, settings.outcome_ttl_seconds, keys)
    bus = SealingBus(EventBus(broker, SERVICE), keys)  # stop reports and cancellations leave sealed
    relay = OutboxRelay(Outbox(engine), bus, idle_s=settings.outbox_poll_seconds)
    eraser = Eraser(
        Erasure(engine), keys, outcomes, lambda event: publish_or_unavailable(bus, event, 10, "The erasure")
    )
    # Jobs the projection erased (an organization's, a JobErased): their keys and Redis entries go too.
    reader = ReadModel(projection, queries, outcomes, keys, partial(forget_erased, eraser))
    subscribe_read_model(
        broker,
        bus,
        reader,
        settings.projection_batch_size,
        relay.poke,
        settings.status_group,
        linger_ms=settings.projection_linger_ms,
    )
    policy = RetentionPolicy(settings.job_retention_days, settings.job_retention_max_days)
    retention = RetentionTask(eraser, policy, settings.job_retention_check_seconds)
    every = settings.snapshot_interval_seconds
    snapshotting = SnapshotTask(settings, engine, every) if every else None

    async def start_relay() -> None:
        relay.start()
        retention.start()
        if snapshotting is not None:
            snapshotting.start()

    async def stop_relay() -> None:
        if snapshotting is not None:
            await snapshotting.stop()
        await retention.stop()
        await relay.stop()
        await redis.aclose()

    app = consumer_stage_app(SERVICE, settings, broker, settings.status_group, stop_relay, start_relay)
    app.state.redis, app.state.bus, app.state.eraser = redis, bus, eraser
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
