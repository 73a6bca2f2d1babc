"""Wiring of the notifier: the job changes' consumer, the delivery worker and the webhooks API."""

from datetime import timedelta

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis
from sqlalchemy.engine import Engine

from services.notifier.adapters.crypto import SecretBox
from services.notifier.adapters.sender import Resolver, WebhookSender, system_resolver
from services.notifier.adapters.store import DeliveryStore
from services.notifier.handlers import Policy
from services.notifier.routes import admin, router
from services.notifier.settings import NotifierSettings
from services.notifier.subscribers import subscribe_changes
from services.notifier.worker import DeliveryWorker
from shared.broker import EventBus, make_broker
from shared.db import make_engine
from shared.http import install_request_ids
from shared.pii import DataKeys
from shared.service import consumer_stage_app, make_redis, redis_check, service_app

SERVICE = "notifier"


def policy_of(settings: NotifierSettings) -> Policy:
    return Policy(
        https_only=settings.environment == "production",
        allow_private=settings.webhook_allow_private_targets,
        retry_scale=settings.webhook_retry_scale,
        disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
        max_endpoints=settings.webhook_max_endpoints_per_org,
    )


def create_app(
    settings: NotifierSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    engine: Engine | None = None,
    resolver: Resolver = system_resolver,
) -> FastAPI:
    """The notifier; every argument left out is the production one its settings name."""
    settings = settings or NotifierSettings()
    redis = redis or make_redis(settings)
    broker = broker or make_broker(settings, SERVICE)
    store = DeliveryStore(engine or make_engine(settings.notifier_database_url))  # migrates the tables
    box, policy = SecretBox(settings.webhook_secret_key), policy_of(settings)
    sender = WebhookSender(
        timeout_s=settings.webhook_timeout_seconds,
        allow_private=policy.allow_private,
        https_only=policy.https_only,
        resolver=resolver,
    )
    bus = EventBus(broker, SERVICE)
    worker = DeliveryWorker(
        store,
        sender,
        box,
        policy,
        bus,
        per_endpoint=settings.webhook_endpoint_concurrency,
        overall=settings.webhook_global_concurrency,
        poll_s=settings.webhook_poll_seconds,
        timeout_s=settings.webhook_timeout_seconds,
    )
    keys = DataKeys.from_settings(redis, settings)  # the changes' job views travel sealed
    subscribe_changes(broker, bus, store, worker.poke, settings.notifier_group, keys, settings.changes_linger_ms)

    async def start_worker() -> None:
        worker.start()

    async def stop_worker() -> None:
        await worker.stop()
        await sender.close()
        await redis.aclose()

    app = consumer_stage_app(SERVICE, settings, broker, settings.notifier_group, stop_worker, start_worker)
    app.state.redis, app.state.store, app.state.box, app.state.policy = redis, store, box, policy
    app.state.resolver, app.state.worker, app.state.bus = resolver, worker, bus
    app.state.health_checks["redis"] = redis_check(redis)
    install_request_ids(app)
    app.include_router(router)
    app.state.admin_app = admin_app(app)
    return app


def admin_app(public_app: FastAPI) -> FastAPI:
    """The operators' API on its own listener (NOTIFIER_ADMIN_PORT): never routed by the edge,
    absent from the public OpenAPI. It runs in the public app's process and lifespan, sharing its
    adapters, as the auth service's admin API does."""
    app = service_app(SERVICE, title="RouteMate notifier admin")
    shared = public_app.state
    app.state.settings, app.state.store, app.state.box = shared.settings, shared.store, shared.box
    app.state.policy, app.state.resolver = shared.policy, shared.resolver
    app.state.health_checks = shared.health_checks
    install_request_ids(app)
    app.include_router(admin)
    return app
