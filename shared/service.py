"""The frame every service process shares: FastAPI app with health, metrics, problems; uvicorn."""

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.broker import flush_commits
from shared.errors import install_problem_handlers
from shared.http import RejectNul, SecurityHeaders
from shared.lag import LagMonitor
from shared.logs import configure_logging
from shared.metrics import install_http_metrics
from shared.settings import PlatformSettings

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[bool]]


def make_redis(settings: PlatformSettings, url: str | None = None) -> Redis:
    """A Redis client that fails fast, so a Redis outage becomes a 503, not a hang: of the durable
    instance (`REDIS_URL`), or of `url` (the geocoder passes the evictable cache's). Its pool is
    bounded (REDIS_MAX_CONNECTIONS); a burst of concurrent callers queues for a connection."""
    # One quick retry on a fresh connection: after a Redis restart the pooled ones are dead.
    pool = BlockingConnectionPool.from_url(
        url or settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)


def redis_check(redis: Redis) -> HealthCheck:
    async def check() -> bool:
        try:
            return bool(await redis.ping())
        except Exception:  # noqa: BLE001 - any failure means not healthy
            return False

    return check


def broker_check(broker) -> HealthCheck:
    async def check() -> bool:
        try:
            return bool(await broker.ping(timeout=2))
        except Exception:  # noqa: BLE001 - any failure means not healthy
            return False

    return check


def service_app(service: str, *, lifespan=None, title: str | None = None) -> FastAPI:
    """A FastAPI app with /healthz, /metrics, request metrics, problem+json errors and the security
    headers (shared.http.SecurityHeaders).

    No trailing-slash redirects: Starlette builds them from the request's Host header, so
    `GET /v1/integration-jobs/` with `Host: evil.example` was sent to http://evil.example/...
    A path with a stray slash is now a problem+json 404 like any other unknown path."""
    app = FastAPI(title=title or f"RouteMate {service}", lifespan=lifespan, version="1.0.0", redirect_slashes=False)
    app.state.service = service
    app.state.health_checks = {}
    install_problem_handlers(app)
    app.add_middleware(RejectNul)
    app.add_middleware(SecurityHeaders)
    install_http_metrics(app, service)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        checks: dict[str, HealthCheck] = app.state.health_checks
        results = {name: await check() for name, check in checks.items()}
        healthy = all(results.values())
        return JSONResponse(
            {"service": service, "status": "ok" if healthy else "degraded", "checks": results},
            status_code=200 if healthy else 503,
        )

    return app


def document_body(app: FastAPI, path: str, content: dict[str, type[BaseModel] | dict]) -> None:
    """Describe a request body the route reads itself (to control size, type and errors) in the
    OpenAPI document, so clients and fuzzers know its shape."""
    default = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        media = {}
        for media_type, model in content.items():
            if isinstance(model, dict):
                media[media_type] = {"schema": model}
                continue
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components[model.__name__] = model_schema
            media[media_type] = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        operation = schema["paths"][path]["post"]
        operation["requestBody"] = {"required": True, "content": media}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def consumer_stage_app(
    service: str,
    settings: PlatformSettings,
    broker,
    group: str | tuple[str, ...],
    on_close: Callable[[], Awaitable[None]] | None = None,
    on_start: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """A consumer stage's app: the broker runs with the app, its groups' lag is measured, and
    /healthz reports whether Kafka answers. `on_start` runs before the first message is taken."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if on_start is not None:
            await on_start()
        await broker.start()
        lags = [LagMonitor(settings, g) for g in ((group,) if isinstance(group, str) else group)]
        for lag in lags:
            lag.start()
        yield
        for lag in lags:
            await lag.stop()
        await flush_commits(broker)  # what was handled since the last commit is not done again
        await broker.stop()
        if on_close is not None:
            await on_close()

    app = service_app(service, lifespan=lifespan, title=f"RouteMate {service}")
    app.state.health_checks["kafka"] = broker_check(broker)
    app.state.settings, app.state.broker = settings, broker
    return app


class _SecondListener(uvicorn.Server):
    """A server sharing the process with the main one: the main server owns the signals and the
    lifespan; this one stops when it stops."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(app: FastAPI, settings: PlatformSettings, port: int, **over) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=2000,
        backlog=4096,
        # uvicorn would otherwise rewrite the peer address from any X-Forwarded-For sent via
        # 127.0.0.1 (the edge passes the caller's own header through): the services decide which
        # proxies they believe themselves (shared/http.py client_address, TRUSTED_PROXIES).
        proxy_headers=False,
        **over,
    )


async def _serve_both(main: uvicorn.Server, second: uvicorn.Server) -> None:
    side = asyncio.create_task(second.serve())
    side.add_done_callback(lambda _: setattr(main, "should_exit", True))  # no half-up service
    try:
        await main.serve()
    finally:
        second.should_exit = True
        await asyncio.gather(side, return_exceptions=True)


def settle_heap(gen0: int) -> None:
    """What the process holds once started (modules, the app and its settings) is moved out of the
    cyclic collector's sight (`gc.freeze`), and its youngest generation is collected every `gen0`
    allocations instead of 700. A stage makes tens of thousands of short-lived containers in a
    burst (events parsed and validated, rows, views): at Python's defaults the collector took a
    tenth of the status service's CPU in a 200-job burst (0.21 s of 2.1 s, two full collections
    among them), 0.02 s after this. Cycles are still collected; 0 keeps Python's defaults."""
    if gen0 <= 0:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, *gc.get_threshold()[1:])


def serve(
    app: FastAPI, service: str, settings: PlatformSettings, port: int, *, admin: tuple[FastAPI, int] | None = None
) -> None:
    """Run one service process in the foreground; `admin` adds a second listener (its own app
    and port, same host) in the same event loop."""
    configure_logging(
        service,
        settings.log_level,
        settings.log_format,
        settings.log_file,
        settings.log_max_bytes,
        settings.log_backups,
    )
    log.info("starting %s on %s:%s", service, settings.host, port)
    settle_heap(settings.gc_gen0_threshold)
    if admin is None:
        uvicorn.Server(_config(app, settings, port)).run()
        return
    log.info("starting %s admin API on %s:%s", service, settings.host, admin[1])
    main = uvicorn.Server(_config(app, settings, port))
    second = _SecondListener(_config(admin[0], settings, admin[1], lifespan="off"))
    asyncio.run(_serve_both(main, second))
