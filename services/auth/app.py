"""Wiring of the auth service: the one place that builds its adapters and use-cases."""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from services.auth.adapters.audit import AuditTrail, RecordedBus
from services.auth.adapters.lockout import AdminThrottle, Lockout
from services.auth.adapters.store import AuthStore
from services.auth.adapters.tokens import TokenStore
from services.auth.admin_handlers import Drivers, Integrations, Publisher
from services.auth.handlers import LockoutPolicy, TokenIssuer
from services.auth.members import Members
from services.auth.mint_limit import RateLimitedTokens
from services.auth.routes import admin, public
from services.auth.routes_internal import internal, members_admin
from services.auth.settings import AuthSettings
from shared.broker import EventBus, make_broker
from shared.db import make_engine
from shared.http import install_request_ids
from shared.ratelimit import RateLimiter
from shared.service import document_body, make_redis, redis_check, service_app

SERVICE = "auth"
CREDENTIALS_SCHEMA = {
    "type": "object",
    "required": ["client_id", "client_secret"],
    "properties": {
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
    },
}


def create_app(
    settings: AuthSettings | None = None,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    store: AuthStore | None = None,
    bus: Publisher | None = None,
) -> FastAPI:
    """The auth app; arguments default to the production adapters, tests pass their own."""
    settings = settings or AuthSettings()
    redis = redis or make_redis(settings)
    broker = broker or make_broker(settings, SERVICE)
    store = store or AuthStore(make_engine(settings.auth_database_url))
    bus = bus or EventBus(broker, SERVICE)
    tokens, audit = TokenStore(redis, settings.signing_key), AuditTrail(bus)
    pepper = settings.secret_pepper.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await broker.start()
        yield
        await audit.drain()
        await broker.stop()
        await redis.aclose()

    app = service_app(SERVICE, lifespan=lifespan, title="RouteMate auth")
    app.state.settings = settings
    app.state.redis = redis
    app.state.issuer = TokenIssuer(
        store,
        Lockout(redis),
        RateLimitedTokens(tokens, mint_limiter(redis, settings)),
        audit.record,
        pepper=pepper,
        ttl_seconds=settings.token_ttl_seconds,
        policy=lockout_policy(settings),
    )
    app.state.health_checks["redis"] = redis_check(redis)
    install_request_ids(app)
    app.include_router(public)
    recorded = RecordedBus(bus, store)  # changes also go to the organization's activity (the console)
    members = Members(store, recorded, Lockout(redis), lockout_policy(settings), setup_hours=settings.setup_link_hours)
    app.state.admin_app = admin_app(
        settings, app, Integrations(store, tokens, recorded, pepper=pepper), Drivers(store, recorded)
    )
    admin_state = app.state.admin_app.state
    admin_state.members, admin_state.tokens, admin_state.store = members, tokens, store
    media = {"application/json": CREDENTIALS_SCHEMA, "application/x-www-form-urlencoded": CREDENTIALS_SCHEMA}
    document_body(app, "/v1/integration-token", media)
    return app


def admin_app(settings: AuthSettings, public_app: FastAPI, integrations: Integrations, drivers: Drivers) -> FastAPI:
    """The admin API on its own listener (AUTH_ADMIN_PORT): never routed by the edge, absent from
    the public OpenAPI. It runs in the public app's process and lifespan, sharing its adapters."""
    app = service_app(SERVICE, title="RouteMate auth admin")
    app.state.settings, app.state.integrations, app.state.drivers = settings, integrations, drivers
    app.state.admin_throttle = AdminThrottle(
        public_app.state.redis, settings.admin_failure_threshold, settings.lockout_window_seconds
    )
    app.state.health_checks = public_app.state.health_checks
    install_request_ids(app)
    app.include_router(admin)
    app.include_router(members_admin)
    app.include_router(internal)  # the console's: INTERNAL_TOKEN, scoped to an organization
    return app


def lockout_policy(settings: AuthSettings) -> LockoutPolicy:
    return LockoutPolicy(
        pair_threshold=settings.lockout_threshold,
        address_threshold=settings.ip_lockout_threshold,
        window_seconds=settings.lockout_window_seconds,
        lock_seconds=settings.lockout_seconds,
        delay_cap_seconds=settings.failure_delay_cap_seconds,
    )


def mint_limiter(redis: Redis, settings: AuthSettings) -> RateLimiter:
    """Tokens minted per client_id: `token_mint_per_minute` sustained, `token_mint_burst` at once."""
    return RateLimiter(redis, settings.token_mint_per_minute / 60, settings.token_mint_burst, "rm:rl:mint:")
