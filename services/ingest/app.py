"""Wiring of the ingest gateway."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.ingest.adapters import JobHeads, Lanes, Outcomes, Reservations
from services.ingest.handlers import ImportDependencies
from services.ingest.models import ImportIn
from services.ingest.routes import router
from services.ingest.settings import IngestSettings
from shared.broker import EventBus, make_broker
from shared.http import install_request_ids
from shared.pii import DataKeys, SealingBus
from shared.ratelimit import RateLimiter
from shared.redisbatch import RedisBatch
from shared.service import document_body, make_redis, redis_check, service_app
from shared.tokens import TokenCache

SERVICE = "ingest"


def create_app(
    settings: IngestSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    settings = settings or IngestSettings()
    redis = redis or make_redis(settings)
    broker = broker or make_broker(settings, SERVICE)
    batch = RedisBatch(redis)  # the Redis commands of concurrent imports travel together
    limiter = limiter or RateLimiter(redis, settings.rate_limit_per_second, settings.rate_limit_burst, batch=batch)
    data_keys = DataKeys(redis, settings.kek_material)
    outcomes = Outcomes(redis, data_keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await broker.start()
        outcomes.start()
        yield
        await outcomes.stop()
        await broker.stop()
        await batch.aclose()
        await redis.aclose()

    app = service_app(SERVICE, lifespan=lifespan, title="RouteMate ingest")
    app.state.settings, app.state.redis, app.state.limiter = settings, redis, limiter
    app.state.redis_batch = batch
    app.state.token_cache = TokenCache(settings.token_cache_size, settings.token_cache_seconds)
    app.state.imports = ImportDependencies(
        reservations=Reservations(redis, settings.idempotency_ttl_seconds, batch=batch),
        outcomes=outcomes,
        # The import makes the job's data key; every personal field leaves sealed under it.
        bus=SealingBus(EventBus(broker, SERVICE), data_keys),
        lanes=Lanes(redis, settings.fair_share_jobs, settings.inflight_ttl_seconds),
        max_stops=settings.max_stops,
        publish_timeout_s=settings.publish_timeout_seconds,
        wait_s=settings.ingest_wait_seconds,
        heads=JobHeads(redis),
        data_keys=data_keys,
    )
    app.state.health_checks["redis"] = redis_check(redis)
    install_request_ids(app)
    app.include_router(router)
    document_body(app, "/v1/integration-import", {"application/json": ImportIn})
    return app
