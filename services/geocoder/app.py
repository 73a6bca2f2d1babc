"""Wiring of the geocoder: a Kafka consumer stage with /healthz and /metrics."""

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.geocoder.adapters import build_geocoder
from services.geocoder.handlers import Provider
from services.geocoder.settings import GeocoderSettings
from services.geocoder.subscribers import GROUP, include_subscribers
from shared.broker import EventBus, make_broker
from shared.lanes import LaneGate, bulk_group
from shared.pii import DataKeys
from shared.service import consumer_stage_app, make_redis

SERVICE = "geocoder"


def create_app(
    settings: GeocoderSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    chain: list[Provider] | None = None,
    keys_redis: Redis | None = None,
) -> FastAPI:
    """The geocoder stage; every argument defaults to the production adapter."""
    settings = settings or GeocoderSettings()
    redis = redis or make_redis(settings, settings.cache_redis_url)  # the evictable cache instance
    broker = broker or make_broker(settings, SERVICE)
    keys_redis = keys_redis or make_redis(settings)  # the durable instance: the jobs' data keys
    geocoder = build_geocoder(settings, redis, chain)
    keys = DataKeys.from_settings(keys_redis, settings)  # read once per job, not per event
    include_subscribers(broker, EventBus(broker, SERVICE), geocoder, LaneGate.from_settings(SERVICE, settings), keys)

    async def close() -> None:
        await geocoder.close()
        await redis.aclose()
        await keys_redis.aclose()

    return consumer_stage_app(SERVICE, settings, broker, (GROUP, bulk_group(GROUP)), close)
