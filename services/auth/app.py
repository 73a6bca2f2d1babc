"""Wiring of the auth service: the one place that builds its adapters."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.auth.lockout import Lockout
from services.auth.routes import admin, public
from services.auth.settings import AuthSettings
from services.auth.store import AuthStore
from shared.broker import EventBus, make_broker
from shared.db import make_engine
from shared.http import install_request_ids
from shared.service import document_body, make_redis, redis_check, service_app

SERVICE = "auth"


def create_app(
    settings: AuthSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    store: AuthStore | None = None,
) -> FastAPI:
    """The auth app; arguments default to the production adapters, tests pass their own."""
    settings = settings or AuthSettings()
    redis = redis or make_redis(settings)
    broker = broker or make_broker(settings, SERVICE)
    store = store or AuthStore(make_engine(settings.auth_database_url))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await broker.start()
        yield
        for task in list(app.state.background):
            await task
        await broker.stop()
        await redis.aclose()

    app = service_app(SERVICE, lifespan=lifespan, title="RouteMate auth")
    app.state.settings, app.state.redis, app.state.store = settings, redis, store
    app.state.bus, app.state.lockout, app.state.background = EventBus(broker, SERVICE), Lockout(redis, settings), set()
    app.state.health_checks["redis"] = redis_check(redis)
    install_request_ids(app)
    app.include_router(public)
    app.include_router(admin)
    credentials = {
        "type": "object",
        "required": ["client_id", "client_secret"],
        "properties": {
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
        },
    }
    document_body(
        app,
        "/v1/integration-token",
        {"application/json": credentials, "application/x-www-form-urlencoded": credentials},
    )
    return app
