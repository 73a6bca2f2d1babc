"""Wiring of the optimizer: a Kafka consumer stage; solves run off the event loop."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Histogram

from services.optimizer import ils
from services.optimizer.handlers import optimize
from services.optimizer.matrix import GreatCircle, MatrixProvider, OsrmTable
from services.optimizer.settings import OptimizerSettings
from shared.broker import EventBus, make_broker, subscribe
from shared.events import JOBS_GEOCODED, Event, RouteOptimized, StopsGeocoded
from shared.metrics import STAGE_DURATION
from shared.service import consumer_stage_app

SERVICE = "optimizer"
GROUP = "routemate-optimizer"
SOLVE_SECONDS = Histogram(
    "routemate_solver_seconds",
    "Solver time per job by engine and job size (stops)",
    ["engine", "size"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
ROUTE_STOPS = Histogram("routemate_route_stops", "Stops per optimized route", buckets=(1, 5, 10, 25, 50, 100, 200, 500))
UNROUTED = Counter("routemate_unrouted_stops_total", "Stops left off a route, by reason", ["reason"])
SIZES = ((8, "1-8"), (25, "9-25"), (50, "26-50"), (100, "51-100"), (200, "101-200"), (500, "201-500"))


def size_bucket(stops: int) -> str:
    """A bounded label for a job's size, matching the solver targets' sizes."""
    return next((label for top, label in SIZES if stops <= top), "501+")


def matrix_provider(settings: OptimizerSettings) -> MatrixProvider:
    if settings.routing_url:
        return OsrmTable(settings.routing_url, settings.routing_profile, settings.routing_timeout_seconds)
    return GreatCircle(settings.circuity_factor, settings.average_speed_kmh)


def create_app(
    settings: OptimizerSettings | None = None,
    *,
    broker: KafkaBroker | None = None,
    matrices: MatrixProvider | None = None,
) -> FastAPI:
    settings = settings or OptimizerSettings()
    broker = broker or make_broker(settings, SERVICE)
    bus = EventBus(broker, SERVICE)
    matrices = matrices or matrix_provider(settings)
    # One solve at a time per process (the consumer hands over one job after another and commits
    # in order). It runs on this thread, off the event loop, and the local search releases the
    # GIL, so heartbeats and /metrics stay live. Scale solving with processes, one per core.
    pool = ThreadPoolExecutor(1, thread_name_prefix="solver")

    async def on_geocoded(event: Event) -> None:
        if not isinstance(event, StopsGeocoded):
            return
        started = time.perf_counter()
        outcome = await asyncio.get_running_loop().run_in_executor(pool, optimize, event, settings, matrices)
        if isinstance(outcome, RouteOptimized):
            SOLVE_SECONDS.labels(outcome.solver.solver, size_bucket(outcome.solver.stop_count)).observe(
                outcome.solver.solve_ms / 1000
            )
            ROUTE_STOPS.observe(len(outcome.route))
            for stop in outcome.unrouted:
                UNROUTED.labels(stop.reason).inc()
        await bus.publish(outcome)
        STAGE_DURATION.labels("optimize").observe(time.perf_counter() - started)

    # A solve takes up to SOLVER_MAX_SECONDS: take a few jobs per poll, so a new process joining
    # the group gets its partitions within seconds, and allow several times the longest batch.
    batch = settings.solver_poll_records
    subscribe(
        broker,
        bus,
        [JOBS_GEOCODED],
        GROUP,
        on_geocoded,
        max_poll_records=batch,
        max_poll_interval_ms=max(300_000, int(batch * settings.solver_max_seconds * 1000 * 10)),
    )

    async def warm_up() -> None:
        await asyncio.get_running_loop().run_in_executor(pool, ils.warm_up)

    async def close() -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    app = consumer_stage_app(SERVICE, settings, broker, GROUP, close, warm_up)
    return app
