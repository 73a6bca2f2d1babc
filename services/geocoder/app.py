"""Wiring of the geocoder: a Kafka consumer stage with /healthz and /metrics."""

import time

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.geocoder.cache import GeocodeCache
from services.geocoder.gazetteer import australia
from services.geocoder.handlers import Geocoder
from services.geocoder.providers import Provider, build_chain
from services.geocoder.settings import GeocoderSettings
from shared.broker import EventBus, make_broker, subscribe
from shared.events import JOBS_REQUESTED, Event, ImportRequested
from shared.metrics import STAGE_DURATION
from shared.service import consumer_stage_app, make_redis

SERVICE = "geocoder"
GROUP = "routemate-geocoder"


def create_app(
    settings: GeocoderSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    chain: list[Provider] | None = None,
) -> FastAPI:
    settings = settings or GeocoderSettings()
    redis = redis or make_redis(settings)
    broker = broker or make_broker(settings, SERVICE)
    bus = EventBus(broker, SERVICE)
    chain = chain or build_chain(settings, australia())
    geocoder = Geocoder(
        chain,
        GeocodeCache(redis, settings.cache_ttl_seconds, settings.failure_cache_ttl_seconds),
        settings.lookup_concurrency,
        settings.job_budget_seconds,
        settings.outlier_km,
    )

    async def on_import(event: Event) -> None:
        if not isinstance(event, ImportRequested):
            return
        started = time.perf_counter()
        outcome = await geocoder.geocode(event)
        await bus.publish(outcome)
        STAGE_DURATION.labels("geocode").observe(time.perf_counter() - started)

    subscribe(broker, bus, [JOBS_REQUESTED], GROUP, on_import)

    async def close() -> None:
        for provider in chain:
            await provider.close()
        await redis.aclose()

    app = consumer_stage_app(SERVICE, settings, broker, GROUP, close)
    app.state.geocoder = geocoder
    return app
